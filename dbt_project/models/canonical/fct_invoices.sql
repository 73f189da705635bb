{#- One row per customer invoice or credit memo in the ERP, with its paid and remaining amounts
    and the status the ERP's amounts imply (paid / partially_paid / open). -#}
with

transactions as (
    select
        transaction_id,
        customer_id,
        job_id,
        subsidiary_id,
        currency_id,
        accounting_period_id,
        term_id,
        record_ref,
        transaction_type,
        document_number,
        total_amount,
        amount_paid,
        amount_remaining,
        exchange_rate,
        is_voided,
        transaction_date,
        due_date,
        created_at,
        updated_at
    from {{ staged('erp', 'transactions') }}
    where transaction_type in ('CustInvc', 'CustCred')
),

client_map as (
    select
        client_id,
        system_record_id
    from {{ ref('map_client_ids') }}
    where system_role = 'erp'
),

engagement_map as (
    select
        engagement_id,
        system_record_id
    from {{ ref('map_engagement_ids') }}
    where system_role = 'erp'
),

legal_entities as (
    select
        legal_entity_id,
        erp_subsidiary_id
    from {{ ref('dim_legal_entities') }}
),

currencies as (
    select
        currency_id,
        currency_code
    from {{ staged('erp', 'currencies') }}
),

fx_rates as (
    select
        currency_code,
        rate_date,
        rate_to_reporting
    from {{ ref('fct_fx_rates') }}
),

invoices_resolved as (
    select
        md5(transactions.record_ref) as invoice_id,
        transactions.record_ref,
        transactions.transaction_id as erp_invoice_id,
        transactions.document_number as invoice_number,
        case transactions.transaction_type
            when 'CustCred' then 'credit_memo'
            else 'invoice'
        end as document_type,
        coalesce(client_map.client_id, md5('-1')) as client_id,
        coalesce(engagement_map.engagement_id, md5('-1')) as engagement_id,
        coalesce(legal_entities.legal_entity_id, md5('-1')) as legal_entity_id,
        currencies.currency_code,
        transactions.transaction_date as invoice_date,
        transactions.due_date,
        cast(transactions.total_amount as decimal(18, 2)) as invoice_amount,
        cast(coalesce(transactions.amount_paid, 0) as decimal(18, 2)) as amount_paid,
        cast(coalesce(transactions.amount_remaining, 0) as decimal(18, 2)) as amount_due,
        case
            when transactions.transaction_type = 'CustCred' then 'credit'
            when coalesce(transactions.amount_remaining, 0) = 0 then 'paid'
            when coalesce(transactions.amount_paid, 0) > 0 then 'partially_paid'
            else 'open'
        end as invoice_status,
        fx_rates.rate_to_reporting,
        cast(round(transactions.total_amount * fx_rates.rate_to_reporting, 2) as decimal(18, 2))
            as invoice_amount_reporting,
        cast(
            round(coalesce(transactions.amount_remaining, 0) * fx_rates.rate_to_reporting, 2)
            as decimal(18, 2)
        ) as amount_due_reporting,
        coalesce(transactions.is_voided, false) as is_voided,
        transactions.created_at,
        transactions.updated_at
    from transactions
    left join client_map
        on transactions.customer_id = client_map.system_record_id
    left join engagement_map
        on transactions.job_id = engagement_map.system_record_id
    left join legal_entities
        on transactions.subsidiary_id = legal_entities.erp_subsidiary_id
    left join currencies
        on transactions.currency_id = currencies.currency_id
    left join fx_rates
        on
            currencies.currency_code = fx_rates.currency_code
            and transactions.transaction_date = fx_rates.rate_date
)

select * from invoices_resolved
