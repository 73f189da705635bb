{#- One row per legal entity per month, plus one row per month for all entities together
    (legal_entity_id 'all'): days sales outstanding by the average method, DSO = AR at the month
    end / revenue invoiced in the 90 days up to it x 90, in the reporting currency (DECISIONLOG:
    "DSO: the average method over 90 days"). The month of the as-of date is measured at the as-of
    date. -#}
with

int_invoices_balanced_at_month_ends as (
    select
        legal_entity_id,
        month_start_date,
        measured_on_date,
        amount_due_reporting
    from {{ ref('int_invoices_balanced_at_month_ends') }}
),

dim_accounting_periods as (
    select
        start_date,
        end_date
    from {{ ref('dim_accounting_periods') }}
    where
        period_type = 'month'
        and start_date <= {{ as_of_date() }}
),

dim_legal_entities as (
    select
        legal_entity_id,
        legal_entity_name
    from {{ ref('dim_legal_entities') }}
    where not coalesce(is_group, false)
),

fct_invoices as (
    select
        legal_entity_id,
        document_type,
        invoice_date,
        invoice_amount_reporting
    from {{ ref('fct_invoices') }}
    where not is_voided
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
    where end_date >= (select min(fct_invoices.invoice_date) from fct_invoices)
),

entity_months as (
    select
        dim_legal_entities.legal_entity_id,
        dim_legal_entities.legal_entity_name,
        month_ends.month_start_date,
        month_ends.month_end_date,
        month_ends.measured_on_date
    from dim_legal_entities
    cross join month_ends
),

receivables_summed as (
    select
        legal_entity_id,
        month_start_date,
        sum(amount_due_reporting) as ar_balance_reporting,
        count(*) as open_invoice_count
    from int_invoices_balanced_at_month_ends
    group by 1, 2
),

-- invoices less credit memos dated in the 90 days ending on the measuring day (that day and
-- the 89 before it), each at its own date's rate
revenue_invoiced_last_90_days as (
    select
        fct_invoices.legal_entity_id,
        month_ends.month_start_date,
        sum(
            case
                when fct_invoices.document_type = 'credit_memo'
                    then -fct_invoices.invoice_amount_reporting
                else fct_invoices.invoice_amount_reporting
            end
        ) as invoiced_last_90_days_reporting
    from fct_invoices
    inner join month_ends
        on
            fct_invoices.invoice_date <= month_ends.measured_on_date
            and fct_invoices.invoice_date > month_ends.measured_on_date - 90
    group by 1, 2
),

entity_months_measured as (
    select
        entity_months.legal_entity_id,
        entity_months.legal_entity_name,
        false as is_all_entities,
        entity_months.month_start_date,
        entity_months.month_end_date,
        entity_months.measured_on_date,
        coalesce(receivables_summed.ar_balance_reporting, 0) as ar_balance_reporting,
        coalesce(revenue_invoiced_last_90_days.invoiced_last_90_days_reporting, 0)
            as invoiced_last_90_days_reporting,
        coalesce(receivables_summed.open_invoice_count, 0) as open_invoice_count
    from entity_months
    left join receivables_summed
        on
            entity_months.legal_entity_id = receivables_summed.legal_entity_id
            and entity_months.month_start_date = receivables_summed.month_start_date
    left join revenue_invoiced_last_90_days
        on
            entity_months.legal_entity_id = revenue_invoiced_last_90_days.legal_entity_id
            and entity_months.month_start_date = revenue_invoiced_last_90_days.month_start_date
),

all_entity_months_measured as (
    select
        'all' as legal_entity_id,
        'All entities' as legal_entity_name,
        true as is_all_entities,
        month_start_date,
        month_end_date,
        measured_on_date,
        sum(ar_balance_reporting) as ar_balance_reporting,
        sum(invoiced_last_90_days_reporting) as invoiced_last_90_days_reporting,
        sum(open_invoice_count) as open_invoice_count
    from entity_months_measured
    group by 1, 2, 3, 4, 5, 6
),

months_measured as (
    select * from entity_months_measured
    union all
    select * from all_entity_months_measured
),

dso_calculated as (
    select
        legal_entity_id,
        legal_entity_name,
        is_all_entities,
        month_start_date,
        month_end_date,
        measured_on_date,
        measured_on_date = month_end_date as is_month_complete,
        '{{ var("reporting_currency") }}' as reporting_currency_code,
        cast(ar_balance_reporting as decimal(18, 2)) as ar_balance_reporting,
        cast(invoiced_last_90_days_reporting as decimal(18, 2))
            as invoiced_last_90_days_reporting,
        cast(open_invoice_count as integer) as open_invoice_count,
        cast(
            case
                when invoiced_last_90_days_reporting > 0
                    then round(ar_balance_reporting * 90 / invoiced_last_90_days_reporting, 1)
            end
            as decimal(10, 1)
        ) as dso_days
    from months_measured
)

select * from dso_calculated
