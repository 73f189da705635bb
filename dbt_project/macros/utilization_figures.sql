{#- Shared by the week and month utilization marts (one row per resource per period). -#}

{#- The day rows of int_hours_summed_by_resource_day summed over a period. -#}
{% macro resource_hours_summed() -%}
        sum(case when is_employed_weekday and not is_public_holiday then 1 else 0 end)
            as working_days,
        sum(case when is_employed_weekday and is_public_holiday then 1 else 0 end)
            as public_holiday_days,
        sum(capacity_hours) as capacity_hours,
        sum(billable_hours) as billable_hours,
        sum(non_billable_client_hours) as non_billable_client_hours,
        sum(internal_hours) as internal_hours,
        sum(pto_hours) as pto_hours,
        sum(total_hours) as total_hours
{%- endmacro %}

{#- The figures of one resource-period from those sums (`summed`: the CTE holding them):
    hours rounded once to 0.01, utilization = billable / capacity and total utilization =
    (billable + non-billable client) / capacity, exact to 4 decimals, null when capacity is
    zero. -#}
{% macro utilization_figures(summed) -%}
        cast({{ summed }}.working_days as integer) as working_days,
        cast({{ summed }}.public_holiday_days as integer) as public_holiday_days,
        cast(round({{ summed }}.capacity_hours, 2) as decimal(12, 2)) as capacity_hours,
        cast(round({{ summed }}.billable_hours, 2) as decimal(12, 2)) as billable_hours,
        cast(round({{ summed }}.non_billable_client_hours, 2) as decimal(12, 2))
            as non_billable_client_hours,
        cast(round({{ summed }}.internal_hours, 2) as decimal(12, 2)) as internal_hours,
        cast(round({{ summed }}.pto_hours, 2) as decimal(12, 2)) as pto_hours,
        cast(round({{ summed }}.total_hours, 2) as decimal(12, 2)) as total_hours,
        cast({{ exact_ratio(summed ~ '.billable_hours', summed ~ '.capacity_hours') }}
            as decimal(9, 4)) as utilization,
        cast({{ exact_ratio(
            summed ~ '.billable_hours + ' ~ summed ~ '.non_billable_client_hours',
            summed ~ '.capacity_hours',
        ) }} as decimal(9, 4)) as total_utilization
{%- endmacro %}
