{#- One row per client per legal entity per calendar month (a client billed by two entities has
    a row for each, as their currencies differ): the client engagements' recognised revenue,
    cost and margin (mart_margin_by_engagement) added up, margin % on the sums (null when
    revenue is 0), for the month and to date. -#}
with

mart_margin_by_engagement as (
    select
        engagement_id,
        client_id,
        legal_entity_id,
        currency_code,
        month_start_date,
        approved_hours,
        recognised_revenue,
        labour_cost_amount,
        expense_cost_amount,
        cost_amount,
        recognised_revenue_to_date,
        cost_amount_to_date,
        recognised_revenue_reporting,
        cost_amount_reporting,
        recognised_revenue_to_date_reporting,
        cost_amount_to_date_reporting,
        is_latest_month
    from {{ ref('mart_margin_by_engagement') }}
),

months_summed as (
    select
        client_id,
        legal_entity_id,
        currency_code,
        month_start_date,
        count(*) as engagements,
        sum(approved_hours) as approved_hours,
        sum(recognised_revenue) as recognised_revenue,
        sum(labour_cost_amount) as labour_cost_amount,
        sum(expense_cost_amount) as expense_cost_amount,
        sum(cost_amount) as cost_amount,
        sum(recognised_revenue_to_date) as recognised_revenue_to_date,
        sum(cost_amount_to_date) as cost_amount_to_date,
        sum(recognised_revenue_reporting) as recognised_revenue_reporting,
        sum(cost_amount_reporting) as cost_amount_reporting,
        sum(recognised_revenue_to_date_reporting) as recognised_revenue_to_date_reporting,
        sum(cost_amount_to_date_reporting) as cost_amount_to_date_reporting,
        bool_or(is_latest_month) as is_latest_month
    from mart_margin_by_engagement
    group by 1, 2, 3, 4
),

final as (
    select
        client_id,
        legal_entity_id,
        currency_code,
        month_start_date,
        cast(engagements as integer) as engagements,
        {{ margin_figures() }},
        is_latest_month
    from months_summed
)

select * from final
