{#- One row per invoice still open at the run's as-of date: the invoice amount less every
    payment and credit memo applied on or before that date, how many days past due it is and its
    ageing bucket, in the invoice's (entity) currency and in the reporting currency at the as-of
    date's rate. -#}
with

fct_invoices as (
    select
        invoice_id,
        erp_invoice_id,
        invoice_number,
        client_id,
        engagement_id,
        legal_entity_id,
        currency_code,
        invoice_date,
        due_date,
        invoice_amount
    from {{ ref('fct_invoices') }}
    where
        document_type = 'invoice'
        and not is_voided
        and invoice_date <= {{ as_of_date() }}
),

fct_payments as (
    select
        invoice_id,
        payment_type,
        amount_applied
    from {{ ref('fct_payments') }}
    where
        not is_voided
        and application_date <= {{ as_of_date() }}
),

fct_fx_rates as (
    select
        currency_code,
        rate_date,
        rate_to_reporting
    from {{ ref('fct_fx_rates') }}
    where rate_date <= {{ as_of_date() }}
),

dim_legal_entities as (
    select
        legal_entity_id,
        legal_entity_name,
        currency_code as entity_currency_code
    from {{ ref('dim_legal_entities') }}
),

dim_clients as (
    select
        client_id,
        client_name
    from {{ ref('dim_clients') }}
),

applications_summed as (
    select
        invoice_id,
        sum(case when payment_type = 'payment' then amount_applied else 0 end) as amount_paid,
        sum(case when payment_type = 'credit_memo' then amount_applied else 0 end)
            as amount_credited
    from fct_payments
    group by 1
),

-- the rate in force on the as-of date: the latest published on or before it (a Saturday
-- takes Friday's rate)
rates_ranked as (
    select
        currency_code,
        rate_date,
        rate_to_reporting,
        row_number() over (partition by currency_code order by rate_date desc) as recency_rank
    from fct_fx_rates
),

rates_at_as_of as (
    select
        currency_code,
        rate_date,
        rate_to_reporting
    from rates_ranked
    where recency_rank = 1
),

invoices_balanced as (
    select
        fct_invoices.*,
        coalesce(applications_summed.amount_paid, 0) as amount_paid,
        coalesce(applications_summed.amount_credited, 0) as amount_credited,
        fct_invoices.invoice_amount
        - coalesce(applications_summed.amount_paid, 0)
        - coalesce(applications_summed.amount_credited, 0) as amount_due,
        {{ dbt.datediff('coalesce(fct_invoices.due_date, fct_invoices.invoice_date)',
            as_of_date(), 'day') }} as days_past_due
    from fct_invoices
    left join applications_summed
        on fct_invoices.invoice_id = applications_summed.invoice_id
),

open_invoices_aged as (
    select
        invoices_balanced.invoice_id,
        invoices_balanced.erp_invoice_id,
        invoices_balanced.invoice_number,
        invoices_balanced.client_id,
        dim_clients.client_name,
        invoices_balanced.engagement_id,
        invoices_balanced.legal_entity_id,
        dim_legal_entities.legal_entity_name,
        {{ as_of_date() }} as as_of_date,
        invoices_balanced.invoice_date,
        invoices_balanced.due_date,
        cast(invoices_balanced.days_past_due as integer) as days_past_due,
        case
            when invoices_balanced.days_past_due <= 0 then 'current'
            when invoices_balanced.days_past_due <= 30 then '1-30'
            when invoices_balanced.days_past_due <= 60 then '31-60'
            when invoices_balanced.days_past_due <= 90 then '61-90'
            else '90+'
        end as ageing_bucket,
        invoices_balanced.currency_code,
        dim_legal_entities.entity_currency_code,
        cast(invoices_balanced.invoice_amount as decimal(18, 2)) as invoice_amount,
        cast(invoices_balanced.amount_paid as decimal(18, 2)) as amount_paid,
        cast(invoices_balanced.amount_credited as decimal(18, 2)) as amount_credited,
        cast(invoices_balanced.amount_due as decimal(18, 2)) as amount_due,
        rates_at_as_of.rate_date as fx_rate_date,
        cast(rates_at_as_of.rate_to_reporting as decimal(18, 6)) as rate_to_reporting,
        cast(
            round(invoices_balanced.invoice_amount * rates_at_as_of.rate_to_reporting, 2)
            as decimal(18, 2)
        ) as invoice_amount_reporting,
        cast(
            round(invoices_balanced.amount_due * rates_at_as_of.rate_to_reporting, 2)
            as decimal(18, 2)
        ) as amount_due_reporting
    from invoices_balanced
    left join rates_at_as_of
        on invoices_balanced.currency_code = rates_at_as_of.currency_code
    left join dim_legal_entities
        on invoices_balanced.legal_entity_id = dim_legal_entities.legal_entity_id
    left join dim_clients
        on invoices_balanced.client_id = dim_clients.client_id
    where invoices_balanced.amount_due > 0
)

select * from open_invoices_aged
