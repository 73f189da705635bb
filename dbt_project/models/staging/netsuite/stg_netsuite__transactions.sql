with

source as (

    select * from ({{ loaded_rows('netsuite', 'transaction') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as transaction_id,
        cast(entity as varchar) as customer_id,
        cast(job as varchar) as job_id,
        cast(subsidiary as varchar) as subsidiary_id,
        cast(currency as varchar) as currency_id,
        cast(postingperiod as varchar) as accounting_period_id,
        cast(terms as varchar) as term_id,
        -- named by type, so an invoice is `netsuite:invoice:<id>` as in the manifest
        {{ record_ref_of_object('netsuite', netsuite_transaction_object('type'), 'id') }}
            as record_ref,

        ---------- strings
        'netsuite' as source_system,
        -- CustInvc invoice, CustPymt payment, CustCred credit memo
        type as transaction_type,
        -- A open, B paid in full (invoices); C deposited (payments)
        status as transaction_status,
        tranid as document_number,
        transactionnumber as transaction_number,
        memo,

        ---------- numerics
        -- amounts in the transaction's currency (NetSuite's `foreign...` columns)
        cast(foreigntotal as decimal(18, 2)) as total_amount,
        cast(foreignamountpaid as decimal(18, 2)) as amount_paid,
        cast(foreignamountremaining as decimal(18, 2)) as amount_remaining,
        cast(exchangerate as decimal(18, 6)) as exchange_rate,

        ---------- booleans
        {{ netsuite_boolean('voided') }} as is_voided,

        ---------- dates
        cast(trandate as date) as transaction_date,
        cast(duedate as date) as due_date,
        cast(closedate as date) as close_date,

        ---------- timestamps
        cast(createddate as timestamptz) as created_at,
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
