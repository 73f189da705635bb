{#- One row per legal entity per billing model per month: revenue recognised (by the delivery
    marts' rules per billing model, int_revenue_recognised_by_engagement_month) next to the
    amount invoiced (invoices less credit memos), in the entity's currency and in the reporting
    currency. -#}
with

int_revenue_recognised_by_engagement_month as (
    select
        legal_entity_id,
        billing_model,
        month_start_date,
        month_end_date,
        currency_code,
        recognised_revenue,
        recognised_revenue_reporting,
        invoiced_amount,
        invoiced_amount_reporting
    from {{ ref('int_revenue_recognised_by_engagement_month') }}
),

dim_legal_entities as (
    select
        legal_entity_id,
        legal_entity_name
    from {{ ref('dim_legal_entities') }}
),

revenue_summed as (
    select
        legal_entity_id,
        billing_model,
        month_start_date,
        month_end_date,
        currency_code,
        count(*) as engagement_count,
        sum(recognised_revenue) as recognised_revenue,
        sum(recognised_revenue_reporting) as recognised_revenue_reporting,
        sum(invoiced_amount) as invoiced_amount,
        sum(invoiced_amount_reporting) as invoiced_amount_reporting
    from int_revenue_recognised_by_engagement_month
    group by 1, 2, 3, 4, 5
),

revenue_described as (
    select
        revenue_summed.legal_entity_id,
        dim_legal_entities.legal_entity_name,
        revenue_summed.billing_model,
        revenue_summed.month_start_date,
        revenue_summed.month_end_date,
        revenue_summed.currency_code,
        cast(revenue_summed.engagement_count as integer) as engagement_count,
        cast(revenue_summed.recognised_revenue as decimal(18, 2)) as recognised_revenue,
        cast(revenue_summed.invoiced_amount as decimal(18, 2)) as invoiced_amount,
        cast(revenue_summed.recognised_revenue - revenue_summed.invoiced_amount as decimal(18, 2))
            as recognised_less_invoiced,
        '{{ var("reporting_currency") }}' as reporting_currency_code,
        cast(revenue_summed.recognised_revenue_reporting as decimal(18, 2))
            as recognised_revenue_reporting,
        cast(revenue_summed.invoiced_amount_reporting as decimal(18, 2))
            as invoiced_amount_reporting
    from revenue_summed
    left join dim_legal_entities
        on revenue_summed.legal_entity_id = dim_legal_entities.legal_entity_id
)

select * from revenue_described
