{#- One row per invoice as the CRM mirrors it (the CRM's copy of an ERP invoice: status, amounts,
    dates), keyed to the ERP invoice it mirrors. -#}
with

crm_invoices as (
    select
        erp_invoice_id as crm_invoice_record_id,
        erp_transaction_id,
        record_ref,
        invoice_number,
        invoice_status,
        currency_code,
        invoice_amount,
        amount_paid,
        amount_due,
        invoice_date,
        due_date,
        is_archived,
        updated_at
    from {{ staged('crm', 'erp_invoices') }}
),

erp_invoices as (
    select
        invoice_id,
        erp_invoice_id
    from {{ ref('fct_invoices') }}
),

mirrored as (
    select
        md5(crm_invoices.record_ref) as crm_invoice_record_id,
        crm_invoices.record_ref,
        crm_invoices.crm_invoice_record_id as crm_record_id,
        coalesce(erp_invoices.invoice_id, md5('-1')) as invoice_id,
        crm_invoices.erp_transaction_id as erp_invoice_id,
        crm_invoices.invoice_number,
        crm_invoices.invoice_status,
        crm_invoices.currency_code,
        crm_invoices.invoice_amount,
        crm_invoices.amount_paid,
        crm_invoices.amount_due,
        crm_invoices.invoice_date,
        crm_invoices.due_date,
        coalesce(crm_invoices.is_archived, false) as is_archived,
        crm_invoices.updated_at
    from crm_invoices
    left join erp_invoices
        on crm_invoices.erp_transaction_id = erp_invoices.erp_invoice_id
)

select * from mirrored
