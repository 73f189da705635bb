{#- One row per ERP customer invoice: the values the CRM's invoice mirror (custom object
    erp_invoices, unique property netsuite_invoice_id) should hold. `crm_record_id` is null when
    the CRM has no mirror yet: the reverse sync upserts by the unique property. An invoice dated
    in a closed accounting period is flagged: the reverse sync holds corrections to it for
    approval (DESIGN: reverse sync). -#}
with

invoices as (
    select
        invoice_id,
        erp_invoice_id,
        invoice_number,
        invoice_date,
        due_date,
        currency_code,
        invoice_amount,
        amount_paid,
        amount_due,
        invoice_status
    from {{ ref('fct_invoices') }}
    where document_type = 'invoice' and not is_voided
),

closed_periods as (
    select
        start_date,
        end_date
    from {{ ref('dim_accounting_periods') }}
    where period_type = 'month' and is_closed
),

crm_invoice_records as (
    select
        erp_invoice_id,
        crm_record_id
    from {{ ref('fct_crm_invoice_records') }}
    where not is_archived
),

desired_ranked as (
    select
        invoices.erp_invoice_id as netsuite_invoice_id,
        crm_invoice_records.crm_record_id,
        invoices.invoice_id,
        invoices.invoice_number,
        invoices.invoice_date,
        invoices.due_date,
        invoices.currency_code as currency,
        invoices.invoice_amount,
        invoices.amount_paid,
        invoices.amount_due,
        invoices.invoice_status,
        closed_periods.start_date is not null as is_in_closed_period,
        row_number() over (
            partition by invoices.erp_invoice_id order by crm_invoice_records.crm_record_id
        ) as mirror_rank
    from invoices
    left join crm_invoice_records
        on invoices.erp_invoice_id = crm_invoice_records.erp_invoice_id
    left join closed_periods
        on invoices.invoice_date between closed_periods.start_date and closed_periods.end_date
),

desired as (
    select
        netsuite_invoice_id,
        crm_record_id,
        invoice_id,
        invoice_number,
        invoice_date,
        due_date,
        currency,
        invoice_amount,
        amount_paid,
        amount_due,
        invoice_status,
        is_in_closed_period
    from desired_ranked
    where mirror_rank = 1
)

select * from desired
