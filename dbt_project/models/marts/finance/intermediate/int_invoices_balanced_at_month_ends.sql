{{ config(materialized='table', contract={'enforced': false}) }}
{#- One row per invoice per month end at which it was open: the invoice amount less the
    payments and credit memos applied up to that day, in the invoice's currency and in the
    reporting currency at the rate in force that day. The month of the as-of date is measured at
    the as-of date. A table (not ephemeral) so that the DSO mart's unit test can give it rows. -#}
with

dim_accounting_periods as (
    select
        start_date,
        end_date
    from {{ ref('dim_accounting_periods') }}
    where
        period_type = 'month'
        and start_date <= {{ as_of_date() }}
),

fct_invoices as (
    select
        invoice_id,
        legal_entity_id,
        currency_code,
        invoice_date,
        invoice_amount
    from {{ ref('fct_invoices') }}
    where
        document_type = 'invoice'
        and not is_voided
),

fct_payments as (
    select
        invoice_id,
        application_date,
        amount_applied
    from {{ ref('fct_payments') }}
    where not is_voided
),

fct_fx_rates as (
    select
        currency_code,
        rate_date,
        rate_to_reporting
    from {{ ref('fct_fx_rates') }}
),

month_ends as (
    select
        start_date as month_start_date,
        end_date as month_end_date,
        case
            when end_date > {{ as_of_date() }} then {{ as_of_date() }}
            else end_date
        end as measured_on_date
    from dim_accounting_periods
),

invoices_at_month_ends as (
    select
        fct_invoices.invoice_id,
        fct_invoices.legal_entity_id,
        fct_invoices.currency_code,
        fct_invoices.invoice_amount,
        month_ends.month_start_date,
        month_ends.measured_on_date
    from fct_invoices
    inner join month_ends
        on fct_invoices.invoice_date <= month_ends.measured_on_date
),

applications_to_month_ends as (
    select
        fct_payments.invoice_id,
        month_ends.measured_on_date,
        sum(fct_payments.amount_applied) as amount_applied
    from fct_payments
    inner join month_ends
        on fct_payments.application_date <= month_ends.measured_on_date
    group by 1, 2
),

-- the rate in force on each month end: the latest published on or before it (a month ending
-- on a Saturday or Sunday takes Friday's rate)
rates_ranked as (
    select
        fct_fx_rates.currency_code,
        month_ends.measured_on_date,
        fct_fx_rates.rate_to_reporting,
        row_number() over (
            partition by fct_fx_rates.currency_code, month_ends.measured_on_date
            order by fct_fx_rates.rate_date desc
        ) as recency_rank
    from fct_fx_rates
    inner join month_ends
        on fct_fx_rates.rate_date <= month_ends.measured_on_date
),

rates_at_month_ends as (
    select
        currency_code,
        measured_on_date,
        rate_to_reporting
    from rates_ranked
    where recency_rank = 1
),

invoices_balanced as (
    select
        invoices_at_month_ends.invoice_id,
        invoices_at_month_ends.legal_entity_id,
        invoices_at_month_ends.month_start_date,
        invoices_at_month_ends.measured_on_date,
        invoices_at_month_ends.currency_code,
        cast(
            invoices_at_month_ends.invoice_amount
            - coalesce(applications_to_month_ends.amount_applied, 0)
            as decimal(18, 2)
        ) as amount_due,
        rates_at_month_ends.rate_to_reporting
    from invoices_at_month_ends
    left join applications_to_month_ends
        on
            invoices_at_month_ends.invoice_id = applications_to_month_ends.invoice_id
            and invoices_at_month_ends.measured_on_date
            = applications_to_month_ends.measured_on_date
    left join rates_at_month_ends
        on
            invoices_at_month_ends.currency_code = rates_at_month_ends.currency_code
            and invoices_at_month_ends.measured_on_date = rates_at_month_ends.measured_on_date
),

open_balances as (
    select
        invoice_id,
        legal_entity_id,
        month_start_date,
        measured_on_date,
        currency_code,
        amount_due,
        cast(rate_to_reporting as decimal(18, 6)) as rate_to_reporting,
        cast(round(amount_due * rate_to_reporting, 2) as decimal(18, 2)) as amount_due_reporting
    from invoices_balanced
    where amount_due <> 0
)

select * from open_balances
