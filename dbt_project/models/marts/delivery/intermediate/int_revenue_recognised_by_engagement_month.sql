{#- One row per client engagement per calendar month, from the first month with time, expenses
    or invoices to the month of the run's as-of date: what was worked, billed and invoiced, and
    the revenue recognised by the engagement's billing model (DECISIONLOG):
    - time and materials: approved billable time at the contracted rate + approved billable
      expenses, in the month of the work;
    - fixed fee and milestone: percent complete on hours (approved hours to date / budget hours,
      at most 100%) x contract value, to date, and 100% from the month a closed or completed
      engagement ended; the month's revenue is the change in the month (without a budget: as
      invoiced);
    - retainer: as invoiced, in the invoice's month;
    A credit memo takes revenue back: T&M and retainer revenue in its month, and for fixed fee
    and milestone it lowers the contract value the percent complete applies to.
    - an engagement without an ERP project (billing model unknown): nothing until it is mapped.
    Amounts in the engagement's currency; the reporting currency at the month's closing rate
    (its last day, or the as-of date for the month in progress). -#}
with

dim_engagements as (
    select
        engagement_id,
        client_id,
        legal_entity_id,
        currency_code,
        billing_model,
        contract_value,
        budget_hours,
        end_date,
        is_closed
    from {{ ref('dim_engagements') }}
    -- client work: an ERP project, or a PSA project billable to a client
    where not is_internal or is_billable
),

int_time_entries_valued_at_rate_card as (
    select
        engagement_id,
        engagement_legal_entity_id,
        currency_code,
        work_month_start_date,
        hour_category,
        hours,
        contracted_amount,
        invoice_date
    from {{ ref('int_time_entries_valued_at_rate_card') }}
    where is_approved and is_client_work
),

fct_expenses as (
    select
        engagement_id,
        expense_date,
        expense_amount,
        is_billable,
        erp_invoice_id
    from {{ ref('fct_expenses') }}
    where is_approved and not is_deleted
),

fct_invoices as (
    select
        erp_invoice_id,
        engagement_id,
        document_type,
        invoice_date,
        invoice_amount,
        invoice_amount_reporting
    from {{ ref('fct_invoices') }}
    where not is_voided
),

fct_fx_rates as (
    select
        currency_code,
        rate_date,
        rate_to_reporting
    from {{ ref('fct_fx_rates') }}
),

expenses_with_invoice_date as (
    select
        fct_expenses.engagement_id,
        fct_expenses.expense_date,
        fct_expenses.is_billable,
        -- a non-billable expense is a cost only: it still opens the engagement's months
        case when fct_expenses.is_billable then fct_expenses.expense_amount else 0 end
            as expense_amount,
        fct_invoices.invoice_date
    from fct_expenses
    left join fct_invoices
        on fct_expenses.erp_invoice_id = fct_invoices.erp_invoice_id
),

-- each fact as a flow in the month it happens
flows as (
    select
        engagement_id,
        work_month_start_date as month_start_date,
        hours as approved_hours,
        contracted_amount as billable_time_amount,
        0 as billed_time_amount,
        0 as billable_expense_amount,
        0 as billed_expense_amount,
        0 as invoiced_amount,
        0 as credited_amount,
        0 as invoiced_amount_reporting
    from int_time_entries_valued_at_rate_card
    union all
    select
        engagement_id,
        cast({{ dbt.date_trunc('month', 'invoice_date') }} as date) as month_start_date,
        0 as approved_hours,
        0 as billable_time_amount,
        contracted_amount as billed_time_amount,
        0 as billable_expense_amount,
        0 as billed_expense_amount,
        0 as invoiced_amount,
        0 as credited_amount,
        0 as invoiced_amount_reporting
    from int_time_entries_valued_at_rate_card
    where hour_category = 'billable' and invoice_date is not null
    union all
    select
        engagement_id,
        cast({{ dbt.date_trunc('month', 'expense_date') }} as date) as month_start_date,
        0 as approved_hours,
        0 as billable_time_amount,
        0 as billed_time_amount,
        expense_amount as billable_expense_amount,
        0 as billed_expense_amount,
        0 as invoiced_amount,
        0 as credited_amount,
        0 as invoiced_amount_reporting
    from expenses_with_invoice_date
    union all
    select
        engagement_id,
        cast({{ dbt.date_trunc('month', 'invoice_date') }} as date) as month_start_date,
        0 as approved_hours,
        0 as billable_time_amount,
        0 as billed_time_amount,
        0 as billable_expense_amount,
        expense_amount as billed_expense_amount,
        0 as invoiced_amount,
        0 as credited_amount,
        0 as invoiced_amount_reporting
    from expenses_with_invoice_date
    where invoice_date is not null
    union all
    -- a credit memo takes back what an invoice billed
    select
        engagement_id,
        cast({{ dbt.date_trunc('month', 'invoice_date') }} as date) as month_start_date,
        0 as approved_hours,
        0 as billable_time_amount,
        0 as billed_time_amount,
        0 as billable_expense_amount,
        0 as billed_expense_amount,
        case when document_type = 'credit_memo' then -1 else 1 end
        * invoice_amount as invoiced_amount,
        case when document_type = 'credit_memo' then invoice_amount else 0 end
            as credited_amount,
        case when document_type = 'credit_memo' then -1 else 1 end
        * invoice_amount_reporting as invoiced_amount_reporting
    from fct_invoices
),

