{#- One row per CRM deal (archived ones flagged), with its stage, amount and the engagement it
    became. -#}
with

deals as (
    select
        deal_id,
        deal_stage_id,
        record_ref,
        deal_name,
        currency_code,
        deal_amount,
        is_closed_won,
        is_archived,
        close_date,
        created_at,
        updated_at
    from {{ staged('crm', 'deals') }}
),

stages as (
    select
        deal_stage_id,
        deal_stage_label,
        is_closed
    from {{ staged('crm', 'deal_stages') }}
),

engagement_map as (
    select
        engagement_id,
        system_record_id
    from {{ ref('map_engagement_ids') }}
    where system_role = 'crm'
),

deal_companies as (
    select
        associations.from_id as deal_id,
        min(client_map.client_id) as client_id
    from {{ staged('crm', 'associations') }} as associations
    inner join {{ ref('map_client_ids') }} as client_map
        on
            client_map.system_role = 'crm'
            and associations.to_id = client_map.system_record_id
    where
        associations.from_object_type = 'deals'
        and associations.to_object_type = 'companies'
        and associations.removed_at is null
    group by 1
),

deals_resolved as (
    select
        md5(deals.record_ref) as deal_id,
        deals.record_ref,
        deals.deal_id as crm_deal_id,
        deals.deal_name,
        coalesce(deal_companies.client_id, md5('-1')) as client_id,
        engagement_map.engagement_id,
        deals.deal_stage_id as deal_stage,
        stages.deal_stage_label,
        coalesce(deals.is_closed_won, deals.deal_stage_id = 'closedwon') as is_closed_won,
        coalesce(stages.is_closed, false) as is_closed,
        deals.currency_code,
        cast(deals.deal_amount as decimal(18, 2)) as deal_amount,
        deals.close_date,
        coalesce(deals.is_archived, false) as is_archived,
        deals.created_at,
        deals.updated_at
    from deals
    left join stages
        on deals.deal_stage_id = stages.deal_stage_id
    left join engagement_map
        on deals.deal_id = engagement_map.system_record_id
    left join deal_companies
        on deals.deal_id = deal_companies.deal_id
)

select * from deals_resolved
