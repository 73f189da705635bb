with

source as (

    select * from ({{ loaded_rows('hubspot', 'erp_invoices') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as erp_invoice_id,
        -- the ERP invoice mirrored (property `netsuite_invoice_id`), named by role
        cast(netsuite_invoice_id as varchar) as erp_transaction_id,
        cast(hubspot_owner_id as varchar) as owner_id,
        {{ record_ref('hubspot', 'erp_invoice', 'id') }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        invoice_number,
        invoice_status,
        currency as currency_code,

        ---------- numerics
        -- HubSpot sends numbers as text; ingestion quarantines a value that does not cast
        {{ try_cast_as('invoice_amount', 'decimal(18, 2)') }} as invoice_amount,
        {{ try_cast_as('amount_paid', 'decimal(18, 2)') }} as amount_paid,
        {{ try_cast_as('amount_due', 'decimal(18, 2)') }} as amount_due,

        ---------- booleans
        cast(archived as boolean) as is_archived,

        ---------- dates
        cast(invoice_date as date) as invoice_date,
        cast(due_date as date) as due_date,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,
        cast(archived_at as timestamptz) as archived_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