flows_by_month as (
    select
        engagement_id,
        month_start_date,
        sum(approved_hours) as approved_hours,
        sum(billable_time_amount) as billable_time_amount,
        sum(billed_time_amount) as billed_time_amount,
        sum(billable_expense_amount) as billable_expense_amount,
        sum(billed_expense_amount) as billed_expense_amount,
        sum(invoiced_amount) as invoiced_amount,
        sum(credited_amount) as credited_amount,
        sum(invoiced_amount_reporting) as invoiced_amount_reporting
    from flows
    group by 1, 2
),

first_months as (
    select
        engagement_id,
        min(month_start_date) as first_month_start_date
    from flows_by_month
    group by 1
),

time_entities as (
    select
        engagement_id,
        min(engagement_legal_entity_id) as legal_entity_id,
        min(currency_code) as currency_code
    from int_time_entries_valued_at_rate_card
    group by 1
),

-- an engagement without an ERP project takes its entity and currency from its time
engagements_described as (
    select
        dim_engagements.engagement_id,
        dim_engagements.client_id,
        case
            when dim_engagements.legal_entity_id = md5('-1')
                then coalesce(time_entities.legal_entity_id, dim_engagements.legal_entity_id)
            else dim_engagements.legal_entity_id
        end as legal_entity_id,
        coalesce(dim_engagements.currency_code, time_entities.currency_code) as currency_code,
        dim_engagements.billing_model,
        dim_engagements.contract_value,
        dim_engagements.budget_hours,
        dim_engagements.end_date,
        dim_engagements.is_closed,
        first_months.first_month_start_date
    from dim_engagements
    inner join first_months
        on dim_engagements.engagement_id = first_months.engagement_id
    left join time_entities
        on dim_engagements.engagement_id = time_entities.engagement_id
),

months as (
    select cast(spine.month_start as date) as month_start_date
    from {{ date_series(
        '(select min(first_months.first_month_start_date) from first_months)',
        'cast(' ~ dbt.date_trunc('month', as_of_date() ~ ' - 1') ~ ' as date)', 'month',
        'spine', 'month_start'
    ) }}
),

engagement_months as (
    select
        engagements_described.*,
        months.month_start_date,
        cast({{ dbt.dateadd('month', 1, 'months.month_start_date') }} as date) - 1
            as month_end_date,
        coalesce(flows_by_month.approved_hours, 0) as approved_hours,
        coalesce(flows_by_month.billable_time_amount, 0) as billable_time_amount,
        coalesce(flows_by_month.billed_time_amount, 0) as billed_time_amount,
        coalesce(flows_by_month.billable_expense_amount, 0) as billable_expense_amount,
        coalesce(flows_by_month.billed_expense_amount, 0) as billed_expense_amount,
        coalesce(flows_by_month.invoiced_amount, 0) as invoiced_amount,
        coalesce(flows_by_month.credited_amount, 0) as credited_amount,
        coalesce(flows_by_month.invoiced_amount_reporting, 0) as invoiced_amount_reporting,
        -- a closed or completed engagement, from the month it ended
        coalesce(
            engagements_described.is_closed
            and months.month_start_date
            >= cast({{ dbt.date_trunc('month', 'engagements_described.end_date') }} as date),
            false
        ) as is_ended
    from engagements_described
    inner join months
        on engagements_described.first_month_start_date <= months.month_start_date
    left join flows_by_month
        on
            engagements_described.engagement_id = flows_by_month.engagement_id
            and months.month_start_date = flows_by_month.month_start_date
),

