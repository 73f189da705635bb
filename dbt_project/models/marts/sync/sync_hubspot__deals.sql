{#- One row per live CRM deal that became an engagement: the ERP project code and the delivery
    and billing figures the CRM should show on the deal. -#}
with

deals as (
    select
        crm_deal_id,
        engagement_id
    from {{ ref('dim_deals') }}
    where not is_archived and engagement_id is not null
),

engagements as (
    select
        engagement_id,
        project_code,
        contract_value,
        currency_code
    from {{ ref('dim_engagements') }}
),

approved_hours as (
    select
        engagement_id,
        sum(hours) as hours_delivered
    from {{ ref('fct_time_entries') }}
    where is_approved and not is_deleted
    group by 1
),

invoiced as (
    select
        engagement_id,
        sum(case when document_type = 'credit_memo' then -invoice_amount else invoice_amount end)
            as amount_invoiced
    from {{ ref('fct_invoices') }}
    where not is_voided
    group by 1
),

recognised as (
    select
        engagement_id,
        sum(recognised_revenue) as revenue_recognised
    from {{ ref('int_revenue_recognised_by_engagement_month') }}
    group by 1
),

desired as (
    select
        deals.crm_deal_id as crm_record_id,
        deals.engagement_id,
        engagements.project_code as erp_project_code,
        engagements.contract_value as pslake_contract_value,
        cast(coalesce(approved_hours.hours_delivered, 0) as decimal(12, 2))
            as pslake_hours_delivered,
        cast(coalesce(recognised.revenue_recognised, 0) as decimal(18, 2))
            as pslake_revenue_recognised,
        cast(coalesce(invoiced.amount_invoiced, 0) as decimal(18, 2)) as pslake_amount_invoiced,
        engagements.currency_code
    from deals
    inner join engagements
        on deals.engagement_id = engagements.engagement_id
    left join approved_hours
        on deals.engagement_id = approved_hours.engagement_id
    left join recognised
        on deals.engagement_id = recognised.engagement_id
    left join invoiced
        on deals.engagement_id = invoiced.engagement_id
)

select * from desired
