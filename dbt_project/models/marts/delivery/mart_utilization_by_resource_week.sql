{#- One row per resource per ISO week: capacity, hours by category, utilization and target.
    Utilization = billable hours / capacity hours; total utilization = (billable + non-billable
    client hours) / capacity hours; both null when capacity is zero. -#}
with

int_hours_summed_by_resource_day as (
    select
        resource_id,
        work_date,
        is_employed_weekday,
        is_public_holiday,
        capacity_hours,
        billable_hours,
        non_billable_client_hours,
        internal_hours,
        pto_hours,
        total_hours
    from {{ ref('int_hours_summed_by_resource_day') }}
),

dim_resources as (
    select
        resource_id,
        practice_name,
        role_name,
        legal_entity_id,
        utilization_target
    from {{ ref('dim_resources') }}
),

-- the data's window opens on the first day of the first month with time
data_start as (
    select cast({{ dbt.date_trunc('month', 'min(work_date)') }} as date) as first_date
    from int_hours_summed_by_resource_day
),

days_in_weeks as (
    select
        *,
        cast({{ dbt.date_trunc('week', 'work_date') }} as date) as week_start_date
    from int_hours_summed_by_resource_day
),

weeks_summed as (
    select
        resource_id,
        week_start_date,
        {{ resource_hours_summed() }}
    from days_in_weeks
    group by 1, 2
),

weeks_described as (
    select
        weeks_summed.resource_id,
        weeks_summed.week_start_date,
        cast(weeks_summed.week_start_date + 6 as date) as week_end_date,
        cast(extract(isoyear from weeks_summed.week_start_date) as integer) as iso_year,
        cast(extract(week from weeks_summed.week_start_date) as integer) as iso_week,
        coalesce(dim_resources.practice_name, 'Unassigned') as practice_name,
        dim_resources.role_name,
        coalesce(dim_resources.legal_entity_id, md5('-1')) as legal_entity_id,
        {{ utilization_figures('weeks_summed') }},
        cast(dim_resources.utilization_target as decimal(9, 4)) as utilization_target,
        -- the whole week lies between the first day with data and the day before the as-of date
        (
            weeks_summed.week_start_date >= (select data_start.first_date from data_start)
            and weeks_summed.week_start_date + 6 < {{ as_of_date() }}
        ) as is_complete_week
    from weeks_summed
    left join dim_resources
        on weeks_summed.resource_id = dim_resources.resource_id
)

select * from weeks_described