months_to_date as (
    select
        *,
        sum(approved_hours) over engagement_to_date as approved_hours_to_date,
        sum(billable_time_amount - billed_time_amount) over engagement_to_date
            as unbilled_time_amount_to_date,
        sum(billable_expense_amount - billed_expense_amount) over engagement_to_date
            as unbilled_expense_amount_to_date,
        sum(invoiced_amount) over engagement_to_date as invoiced_amount_to_date,
        sum(credited_amount) over engagement_to_date as credited_amount_to_date,
        sum(billable_time_amount + billable_expense_amount) over engagement_to_date
            as time_and_expenses_to_date
    from engagement_months
    window engagement_to_date as (
        partition by engagement_id
        order by month_start_date
        rows between unbounded preceding and current row
    )
),

-- revenue recognised to the month's end, by billing model
recognised_to_date as (
    select
        *,
        case
            when billing_model not in ('fixed_fee', 'milestone') then null
            when is_ended then 1
            when budget_hours > 0 then least(approved_hours_to_date / budget_hours, 1)
        end as percent_complete
    from months_to_date
),

recognised_to_date_valued as (
    select
        *,
        case
            when billing_model = 'time_and_materials'
                then time_and_expenses_to_date - credited_amount_to_date
            when percent_complete = 1
                then contract_value - credited_amount_to_date
            -- exact: the share of hours is not rounded through a binary float
            when percent_complete is not null
                then {{ exact_share(
                    'contract_value - credited_amount_to_date',
                    'approved_hours_to_date',
                    'budget_hours',
                ) }}
            when billing_model in ('fixed_fee', 'milestone', 'retainer')
                then invoiced_amount_to_date
            else 0
        end as recognised_revenue_to_date
    from recognised_to_date
),

recognised_in_month as (
    select
        recognised.*,
        recognised.recognised_revenue_to_date - coalesce(lag(
            recognised.recognised_revenue_to_date
        ) over (
            partition by recognised.engagement_id
            order by recognised.month_start_date
        ), 0) as recognised_revenue,
        least(recognised.month_end_date, {{ as_of_date() }}) as rate_date,
        fct_fx_rates.rate_to_reporting
    from recognised_to_date_valued as recognised
    left join fct_fx_rates
        on
            recognised.currency_code = fct_fx_rates.currency_code
            and least(recognised.month_end_date, {{ as_of_date() }}) = fct_fx_rates.rate_date
),

final as (
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
        cast(approved_hours as decimal(12, 2)) as approved_hours,
        cast(approved_hours_to_date as decimal(14, 2)) as approved_hours_to_date,
        cast(round(percent_complete, 4) as decimal(9, 4)) as percent_complete,
        is_ended,
        cast(billable_time_amount as decimal(18, 2)) as billable_time_amount,
        cast(billable_expense_amount as decimal(18, 2)) as billable_expense_amount,
        cast(billed_time_amount as decimal(18, 2)) as billed_time_amount,
        cast(billed_expense_amount as decimal(18, 2)) as billed_expense_amount,
        cast(unbilled_time_amount_to_date as decimal(18, 2)) as unbilled_time_amount_to_date,
        cast(unbilled_expense_amount_to_date as decimal(18, 2))
            as unbilled_expense_amount_to_date,
        cast(invoiced_amount as decimal(18, 2)) as invoiced_amount,
        cast(invoiced_amount_to_date as decimal(18, 2)) as invoiced_amount_to_date,
        cast(credited_amount as decimal(18, 2)) as credited_amount,
        cast(credited_amount_to_date as decimal(18, 2)) as credited_amount_to_date,
        cast(invoiced_amount_reporting as decimal(18, 2)) as invoiced_amount_reporting,
        cast(recognised_revenue as decimal(18, 2)) as recognised_revenue,
        cast(recognised_revenue_to_date as decimal(18, 2)) as recognised_revenue_to_date,
        rate_date,
        cast(rate_to_reporting as decimal(18, 6)) as rate_to_reporting,
        cast(round(recognised_revenue * rate_to_reporting, 2) as decimal(18, 2))
            as recognised_revenue_reporting,
        month_start_date
        = cast({{ dbt.date_trunc('month', as_of_date() ~ ' - 1') }} as date) as is_latest_month
    from recognised_in_month
)

select * from final
