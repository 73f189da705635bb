{#- One row per client engagement per practice per calendar month: the cost of the approved time
    (hours x the person's cost rate) and of the approved expenses the practice's people put on
    the engagement, and the standard value of their approved hours (hours x contracted rate),
    which weights the engagement's revenue between practices (mart_margin_by_practice). -#}
with

int_time_entries_valued_at_rate_card as (
    select
        engagement_id,
        practice_name,
        work_month_start_date,
        hours,
        cost_amount,
        standard_amount
    from {{ ref('int_time_entries_valued_at_rate_card') }}
    where is_approved and is_client_work
),

fct_expenses as (
    select
        engagement_id,
        resource_id,
        expense_date,
        expense_amount
    from {{ ref('fct_expenses') }}
    where is_approved and not is_deleted
),

dim_engagements as (
    select engagement_id
    from {{ ref('dim_engagements') }}
    where not is_internal or is_billable
),

dim_resources as (
    select
        resource_id,
        practice_name
    from {{ ref('dim_resources') }}
),

costs as (
    select
        engagement_id,
        practice_name,
        work_month_start_date as month_start_date,
        hours as approved_hours,
        cost_amount as labour_cost_amount,
        0 as expense_cost_amount,
        standard_amount
    from int_time_entries_valued_at_rate_card
    union all
    select
        fct_expenses.engagement_id,
        coalesce(dim_resources.practice_name, 'Unassigned') as practice_name,
        cast({{ dbt.date_trunc('month', 'fct_expenses.expense_date') }} as date)
            as month_start_date,
        0 as approved_hours,
        0 as labour_cost_amount,
        fct_expenses.expense_amount as expense_cost_amount,
        0 as standard_amount
    from fct_expenses
    inner join dim_engagements
        on fct_expenses.engagement_id = dim_engagements.engagement_id
    left join dim_resources
        on fct_expenses.resource_id = dim_resources.resource_id
),

costs_summed as (
    select
        engagement_id,
        practice_name,
        month_start_date,
        cast(sum(approved_hours) as decimal(12, 2)) as approved_hours,
        cast(sum(labour_cost_amount) as decimal(18, 2)) as labour_cost_amount,
        cast(sum(expense_cost_amount) as decimal(18, 2)) as expense_cost_amount,
        cast(sum(standard_amount) as decimal(18, 2)) as standard_amount
    from costs
    group by 1, 2, 3
)

select * from costs_summed
