{{ config(
    materialized='incremental',
    unique_key='time_entry_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#- One row per time entry of the PSA (deleted ones kept, flagged). Incremental: a run re-reads
    the loads of the last `incremental_lookback_hours` before the newest load it holds, and the
    entries whose deletion was found in those loads (DECISIONLOG). -#}
with

time_entries as (
    select
        time_entry_id,
        user_id,
        project_id,
        task_id,
        record_ref,
        hours,
        billable_rate,
        cost_rate,
        currency_code,
        is_billable,
        is_closed,
        is_billed,
        spent_date,
        created_at,
        updated_at,
        notes,
        _dlt_load_id
    from {{ staged('psa', 'time_entries') }}
),

deletions as (
    select
        record_id,
        _dlt_load_id
    from {{ staged('psa', 'deleted_records') }}
    where resource_name = 'time_entries'
),

changed as (
    {{ changed_since_last_build('time_entries', 'time_entry_id', 'deletions') }}
),

resource_map as (
    select
        resource_id,
        system_record_id
    from {{ ref('map_resource_ids') }}
    where system_role = 'psa'
),

engagement_map as (
    select
        engagement_id,
        system_record_id
    from {{ ref('map_engagement_ids') }}
    where system_role = 'psa'
),

engagements as (
    select
        engagement_id,
        client_id,
        is_internal
    from {{ ref('dim_engagements') }}
),

resources as (
    select
        resource_id,
        legal_entity_id,
        cost_rate
    from {{ ref('dim_resources') }}
),

time_entries_resolved as (
    select
        md5(changed.record_ref) as time_entry_id,
        changed.record_ref,
        changed.time_entry_id as psa_time_entry_id,
        coalesce(resource_map.resource_id, md5('-1')) as resource_id,
        coalesce(engagement_map.engagement_id, md5('-1')) as engagement_id,
        coalesce(engagements.client_id, md5('-1')) as client_id,
        coalesce(resources.legal_entity_id, md5('-1')) as legal_entity_id,
        changed.spent_date as work_date,
        cast(changed.hours as decimal(12, 4)) as hours,
        coalesce(changed.is_billable, false) as is_billable,
        coalesce(changed.is_closed, false) as is_approved,
        coalesce(engagements.is_internal, true) as is_internal,
        cast(changed.billable_rate as decimal(18, 6)) as bill_rate,
        cast(coalesce(resources.cost_rate, changed.cost_rate) as decimal(18, 6)) as cost_rate,
        changed.currency_code,
        cast(case
            when changed.is_billable then round(changed.hours * changed.billable_rate, 2)
            else 0
        end as decimal(18, 2)) as billable_amount,
        cast(
            round(changed.hours * coalesce(resources.cost_rate, changed.cost_rate), 2)
            as decimal(18, 2)
        ) as cost_amount,
        deletions.record_id is not null as is_deleted,
        changed.created_at,
        changed.updated_at,
        changed._dlt_load_id,
        -- the load in which this row last changed: its own, or its deletion's when later (the
        -- valued time entries read the rows changed since they were built)
        {{ newest_load_id('changed._dlt_load_id', 'deletions._dlt_load_id') }} as changed_load_id
    from changed
    left join resource_map
        on changed.user_id = resource_map.system_record_id
    left join engagement_map
        on changed.project_id = engagement_map.system_record_id
    left join engagements
        on engagement_map.engagement_id = engagements.engagement_id
    left join resources
        on resource_map.resource_id = resources.resource_id
    left join deletions
        on changed.time_entry_id = deletions.record_id
)

select * from time_entries_resolved
