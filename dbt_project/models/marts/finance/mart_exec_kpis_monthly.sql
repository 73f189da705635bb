{#- One row per legal entity per month, plus one row per month for all entities together
    (legal_entity_id 'all'), from the first month with figures to the month of the day before the
    as-of date: the executive KPIs, in the reporting currency, taken from the delivery and
    finance marts (not recomputed), with the previous month's value beside each monthly KPI.
    Amounts are added up over entities in the reporting currency and every ratio is recomputed
    from the added-up parts, so the 'all' row is never an average of the entities' ratios.
    Unbilled time and open reconciliation exceptions exist only as of the run (the as-of date):
    they are on the latest month only. -#}
with

mart_margin_by_entity as (
    select
        legal_entity_id,
        month_start_date,
        recognised_revenue_reporting,
        cost_amount_reporting
    from {{ ref('mart_margin_by_entity') }}
),

mart_utilization_by_resource_month as (
    select
        legal_entity_id,
        month_start_date,
        capacity_hours,
        billable_hours,
        non_billable_client_hours,
        utilization_target
    from {{ ref('mart_utilization_by_resource_month') }}
),

mart_wip_by_engagement as (
    select
        legal_entity_id,
        month_start_date,
        wip_amount_reporting
    from {{ ref('mart_wip_by_engagement') }}
),

mart_dso_monthly as (
    select
        legal_entity_id,
        month_start_date,
        ar_balance_reporting,
        invoiced_last_90_days_reporting
    from {{ ref('mart_dso_monthly') }}
    where not is_all_entities
),

mart_time_to_bill_lag as (
    select
        legal_entity_id,
        invoice_date,
        billed_hours,
        time_to_bill_lag_days
    from {{ ref('mart_time_to_bill_lag') }}
),

mart_unbilled_time as (
    select
        legal_entity_id,
        hours,
        age_days,
        unbilled_amount_reporting
    from {{ ref('mart_unbilled_time') }}
),

rec_exceptions as (
    select
        engagement_id,
        client_id,
        amount_at_risk_reporting
    from {{ ref('rec_exceptions') }}
),

dim_clients as (
    select
        client_id,
        legal_entity_id
    from {{ ref('dim_clients') }}
),

dim_engagements as (
    select
        engagement_id,
        legal_entity_id
    from {{ ref('dim_engagements') }}
),

dim_legal_entities as (
    select
        legal_entity_id,
        legal_entity_name
    from {{ ref('dim_legal_entities') }}
),

dim_accounting_periods as (
    select
        start_date,
        end_date
    from {{ ref('dim_accounting_periods') }}
    where period_type = 'month'
),

-- the latest month is the month of the day before the as-of date, as in the delivery marts
-- (their data runs to that day); unbilled time and exceptions, known only as of the run, go on it
latest_month as (
    select cast({{ dbt.date_trunc('month', as_of_date() ~ ' - 1') }} as date) as month_start_date
),

-- every figure as a measure of its entity and month, to be added up; a measure a source does
-- not give is null (typed in the first branch: a warehouse types a union by its first branch)
measures as (
    select
        legal_entity_id,
        month_start_date,
        recognised_revenue_reporting,
        cost_amount_reporting,
        cast(null as decimal(18, 4)) as capacity_hours,
        cast(null as decimal(18, 4)) as billable_hours,
        cast(null as decimal(18, 4)) as non_billable_client_hours,
        cast(null as decimal(18, 4)) as targeted_hours,
        cast(null as decimal(18, 4)) as capacity_hours_with_target,
        cast(null as decimal(18, 4)) as wip_amount_reporting,
        cast(null as decimal(18, 4)) as ar_balance_reporting,
        cast(null as decimal(18, 4)) as invoiced_last_90_days_reporting,
        cast(null as decimal(18, 4)) as time_billed_hours,
        cast(null as decimal(18, 4)) as time_billed_hour_days,
        cast(null as decimal(18, 4)) as unbilled_hours,
        cast(null as decimal(18, 4)) as unbilled_hour_days,
        cast(null as decimal(18, 4)) as unbilled_amount_reporting,
        cast(null as bigint) as open_exception_count,
        cast(null as decimal(18, 4)) as open_exception_amount_at_risk_reporting,
        true as is_entity_figure
    from mart_margin_by_entity
    union all
    select
        legal_entity_id,
        month_start_date,
        null as recognised_revenue_reporting,
        null as cost_amount_reporting,
        capacity_hours,
        billable_hours,
        non_billable_client_hours,
        capacity_hours * utilization_target as targeted_hours,
        case when utilization_target is not null then capacity_hours end
            as capacity_hours_with_target,
        null as wip_amount_reporting,
        null as ar_balance_reporting,
        null as invoiced_last_90_days_reporting,
        null as time_billed_hours,
        null as time_billed_hour_days,
        null as unbilled_hours,
        null as unbilled_hour_days,
        null as unbilled_amount_reporting,
        null as open_exception_count,
        null as open_exception_amount_at_risk_reporting,
        true as is_entity_figure
    from mart_utilization_by_resource_month
    union all
    select
        legal_entity_id,
        month_start_date,
        null as recognised_revenue_reporting,
        null as cost_amount_reporting,
        null as capacity_hours,
        null as billable_hours,
        null as non_billable_client_hours,
        null as targeted_hours,
        null as capacity_hours_with_target,
        wip_amount_reporting,
        null as ar_balance_reporting,
        null as invoiced_last_90_days_reporting,
        null as time_billed_hours,
        null as time_billed_hour_days,
        null as unbilled_hours,
        null as unbilled_hour_days,
        null as unbilled_amount_reporting,
        null as open_exception_count,
        null as open_exception_amount_at_risk_reporting,
        true as is_entity_figure
    from mart_wip_by_engagement
    union all
    select
        legal_entity_id,
        month_start_date,
        null as recognised_revenue_reporting,
        null as cost_amount_reporting,
        null as capacity_hours,
        null as billable_hours,
        null as non_billable_client_hours,
        null as targeted_hours,
        null as capacity_hours_with_target,
        null as wip_amount_reporting,
        ar_balance_reporting,
        invoiced_last_90_days_reporting,
        null as time_billed_hours,
        null as time_billed_hour_days,
        null as unbilled_hours,
        null as unbilled_hour_days,
        null as unbilled_amount_reporting,
        null as open_exception_count,
        null as open_exception_amount_at_risk_reporting,
        true as is_entity_figure
    from mart_dso_monthly
    union all
    -- the lag of the invoices dated in the month, weighted by the hours they billed
    select
        legal_entity_id,
        cast({{ dbt.date_trunc('month', 'invoice_date') }} as date) as month_start_date,
        null as recognised_revenue_reporting,
        null as cost_amount_reporting,
        null as capacity_hours,
        null as billable_hours,
        null as non_billable_client_hours,
        null as targeted_hours,
        null as capacity_hours_with_target,
        null as wip_amount_reporting,
        null as ar_balance_reporting,
        null as invoiced_last_90_days_reporting,
        billed_hours as time_billed_hours,
        billed_hours * time_to_bill_lag_days as time_billed_hour_days,
        null as unbilled_hours,
        null as unbilled_hour_days,
        null as unbilled_amount_reporting,
        null as open_exception_count,
        null as open_exception_amount_at_risk_reporting,
        true as is_entity_figure
    from mart_time_to_bill_lag
    union all
    select
        mart_unbilled_time.legal_entity_id,
        (select latest_month.month_start_date from latest_month) as month_start_date,
        null as recognised_revenue_reporting,
        null as cost_amount_reporting,
        null as capacity_hours,
        null as billable_hours,
        null as non_billable_client_hours,
        null as targeted_hours,
        null as capacity_hours_with_target,
        null as wip_amount_reporting,
        null as ar_balance_reporting,
        null as invoiced_last_90_days_reporting,
        null as time_billed_hours,
        null as time_billed_hour_days,
        mart_unbilled_time.hours as unbilled_hours,
        mart_unbilled_time.hours * mart_unbilled_time.age_days as unbilled_hour_days,
        mart_unbilled_time.unbilled_amount_reporting,
        null as open_exception_count,
        null as open_exception_amount_at_risk_reporting,
        true as is_entity_figure
    from mart_unbilled_time
    union all
    -- an exception belongs to the entity of its engagement, else of its client (a customer's
    -- master data, a won deal without a project), as the dashboard's reconciliation page has
    -- it; one with neither is the firm's: it counts on the 'all' row only
    select
        coalesce(dim_engagements.legal_entity_id, dim_clients.legal_entity_id) as legal_entity_id,
        (select latest_month.month_start_date from latest_month) as month_start_date,
        null as recognised_revenue_reporting,
        null as cost_amount_reporting,
        null as capacity_hours,
        null as billable_hours,
        null as non_billable_client_hours,
        null as targeted_hours,
        null as capacity_hours_with_target,
        null as wip_amount_reporting,
        null as ar_balance_reporting,
        null as invoiced_last_90_days_reporting,
        null as time_billed_hours,
        null as time_billed_hour_days,
        null as unbilled_hours,
        null as unbilled_hour_days,
        null as unbilled_amount_reporting,
        1 as open_exception_count,
        rec_exceptions.amount_at_risk_reporting as open_exception_amount_at_risk_reporting,
        false as is_entity_figure
    from rec_exceptions
    left join dim_engagements
        on rec_exceptions.engagement_id = dim_engagements.engagement_id
    left join dim_clients
        on rec_exceptions.client_id = dim_clients.client_id
),

-- each figure counts for its entity and once more for all entities together
measures_with_all_entities as (
    select * from measures
    union all
    select
        'all' as legal_entity_id,
        month_start_date,
        recognised_revenue_reporting,
        cost_amount_reporting,
        capacity_hours,
        billable_hours,
        non_billable_client_hours,
        targeted_hours,
        capacity_hours_with_target,
        wip_amount_reporting,
        ar_balance_reporting,
        invoiced_last_90_days_reporting,
        time_billed_hours,
        time_billed_hour_days,
        unbilled_hours,
        unbilled_hour_days,
        unbilled_amount_reporting,
        open_exception_count,
        open_exception_amount_at_risk_reporting,
        true as is_entity_figure
    from measures
),

measures_summed as (
    select
        legal_entity_id,
        month_start_date,
        sum(recognised_revenue_reporting) as recognised_revenue_reporting,
        sum(cost_amount_reporting) as cost_amount_reporting,
        sum(capacity_hours) as capacity_hours,
        sum(billable_hours) as billable_hours,
        sum(non_billable_client_hours) as non_billable_client_hours,
        sum(targeted_hours) as targeted_hours,
        sum(capacity_hours_with_target) as capacity_hours_with_target,
        sum(wip_amount_reporting) as wip_amount_reporting,
        sum(ar_balance_reporting) as ar_balance_reporting,
        sum(invoiced_last_90_days_reporting) as invoiced_last_90_days_reporting,
        sum(time_billed_hours) as time_billed_hours,
        sum(time_billed_hour_days) as time_billed_hour_days,
        sum(unbilled_hours) as unbilled_hours,
        sum(unbilled_hour_days) as unbilled_hour_days,
        sum(unbilled_amount_reporting) as unbilled_amount_reporting,
        sum(open_exception_count) as open_exception_count,
        sum(open_exception_amount_at_risk_reporting) as open_exception_amount_at_risk_reporting
    from measures_with_all_entities
    group by 1, 2
),

-- the entities with figures of their own (an exception's entity alone does not make a row),
-- and all entities together
entities as (
    select distinct legal_entity_id
    from measures
    where is_entity_figure
    union all
    select 'all' as legal_entity_id
),

first_month as (
    select min(month_start_date) as month_start_date
    from measures
    where is_entity_figure
),

months as (
    select
        dim_accounting_periods.start_date as month_start_date,
        dim_accounting_periods.end_date as month_end_date
    from dim_accounting_periods
    where
        dim_accounting_periods.start_date
        >= (select first_month.month_start_date from first_month)
        and dim_accounting_periods.start_date
        <= (select latest_month.month_start_date from latest_month)
),

entity_months_measured as (
    select
        entities.legal_entity_id,
        coalesce(
            dim_legal_entities.legal_entity_name,
            case when entities.legal_entity_id = 'all' then 'All entities' else 'Unknown' end
        ) as legal_entity_name,
        entities.legal_entity_id = 'all' as is_all_entities,
        months.month_start_date,
        months.month_end_date,
        case
            when months.month_end_date > {{ as_of_date() }} then {{ as_of_date() }}
            else months.month_end_date
        end as measured_on_date,
        months.month_end_date < {{ as_of_date() }} as is_month_complete,
        months.month_start_date = (select latest_month.month_start_date from latest_month)
            as is_latest_month,
        coalesce(measures_summed.recognised_revenue_reporting, 0)
            as recognised_revenue_reporting,
        coalesce(measures_summed.cost_amount_reporting, 0) as cost_amount_reporting,
        coalesce(measures_summed.capacity_hours, 0) as capacity_hours,
        coalesce(measures_summed.billable_hours, 0) as billable_hours,
        coalesce(measures_summed.non_billable_client_hours, 0) as non_billable_client_hours,
        measures_summed.targeted_hours,
        measures_summed.capacity_hours_with_target,
        coalesce(measures_summed.wip_amount_reporting, 0) as wip_amount_reporting,
        coalesce(measures_summed.ar_balance_reporting, 0) as ar_balance_reporting,
        coalesce(measures_summed.invoiced_last_90_days_reporting, 0)
            as invoiced_last_90_days_reporting,
        coalesce(measures_summed.time_billed_hours, 0) as time_billed_hours,
        measures_summed.time_billed_hour_days,
        measures_summed.unbilled_hours,
        measures_summed.unbilled_hour_days,
        measures_summed.unbilled_amount_reporting,
        measures_summed.open_exception_count,
        measures_summed.open_exception_amount_at_risk_reporting
    from entities
    cross join months
    left join measures_summed
        on
            entities.legal_entity_id = measures_summed.legal_entity_id
            and months.month_start_date = measures_summed.month_start_date
    left join dim_legal_entities
        on entities.legal_entity_id = dim_legal_entities.legal_entity_id
),

kpis_calculated as (
    select
        legal_entity_id,
        legal_entity_name,
        is_all_entities,
        month_start_date,
        month_end_date,
        measured_on_date,
        is_month_complete,
        is_latest_month,
        '{{ var("reporting_currency") }}' as reporting_currency_code,
        cast(recognised_revenue_reporting as decimal(18, 2)) as recognised_revenue_reporting,
        cast(cost_amount_reporting as decimal(18, 2)) as cost_amount_reporting,
        cast(recognised_revenue_reporting - cost_amount_reporting as decimal(18, 2))
            as margin_amount_reporting,
        cast({{ exact_ratio(
            'recognised_revenue_reporting - cost_amount_reporting', 'recognised_revenue_reporting'
        ) }} as decimal(18, 4)) as margin_pct,
        cast(capacity_hours as decimal(12, 2)) as capacity_hours,
        cast(billable_hours as decimal(12, 2)) as billable_hours,
        cast(non_billable_client_hours as decimal(12, 2)) as non_billable_client_hours,
        cast({{ exact_ratio('billable_hours', 'capacity_hours') }} as decimal(9, 4))
            as utilization,
        cast({{ exact_ratio(
            'billable_hours + non_billable_client_hours', 'capacity_hours'
        ) }} as decimal(9, 4)) as total_utilization,
        cast(round(targeted_hours / nullif(capacity_hours_with_target, 0), 4) as decimal(9, 4))
            as utilization_target,
        cast(wip_amount_reporting as decimal(18, 2)) as wip_amount_reporting,
        -- known as of the run only: on the latest month (0 there when there is none)
        cast(case when is_latest_month then coalesce(unbilled_hours, 0) end as decimal(12, 2))
            as unbilled_hours,
        cast(
            case when is_latest_month then coalesce(unbilled_amount_reporting, 0) end
            as decimal(18, 2)
        ) as unbilled_amount_reporting,
        cast(round(unbilled_hour_days / nullif(unbilled_hours, 0), 1) as decimal(10, 1))
            as unbilled_avg_age_days,
        cast(ar_balance_reporting as decimal(18, 2)) as ar_balance_reporting,
        cast(invoiced_last_90_days_reporting as decimal(18, 2))
            as invoiced_last_90_days_reporting,
        cast(
            case
                when invoiced_last_90_days_reporting > 0
                    then round(ar_balance_reporting * 90 / invoiced_last_90_days_reporting, 1)
            end
            as decimal(10, 1)
        ) as dso_days,
        cast(time_billed_hours as decimal(12, 2)) as time_billed_hours,
        cast(round(time_billed_hour_days / nullif(time_billed_hours, 0), 2) as decimal(10, 2))
            as time_to_bill_lag_days,
        cast(case when is_latest_month then coalesce(open_exception_count, 0) end as integer)
            as open_exception_count,
        cast(
            case
                when is_latest_month then coalesce(open_exception_amount_at_risk_reporting, 0)
            end
            as decimal(18, 2)
        ) as open_exception_amount_at_risk_reporting
    from entity_months_measured
),

-- the previous month's figures beside this month's, for "change vs previous period"
kpis_compared as (
    select
        kpis_calculated.*,
        previous_month.recognised_revenue_reporting as recognised_revenue_reporting_previous,
        previous_month.cost_amount_reporting as cost_amount_reporting_previous,
        previous_month.margin_amount_reporting as margin_amount_reporting_previous,
        previous_month.margin_pct as margin_pct_previous,
        previous_month.utilization as utilization_previous,
        previous_month.total_utilization as total_utilization_previous,
        previous_month.wip_amount_reporting as wip_amount_reporting_previous,
        previous_month.ar_balance_reporting as ar_balance_reporting_previous,
        previous_month.dso_days as dso_days_previous,
        previous_month.time_to_bill_lag_days as time_to_bill_lag_days_previous
    from kpis_calculated
    left join kpis_calculated as previous_month
        on
            kpis_calculated.legal_entity_id = previous_month.legal_entity_id
            and kpis_calculated.month_start_date - 1 = previous_month.month_end_date
)

select * from kpis_compared
