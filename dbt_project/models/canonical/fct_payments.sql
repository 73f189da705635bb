{#- One row per application of a customer payment or a credit memo to an invoice (the ERP's
    links from an invoice to the documents that settle it): how much of the invoice it settled,
    on which date, in the invoice's currency and the reporting currency. A payment split over
    two invoices is two rows; an invoice paid in two parts has two rows. -#}
with

transaction_links as (
    select
        previous_transaction_id,
        next_transaction_id,
        record_ref,
        foreign_amount,
        link_date
    from {{ staged('erp', 'previous_transaction_links') }}
),

settling_documents as (
    select
        transaction_id,
        record_ref,
        transaction_type,
        document_number,
        transaction_date,
        is_voided
    from {{ staged('erp', 'transactions') }}
    where transaction_type in ('CustPymt', 'CustCred')
),

invoices as (
    select
        invoice_id,
        erp_invoice_id,
        client_id,
        engagement_id,
        legal_entity_id,
        currency_code
    from {{ ref('fct_invoices') }}
    where document_type = 'invoice'
),

fx_rates as (
    select
        currency_code,
        rate_date,
        rate_to_reporting
    from {{ ref('fct_fx_rates') }}
),

applications_resolved as (
    select
        md5(transaction_links.record_ref) as payment_application_id,
        transaction_links.record_ref,
        md5(settling_documents.record_ref) as payment_id,
        settling_documents.transaction_id as erp_payment_id,
        settling_documents.document_number as payment_number,
        case settling_documents.transaction_type
            when 'CustCred' then 'credit_memo'
            else 'payment'
        end as payment_type,
        invoices.invoice_id,
        invoices.erp_invoice_id,
        invoices.client_id,
        invoices.engagement_id,
        invoices.legal_entity_id,
        invoices.currency_code,
        settling_documents.transaction_date as payment_date,
        coalesce(transaction_links.link_date, settling_documents.transaction_date)
            as application_date,
        transaction_links.foreign_amount as amount_applied,
        fx_rates.rate_to_reporting,
        cast(
            round(transaction_links.foreign_amount * fx_rates.rate_to_reporting, 2)
            as decimal(18, 2)
        ) as amount_applied_reporting,
        coalesce(settling_documents.is_voided, false) as is_voided
    from transaction_links
    inner join settling_documents
        on transaction_links.next_transaction_id = settling_documents.transaction_id
    inner join invoices
        on transaction_links.previous_transaction_id = invoices.erp_invoice_id
    left join fx_rates
        on
            invoices.currency_code = fx_rates.currency_code
            and coalesce(transaction_links.link_date, settling_documents.transaction_date)
            = fx_rates.rate_date
)

select * from applications_resolved
