{{ config(
    materialized='incremental',
    unique_key='time_posting_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
) }}
{#- One row per time posting in the ERP (the ERP's copy of approved PSA time, with the PSA
    entry's id as its external id). Incremental like fct_time_entries. -#}
with

postings as (
    select
        timebill_id,
        employee_id,
        job_id,
        accounting_period_id,
        invoice_id,
        external_id,
        record_ref,
        hours,
        rate,
        is_billable,
        transaction_date,
        created_at,
        updated_at,
        _dlt_load_id
    from {{ staged('erp', 'timebills') }}
),

deletions as (
    select
        record_id,
        _dlt_load_id
    from {{ staged('erp', 'deleted_records') }}
    where lower(record_type) in ('timebill', 'time bill', 'timeentry')
),

changed as (
    {{ changed_since_last_build('postings', 'timebill_id', 'deletions') }}
),

resource_map as (
    select
        resource_id,
        system_record_id
    from {{ ref('map_resource_ids') }}
    where system_role = 'erp'
),

engagement_map as (
    select
        engagement_id,
        system_record_id
    from {{ ref('map_engagement_ids') }}
    where system_role = 'erp'
),

periods as (
    select
        accounting_period_id,
        erp_accounting_period_id
    from {{ ref('dim_accounting_periods') }}
),

postings_resolved as (
    select
        md5(changed.record_ref) as time_posting_id,
        changed.record_ref,
        changed.timebill_id as erp_time_posting_id,
        -- the PSA entry's own id, as the integration stamps it on the posting
        changed.external_id as psa_time_entry_id,
        coalesce(resource_map.resource_id, md5('-1')) as resource_id,
        coalesce(engagement_map.engagement_id, md5('-1')) as engagement_id,
        periods.accounting_period_id,
        changed.invoice_id as erp_invoice_id,
        changed.transaction_date as work_date,
        cast(changed.hours as decimal(12, 4)) as hours,
        cast(changed.rate as decimal(18, 6)) as bill_rate,
        coalesce(changed.is_billable, false) as is_billable,
        deletions.record_id is not null as is_deleted,
        changed.created_at,
        changed.updated_at,
        changed._dlt_load_id,
        -- the load in which this row last changed: its own, or its deletion's when later (the
        -- valued time entries read the rows changed since they were built)
        {{ newest_load_id('changed._dlt_load_id', 'deletions._dlt_load_id') }} as changed_load_id
    from changed
    left join resource_map
        on changed.employee_id = resource_map.system_record_id
    left join engagement_map
        on changed.job_id = engagement_map.system_record_id
    left join periods
        on changed.accounting_period_id = periods.erp_accounting_period_id
    left join deletions
        on changed.timebill_id = deletions.record_id
)

select * from postings_resolved
