{#- One row per source system role (crm, psa, erp): how fresh its data is (the newest complete
    dlt load that wrote rows to its staging models), how many rows its loaded objects hold and
    how many the newest load wrote and whether that is an anomalous drop against the loads
    before it (a z-score), the worst `dbt source freshness` verdict on its source tables, how many records were quarantined, how many
    duplicate records it holds, the open reconciliation exceptions on its records and their
    age, and the reverse sync's failures. -#}

{#- The staging objects whose newest load id says when a system's data last arrived: its main
    objects (and for the CRM its owners, a list replaced on every run). -#}
{%- set loaded_objects = {
    'crm': ['companies', 'contacts', 'deals', 'associations', 'erp_invoices', 'owners'],
    'psa': ['clients', 'users', 'projects', 'time_entries', 'expenses'],
    'erp': [
        'customers', 'jobs', 'employees', 'timebills', 'transactions', 'transaction_lines',
        'previous_transaction_links', 'currency_rates',
    ],
} -%}

with

sync_dead_letters as (
    select dead_letter_state
    from {{ ref('stg_pslake__sync_dead_letters') }}
    where dead_letter_state in ('retrying', 'given_up')
),

-- the reverse sync writes only to the CRM: its open dead letters count against the crm role
reverse_sync as (
    select
        'crm' as system_role,
        count(*) as failure_count,
        sum(case when dead_letter_state = 'given_up' then 1 else 0 end) as given_up_count
    from sync_dead_letters
),

source_freshness as (
    select
        source_name,
        freshness_status,
        checked_at
    from {{ ref('stg_pslake__source_freshness') }}
),

int_erp_customers_grouped as (
    select is_survivor
    from {{ ref('int_erp_customers_grouped') }}
),

int_crm_companies_grouped as (
    select is_survivor
    from {{ ref('int_crm_companies_grouped') }}
),

rec_exceptions as (
    select
        record_system,
        first_seen_at,
        last_seen_at
    from {{ ref('rec_exceptions') }}
),

systems as (
    {%- for role in loaded_objects %}
        select
            '{{ role }}' as system_role,
            '{{ var("systems")[role] }}' as system_name
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

-- the rows of each staging object by the load that wrote them: load ids are unix timestamps as
-- text with ten integer digits (until the year 2286), so the greatest text is the newest load
rows_by_load as (
    {%- for role, objects in loaded_objects.items() %}
        {%- for object in objects %}
            select
                '{{ role }}' as system_role,
                _dlt_load_id,
                count(*) as row_count
            from {{ staged(role, object) }}
            group by 2
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

-- each load's rows per system, numbered from the first (the full load) to the newest
loads_numbered as (
    select
        system_role,
        _dlt_load_id,
        sum(row_count) as row_count,
        row_number() over (partition by system_role order by _dlt_load_id) as load_number,
        count(*) over (partition by system_role) as load_count
    from rows_by_load
    group by 1, 2
),

-- the newest load of a system, the rows its loaded objects hold, the rows that load wrote, and
-- the volume of the loads between the first and the newest (the history the newest is judged by)
freshness as (
    select
        system_role,
        max(_dlt_load_id) as latest_load_id,
        sum(row_count) as record_count,
        sum(case when load_number = load_count then row_count else 0 end) as latest_load_row_count,
        avg(case when load_number > 1 and load_number < load_count then row_count end)
            as history_mean_rows,
        stddev_samp(case when load_number > 1 and load_number < load_count then row_count end)
            as history_sd_rows,
        count(case when load_number > 1 and load_number < load_count then 1 end)
            as history_loads
    from loads_numbered
    group by 1
),

-- the verdicts of the check `pslake transform` ran before this build, by system
source_freshness_summed as (
    select
        case source_name
            {%- for role, system in var('systems').items() %}
                when '{{ system }}' then '{{ role }}'
            {%- endfor %}
        end as system_role,
        count(*) as checked_count,
        sum(case when freshness_status = 'warn' then 1 else 0 end) as warn_count,
        sum(case when freshness_status <> 'pass' and freshness_status <> 'warn' then 1 else 0 end)
            as error_count,
        max(checked_at) as checked_at
    from source_freshness
    group by 1
),

quarantine as (
    {%- for role in loaded_objects %}
        select
            '{{ role }}' as system_role,
            count(*) as quarantined_row_count
        from {{ staged(role, 'quarantine') }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

-- records that are not the survivor of their duplicate group; the PSA has no duplicate check
duplicates as (
    select
        'erp' as system_role,
        count(*) as duplicate_record_count
    from int_erp_customers_grouped
    where not is_survivor
    union all
    select
        'crm' as system_role,
        count(*) as duplicate_record_count
    from int_crm_companies_grouped
    where not is_survivor
),

-- an exception counts for the system that holds its identifying record
exceptions_aged as (
    select
        case record_system
            {%- for role, system in var('systems').items() %}
                when '{{ system }}' then '{{ role }}'
            {%- endfor %}
            else record_system
        end as system_role,
        first_seen_at,
        {{ dbt.datediff('first_seen_at', 'last_seen_at', 'day') }} as age_days
    from rec_exceptions
),

exceptions_summed as (
    select
        system_role,
        count(*) as open_exception_count,
        min(first_seen_at) as oldest_exception_first_seen_at,
        max(age_days) as max_exception_age_days,
        avg(age_days) as avg_exception_age_days,
        sum(case when age_days > 7 then 1 else 0 end) as exceptions_open_over_7_days_count
    from exceptions_aged
    group by 1
),

health as (
    select
        systems.system_role,
        systems.system_name,
        freshness.latest_load_id,
        to_timestamp(floor(cast(freshness.latest_load_id as double precision)))
            as latest_loaded_at,
        cast(
            {{ dbt.datediff(
                'to_timestamp(floor(cast(freshness.latest_load_id as double precision)))',
                "cast('" ~ run_started_at.isoformat() ~ "' as timestamptz)",
                'hour',
            ) }}
            as integer
        ) as hours_since_latest_load,
        case
            when source_freshness_summed.error_count > 0 then 'error'
            when source_freshness_summed.warn_count > 0 then 'warn'
            when source_freshness_summed.checked_count > 0 then 'pass'
            else 'unchecked'
        end as source_freshness_status,
        cast(
            coalesce(source_freshness_summed.warn_count + source_freshness_summed.error_count, 0)
            as integer
        ) as stale_source_table_count,
        source_freshness_summed.checked_at as source_freshness_checked_at,
        cast(coalesce(freshness.record_count, 0) as bigint) as record_count,
        cast(coalesce(freshness.latest_load_row_count, 0) as bigint)
            as latest_load_row_count,
        cast(round(
            (freshness.latest_load_row_count - freshness.history_mean_rows)
            / nullif(freshness.history_sd_rows, 0),
            2
        ) as decimal(10, 2)) as latest_load_volume_z,
        coalesce(
            freshness.history_loads >= {{ var('volume_history_loads') }}
            and freshness.latest_load_row_count < freshness.history_mean_rows
            and (
                freshness.history_sd_rows = 0
                or (freshness.latest_load_row_count - freshness.history_mean_rows)
                / freshness.history_sd_rows <= -{{ var('volume_z_alarm') }}
            ),
            false
        ) as is_volume_anomaly,
        cast(coalesce(quarantine.quarantined_row_count, 0) as integer) as quarantined_row_count,
        cast(duplicates.duplicate_record_count as integer) as duplicate_record_count,
        cast(coalesce(exceptions_summed.open_exception_count, 0) as integer)
            as open_exception_count,
        cast(coalesce(exceptions_summed.exceptions_open_over_7_days_count, 0) as integer)
            as exceptions_open_over_7_days_count,
        exceptions_summed.oldest_exception_first_seen_at,
        cast(exceptions_summed.max_exception_age_days as integer) as max_exception_age_days,
        cast(round(exceptions_summed.avg_exception_age_days, 1) as decimal(10, 1))
            as avg_exception_age_days,
        cast(coalesce(reverse_sync.failure_count, 0) as integer) as reverse_sync_failure_count,
        cast(coalesce(reverse_sync.given_up_count, 0) as integer) as reverse_sync_given_up_count
    from systems
    left join freshness
        on systems.system_role = freshness.system_role
    left join source_freshness_summed
        on systems.system_role = source_freshness_summed.system_role
    left join quarantine
        on systems.system_role = quarantine.system_role
    left join duplicates
        on systems.system_role = duplicates.system_role
    left join exceptions_summed
        on systems.system_role = exceptions_summed.system_role
    left join reverse_sync
        on systems.system_role = reverse_sync.system_role
)

select * from health
