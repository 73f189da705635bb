{#- One row per practice per legal entity per calendar month: the resources' capacity and hours
    summed, utilization on the sums, and the target weighted by each person's capacity. -#}
with

mart_utilization_by_resource_month as (
    select
        resource_id,
        month_start_date,
        month_end_date,
        practice_name,
        legal_entity_id,
        capacity_hours,
        billable_hours,
        non_billable_client_hours,
        internal_hours,
        pto_hours,
        total_hours,
        utilization_target,
        is_complete_month
    from {{ ref('mart_utilization_by_resource_month') }}
),

practices_summed as (
    select
        practice_name,
        legal_entity_id,
        month_start_date,
        min(month_end_date) as month_end_date,
        count(distinct case when capacity_hours > 0 then resource_id end) as resources,
        sum(capacity_hours) as capacity_hours,
        sum(billable_hours) as billable_hours,
        sum(non_billable_client_hours) as non_billable_client_hours,
        sum(internal_hours) as internal_hours,
        sum(pto_hours) as pto_hours,
        sum(total_hours) as total_hours,
        sum(capacity_hours * utilization_target) as targeted_hours,
        sum(case when utilization_target is not null then capacity_hours else 0 end)
            as capacity_hours_with_target,
        bool_and(is_complete_month) as is_complete_month
    from mart_utilization_by_resource_month
    group by 1, 2, 3
),

practices_described as (
    select
        practice_name,
        legal_entity_id,
        month_start_date,
        month_end_date,
        cast(resources as integer) as resources,
        cast(capacity_hours as decimal(12, 2)) as capacity_hours,
        cast(billable_hours as decimal(12, 2)) as billable_hours,
        cast(non_billable_client_hours as decimal(12, 2)) as non_billable_client_hours,
        cast(internal_hours as decimal(12, 2)) as internal_hours,
        cast(pto_hours as decimal(12, 2)) as pto_hours,
        cast(total_hours as decimal(12, 2)) as total_hours,
        cast({{ exact_ratio('billable_hours', 'capacity_hours') }} as decimal(9, 4))
            as utilization,
        cast({{ exact_ratio(
            'billable_hours + non_billable_client_hours', 'capacity_hours'
        ) }} as decimal(9, 4)) as total_utilization,
        cast(round(targeted_hours / nullif(capacity_hours_with_target, 0), 4) as decimal(9, 4))
            as utilization_target,
        is_complete_month
    from practices_summed
)

select * from practices_described
