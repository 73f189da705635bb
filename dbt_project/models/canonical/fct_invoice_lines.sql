{#- One row per line of a customer invoice in the ERP (the main line, which only repeats the
    total, and tax lines are left out): what was billed, its amount in the invoice's currency
    and the reporting currency, the time postings billed on it (a time line bills one person's
    posted hours at one rate) and the PSA expense it bills. -#}
with

transaction_lines as (
    select
        transaction_line_id,
        transaction_id,
        item_id,
        employee_id,
        psa_expense_id,
        record_ref,
        memo,
        line_sequence_number,
        quantity,
        rate,
        foreign_amount,
        is_billable
    from {{ staged('erp', 'transaction_lines') }}
    where
        not coalesce(is_main_line, false)
        and not coalesce(is_tax_line, false)
),

invoices as (
    select
        invoice_id,
        erp_invoice_id,
        client_id,
        engagement_id,
        legal_entity_id,
        currency_code,
        invoice_date,
        rate_to_reporting
    from {{ ref('fct_invoices') }}
    where document_type = 'invoice'
),

items as (
    select
        item_id,
        item_name
    from {{ staged('erp', 'items') }}
),

resource_map as (
    select
        resource_id,
        system_record_id
    from {{ ref('map_resource_ids') }}
    where system_role = 'erp'
),

time_postings as (
    select
        erp_invoice_id,
        resource_id,
        bill_rate,
        hours
    from {{ ref('fct_time_postings') }}
    where
        erp_invoice_id is not null
        and not is_deleted
),

postings_per_person_and_rate as (
    select
        erp_invoice_id,
        resource_id,
        bill_rate,
        sum(hours) as billed_hours,
        count(*) as time_posting_count
    from time_postings
    group by 1, 2, 3
),

lines_resolved as (
    select
        md5(transaction_lines.record_ref) as invoice_line_id,
        transaction_lines.record_ref,
        transaction_lines.transaction_line_id as erp_invoice_line_id,
        invoices.invoice_id,
        invoices.erp_invoice_id,
        transaction_lines.line_sequence_number as line_number,
        case
            when transaction_lines.psa_expense_id is not null then 'expense'
            when transaction_lines.employee_id is not null then 'time'
            else 'fee'
        end as line_type,
        items.item_name,
        transaction_lines.memo as line_memo,
        invoices.client_id,
        invoices.engagement_id,
        invoices.legal_entity_id,
        case
            when transaction_lines.employee_id is not null
                then coalesce(resource_map.resource_id, md5('-1'))
        end as resource_id,
        transaction_lines.psa_expense_id,
        invoices.currency_code,
        invoices.invoice_date,
        transaction_lines.quantity,
        transaction_lines.rate as line_rate,
        transaction_lines.foreign_amount as line_amount,
        invoices.rate_to_reporting,
        cast(
            round(transaction_lines.foreign_amount * invoices.rate_to_reporting, 2)
            as decimal(18, 2)
        ) as line_amount_reporting,
        cast(coalesce(postings_per_person_and_rate.billed_hours, 0) as decimal(12, 4))
            as billed_hours,
        coalesce(postings_per_person_and_rate.time_posting_count, 0) as time_posting_count,
        coalesce(transaction_lines.is_billable, false) as is_billable
    from transaction_lines
    inner join invoices
        on transaction_lines.transaction_id = invoices.erp_invoice_id
    left join items
        on transaction_lines.item_id = items.item_id
    left join resource_map
        on transaction_lines.employee_id = resource_map.system_record_id
    left join postings_per_person_and_rate
        on
            invoices.erp_invoice_id = postings_per_person_and_rate.erp_invoice_id
            and resource_map.resource_id = postings_per_person_and_rate.resource_id
            and transaction_lines.rate = postings_per_person_and_rate.bill_rate
)

select * from lines_resolved
