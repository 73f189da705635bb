{#- One row per resource per calendar month: capacity, hours by category, utilization and target.
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

days_in_months as (
    select
        *,
        cast({{ dbt.date_trunc('month', 'work_date') }} as date) as month_start_date
    from int_hours_summed_by_resource_day
),

months_summed as (
    select
        resource_id,
        month_start_date,
        {{ resource_hours_summed() }}
    from days_in_months
    group by 1, 2
),

months_described as (
    select
        months_summed.resource_id,
        months_summed.month_start_date,
        cast({{ dbt.dateadd('month', 1, 'months_summed.month_start_date') }} as date) - 1
            as month_end_date,
        coalesce(dim_resources.practice_name, 'Unassigned') as practice_name,
        dim_resources.role_name,
        coalesce(dim_resources.legal_entity_id, md5('-1')) as legal_entity_id,
        {{ utilization_figures('months_summed') }},
        cast(dim_resources.utilization_target as decimal(9, 4)) as utilization_target
    from months_summed
    left join dim_resources
        on months_summed.resource_id = dim_resources.resource_id
),

months_flagged as (
    select
        *,
        -- the whole month lies between the first day with data and the day before the as-of date
        (
            month_start_date >= (select data_start.first_date from data_start)
            and month_end_date < {{ as_of_date() }}
        ) as is_complete_month
    from months_described
)

select * from months_flagged
