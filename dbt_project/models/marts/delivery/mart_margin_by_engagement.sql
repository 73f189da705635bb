{#- One row per client engagement per calendar month (its first month with activity to the month
    of the run's as-of date): recognised revenue, cost (approved hours x cost rate + approved
    expenses), margin = revenue - cost and margin % = margin / revenue (null when revenue is 0),
    for the month and to date. Reporting currency at each month's closing rate; to-date
    reporting amounts add up the months. -#}
with

int_revenue_recognised_by_engagement_month as (
    select
        engagement_id,
        month_start_date,
        client_id,
        legal_entity_id,
        currency_code,
        billing_model,
        recognised_revenue,
        rate_to_reporting,
        is_latest_month
    from {{ ref('int_revenue_recognised_by_engagement_month') }}
),

int_costs_summed_by_engagement_practice_month as (
    select
        engagement_id,
        month_start_date,
        approved_hours,
        labour_cost_amount,
        expense_cost_amount
    from {{ ref('int_costs_summed_by_engagement_practice_month') }}
),

costs_by_month as (
    select
        engagement_id,
        month_start_date,
        sum(approved_hours) as approved_hours,
        sum(labour_cost_amount) as labour_cost_amount,
        sum(expense_cost_amount) as expense_cost_amount
    from int_costs_summed_by_engagement_practice_month
    group by 1, 2
),

months_costed as (
    select
        revenue.engagement_id,
        revenue.month_start_date,
        revenue.client_id,
        revenue.legal_entity_id,
        revenue.currency_code,
        revenue.billing_model,
        coalesce(costs_by_month.approved_hours, 0) as approved_hours,
        revenue.recognised_revenue,
        coalesce(costs_by_month.labour_cost_amount, 0) as labour_cost_amount,
        coalesce(costs_by_month.expense_cost_amount, 0) as expense_cost_amount,
        coalesce(costs_by_month.labour_cost_amount, 0)
        + coalesce(costs_by_month.expense_cost_amount, 0) as cost_amount,
        revenue.rate_to_reporting,
        revenue.is_latest_month
    from int_revenue_recognised_by_engagement_month as revenue
    left join costs_by_month
        on
            revenue.engagement_id = costs_by_month.engagement_id
            and revenue.month_start_date = costs_by_month.month_start_date
),

months_converted as (
    select
        *,
        recognised_revenue - cost_amount as margin_amount,
        round(recognised_revenue * rate_to_reporting, 2) as recognised_revenue_reporting,
        round(cost_amount * rate_to_reporting, 2) as cost_amount_reporting
    from months_costed
),

months_to_date as (
    select
        *,
        recognised_revenue_reporting - cost_amount_reporting as margin_amount_reporting,
        sum(recognised_revenue) over engagement_to_date as recognised_revenue_to_date,
        sum(cost_amount) over engagement_to_date as cost_amount_to_date,
        sum(recognised_revenue_reporting) over engagement_to_date
            as recognised_revenue_to_date_reporting,
        sum(cost_amount_reporting) over engagement_to_date as cost_amount_to_date_reporting
    from months_converted
    window engagement_to_date as (
        partition by engagement_id
        order by month_start_date
        rows between unbounded preceding and current row
    )
),

final as (
    select
        engagement_id,
        month_start_date,
        client_id,
        legal_entity_id,
        currency_code,
        billing_model,
        cast(approved_hours as decimal(12, 2)) as approved_hours,
        cast(recognised_revenue as decimal(18, 2)) as recognised_revenue,
        cast(labour_cost_amount as decimal(18, 2)) as labour_cost_amount,
        cast(expense_cost_amount as decimal(18, 2)) as expense_cost_amount,
        cast(cost_amount as decimal(18, 2)) as cost_amount,
        cast(margin_amount as decimal(18, 2)) as margin_amount,
        cast({{ exact_ratio('margin_amount', 'recognised_revenue') }} as decimal(18, 4))
            as margin_pct,
        cast(recognised_revenue_to_date as decimal(18, 2)) as recognised_revenue_to_date,
        cast(cost_amount_to_date as decimal(18, 2)) as cost_amount_to_date,
        cast(recognised_revenue_to_date - cost_amount_to_date as decimal(18, 2))
            as margin_amount_to_date,
        cast({{ exact_ratio(
            'recognised_revenue_to_date - cost_amount_to_date', 'recognised_revenue_to_date'
        ) }} as decimal(18, 4)) as margin_pct_to_date,
        rate_to_reporting,
        cast(recognised_revenue_reporting as decimal(18, 2)) as recognised_revenue_reporting,
        cast(cost_amount_reporting as decimal(18, 2)) as cost_amount_reporting,
        cast(margin_amount_reporting as decimal(18, 2)) as margin_amount_reporting,
        cast(recognised_revenue_to_date_reporting as decimal(18, 2))
            as recognised_revenue_to_date_reporting,
        cast(cost_amount_to_date_reporting as decimal(18, 2)) as cost_amount_to_date_reporting,
        cast(
            recognised_revenue_to_date_reporting - cost_amount_to_date_reporting
            as decimal(18, 2)
        ) as margin_amount_to_date_reporting,
        is_latest_month
    from months_to_date
)

select * from final
