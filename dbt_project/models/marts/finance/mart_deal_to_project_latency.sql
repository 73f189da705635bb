{#- One row per closed-won CRM deal (archived deals left out): the days from the deal's close
    date to the creation of the ERP project it became; a deal still without a project has a null
    latency and its age at the as-of date instead. -#}
with

dim_deals as (
    select
        deal_id,
        crm_deal_id,
        deal_name,
        client_id,
        engagement_id,
        currency_code,
        deal_amount,
        close_date
    from {{ ref('dim_deals') }}
    where
        is_closed_won
        and not is_archived
        and close_date <= {{ as_of_date() }}
),

dim_engagements as (
    select
        engagement_id,
        project_code,
        legal_entity_id,
        erp_project_id,
        cast(created_at as date) as created_date
    from {{ ref('dim_engagements') }}
    where erp_project_id is not null
),

deals_measured as (
    select
        dim_deals.deal_id,
        dim_deals.crm_deal_id,
        dim_deals.deal_name,
        dim_deals.client_id,
        dim_engagements.engagement_id,
        dim_engagements.project_code,
        dim_engagements.legal_entity_id,
        dim_deals.currency_code,
        cast(dim_deals.deal_amount as decimal(18, 2)) as deal_amount,
        dim_deals.close_date,
        dim_engagements.created_date as project_created_date,
        dim_engagements.engagement_id is not null as has_project,
        cast(
            {{ dbt.datediff('dim_deals.close_date', 'dim_engagements.created_date', 'day') }}
            as integer
        ) as deal_to_project_days,
        case
            when dim_engagements.engagement_id is null
                then cast(
                    {{ dbt.datediff('dim_deals.close_date', as_of_date(), 'day') }} as integer
                )
        end as days_without_project
    from dim_deals
    left join dim_engagements
        on dim_deals.engagement_id = dim_engagements.engagement_id
)

select * from deals_measured
