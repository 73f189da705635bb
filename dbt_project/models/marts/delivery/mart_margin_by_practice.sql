{#- One row per practice per legal entity per calendar month: revenue, cost and margin of client
    work by the practice of the people who did it (DECISIONLOG: margin by practice). Cost is the
    practice's own (its people's approved hours x cost rate and their approved expenses). An
    engagement's recognised revenue is shared between practices by the standard value of their
    approved hours in the month (hours x contracted rate); a month without hours (a retainer
    invoiced ahead of the work) shares it by the engagement's whole history, and an engagement
    with no hours at all goes to 'Unassigned'. Margin % = margin / revenue, null when revenue is
    0. Allocated amounts are not rounded before summing, so practices add up to the entity's
    revenue within rounding. -#}
with

int_revenue_recognised_by_engagement_month as (
    select
        engagement_id,
        month_start_date,
        legal_entity_id,
        currency_code,
        recognised_revenue,
        rate_to_reporting
    from {{ ref('int_revenue_recognised_by_engagement_month') }}
),

int_costs_summed_by_engagement_practice_month as (
    select
        engagement_id,
        practice_name,
        month_start_date,
        approved_hours,
        labour_cost_amount,
        expense_cost_amount,
        standard_amount
    from {{ ref('int_costs_summed_by_engagement_practice_month') }}
),

month_shares as (
    select
        engagement_id,
        month_start_date,
        practice_name,
        standard_amount / nullif(
            sum(standard_amount) over (partition by engagement_id, month_start_date), 0
        ) as revenue_share
    from int_costs_summed_by_engagement_practice_month
),

history_shares as (
    select
        engagement_id,
        practice_name,
        sum(standard_amount) / nullif(
            sum(sum(standard_amount)) over (partition by engagement_id), 0
        ) as revenue_share
    from int_costs_summed_by_engagement_practice_month
    group by 1, 2
),

revenue_with_basis as (
    select
        engagement_months.*,
        case
            when exists (
                select 1 from month_shares
                where
                    month_shares.engagement_id = engagement_months.engagement_id
                    and month_shares.month_start_date = engagement_months.month_start_date
                    and month_shares.revenue_share is not null
            ) then 'month'
            when exists (
                select 1 from history_shares
                where
                    history_shares.engagement_id = engagement_months.engagement_id
                    and history_shares.revenue_share is not null
            ) then 'history'
            else 'none'
        end as allocation_basis
    from int_revenue_recognised_by_engagement_month as engagement_months
),

flows as (
    select
        revenue_with_basis.legal_entity_id,
        revenue_with_basis.currency_code,
        revenue_with_basis.month_start_date,
        month_shares.practice_name,
        revenue_with_basis.engagement_id,
        0 as approved_hours,
        revenue_with_basis.recognised_revenue * month_shares.revenue_share as recognised_revenue,
        0 as labour_cost_amount,
        0 as expense_cost_amount,
        revenue_with_basis.rate_to_reporting
    from revenue_with_basis
    inner join month_shares
        on
            revenue_with_basis.engagement_id = month_shares.engagement_id
            and revenue_with_basis.month_start_date = month_shares.month_start_date
    where revenue_with_basis.allocation_basis = 'month'
    union all
    select
        revenue_with_basis.legal_entity_id,
        revenue_with_basis.currency_code,
        revenue_with_basis.month_start_date,
        history_shares.practice_name,
        revenue_with_basis.engagement_id,
        0 as approved_hours,
        revenue_with_basis.recognised_revenue * history_shares.revenue_share
            as recognised_revenue,
        0 as labour_cost_amount,
        0 as expense_cost_amount,
        revenue_with_basis.rate_to_reporting
    from revenue_with_basis
    inner join history_shares
        on revenue_with_basis.engagement_id = history_shares.engagement_id
    where revenue_with_basis.allocation_basis = 'history'
    union all
    select
        legal_entity_id,
        currency_code,
        month_start_date,
        'Unassigned' as practice_name,
        engagement_id,
        0 as approved_hours,
        recognised_revenue,
        0 as labour_cost_amount,
        0 as expense_cost_amount,
        rate_to_reporting
    from revenue_with_basis
    where allocation_basis = 'none'
    union all
    select
        engagement_months.legal_entity_id,
        engagement_months.currency_code,
        practice_costs.month_start_date,
        practice_costs.practice_name,
        practice_costs.engagement_id,
        practice_costs.approved_hours,
        0 as recognised_revenue,
        practice_costs.labour_cost_amount,
        practice_costs.expense_cost_amount,
        engagement_months.rate_to_reporting
    from int_costs_summed_by_engagement_practice_month as practice_costs
    inner join int_revenue_recognised_by_engagement_month as engagement_months
        on
            practice_costs.engagement_id = engagement_months.engagement_id
            and practice_costs.month_start_date = engagement_months.month_start_date
),

months_summed as (
    select
        practice_name,
        legal_entity_id,
        currency_code,
        month_start_date,
        count(distinct engagement_id) as engagements,
        sum(approved_hours) as approved_hours,
        round(sum(recognised_revenue), 2) as recognised_revenue,
        sum(labour_cost_amount) as labour_cost_amount,
        sum(expense_cost_amount) as expense_cost_amount,
        sum(labour_cost_amount + expense_cost_amount) as cost_amount,
        round(sum(recognised_revenue * rate_to_reporting), 2) as recognised_revenue_reporting,
        round(sum((labour_cost_amount + expense_cost_amount) * rate_to_reporting), 2)
            as cost_amount_reporting
    from flows
    group by 1, 2, 3, 4
),

months_to_date as (
    select
        *,
        sum(recognised_revenue) over practice_to_date as recognised_revenue_to_date,
        sum(cost_amount) over practice_to_date as cost_amount_to_date,
        sum(recognised_revenue_reporting) over practice_to_date
            as recognised_revenue_to_date_reporting,
        sum(cost_amount_reporting) over practice_to_date as cost_amount_to_date_reporting
    from months_summed
    window practice_to_date as (
        partition by practice_name, legal_entity_id, currency_code
        order by month_start_date
        rows between unbounded preceding and current row
    )
),

final as (
    select
        practice_name,
        legal_entity_id,
        currency_code,
        month_start_date,
        cast(engagements as integer) as engagements,
        {{ margin_figures() }}
    from months_to_date
)

select * from final
