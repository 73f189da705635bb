{#- One row per invoice that billed time: how long the time waited to be billed, as the
    hour-weighted average of (invoice date - work date) over the time postings billed on it, so
    that an 8-hour day counts eight times a 1-hour entry. -#}
with

fct_time_postings as (
    select
        erp_invoice_id,
        work_date,
        hours
    from {{ ref('fct_time_postings') }}
    where
        erp_invoice_id is not null
        and not is_deleted
),

fct_invoices as (
    select
        invoice_id,
        erp_invoice_id,
        invoice_number,
        client_id,
        engagement_id,
        legal_entity_id,
        invoice_date
    from {{ ref('fct_invoices') }}
    where
        document_type = 'invoice'
        and not is_voided
),

postings_lagged as (
    select
        fct_invoices.invoice_id,
        fct_time_postings.work_date,
        fct_time_postings.hours,
        {{ dbt.datediff('fct_time_postings.work_date', 'fct_invoices.invoice_date', 'day') }}
            as lag_days
    from fct_time_postings
    inner join fct_invoices
        on fct_time_postings.erp_invoice_id = fct_invoices.erp_invoice_id
),

lag_per_invoice as (
    select
        invoice_id,
        sum(hours) as billed_hours,
        count(*) as time_posting_count,
        min(work_date) as first_work_date,
        max(work_date) as last_work_date,
        sum(hours * lag_days) as lag_hour_days,
        min(lag_days) as min_lag_days,
        max(lag_days) as max_lag_days
    from postings_lagged
    group by 1
),

invoices_lagged as (
    select
        fct_invoices.invoice_id,
        fct_invoices.erp_invoice_id,
        fct_invoices.invoice_number,
        fct_invoices.client_id,
        fct_invoices.engagement_id,
        fct_invoices.legal_entity_id,
        fct_invoices.invoice_date,
        lag_per_invoice.first_work_date,
        lag_per_invoice.last_work_date,
        cast(lag_per_invoice.billed_hours as decimal(12, 2)) as billed_hours,
        cast(lag_per_invoice.time_posting_count as integer) as time_posting_count,
        cast(
            case
                when lag_per_invoice.billed_hours > 0
                    then round(lag_per_invoice.lag_hour_days / lag_per_invoice.billed_hours, 2)
            end
            as decimal(10, 2)
        ) as time_to_bill_lag_days,
        cast(lag_per_invoice.min_lag_days as integer) as min_lag_days,
        cast(lag_per_invoice.max_lag_days as integer) as max_lag_days
    from lag_per_invoice
    inner join fct_invoices
        on lag_per_invoice.invoice_id = fct_invoices.invoice_id
)

select * from invoices_lagged
