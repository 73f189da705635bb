{#- One row per client engagement per month end, from its first month with activity to the month
    of the run's as-of date (that row is WIP as of the run: its `wip_date` is the as-of date).
    - time and materials: approved billable time and billable expenses not yet invoiced at the
      WIP date, at the contracted rate;
    - fixed fee and milestone: revenue recognised to date (percent complete on hours) minus the
      amount invoiced to date, net of credit memos; negative = billed in advance;
    - retainer: recognised as invoiced, so WIP is zero;
    - an engagement without an ERP project: none (its time is in mart_unbilled_time).
    The reporting currency is at the WIP date's rate (a balance, at the closing rate). -#}
with

int_revenue_recognised_by_engagement_month as (
    select
        engagement_id,
        month_start_date,
        month_end_date,
        client_id,
        legal_entity_id,
        currency_code,
        billing_model,
        contract_value,
        budget_hours,
        approved_hours_to_date,
        percent_complete,
        unbilled_time_amount_to_date,
        unbilled_expense_amount_to_date,
        invoiced_amount_to_date,
        recognised_revenue_to_date,
        rate_date,
        rate_to_reporting,
        is_latest_month
    from {{ ref('int_revenue_recognised_by_engagement_month') }}
),

wip_computed as (
    select
        *,
        case
            when billing_model = 'time_and_materials'
                then unbilled_time_amount_to_date + unbilled_expense_amount_to_date
            when billing_model in ('fixed_fee', 'milestone', 'retainer')
                then recognised_revenue_to_date - invoiced_amount_to_date
            else 0
        end as wip_amount
    from int_revenue_recognised_by_engagement_month
),

final as (
    select
        engagement_id,
        month_start_date,
        rate_date as wip_date,
        client_id,
        legal_entity_id,
        currency_code,
        billing_model,
        contract_value,
        budget_hours,
        approved_hours_to_date,
        percent_complete,
        cast(
            case when billing_model = 'time_and_materials' then unbilled_time_amount_to_date end
            as decimal(18, 2)
        ) as unbilled_time_amount,
        cast(case
            when billing_model = 'time_and_materials' then unbilled_expense_amount_to_date
        end as decimal(18, 2)) as unbilled_expense_amount,
        recognised_revenue_to_date,
        invoiced_amount_to_date,
        cast(wip_amount as decimal(18, 2)) as wip_amount,
        wip_amount < 0 as is_billed_in_advance,
        rate_to_reporting,
        cast(round(wip_amount * rate_to_reporting, 2) as decimal(18, 2)) as wip_amount_reporting,
        is_latest_month
    from wip_computed
)

select * from final
