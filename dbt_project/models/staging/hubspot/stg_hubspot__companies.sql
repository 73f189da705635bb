with

source as (

    select * from ({{ loaded_rows('hubspot', 'companies') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as company_id,
        cast(hubspot_owner_id as varchar) as owner_id,
        -- the ERP's customer id stored on the CRM company (property `netsuite_customer_id`;
        -- named by role so canonical models read it without naming the ERP)
        cast(netsuite_customer_id as varchar) as erp_customer_id,
        {{ record_ref('hubspot', 'company', 'id') }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        name as company_name,
        legal_name,
        domain,
        website,
        phone,
        city,
        country,
        industry,
        description,
        lifecyclestage as lifecycle_stage,
        billing_currency as billing_currency_code,
        payment_terms,

        ---------- booleans
        cast(archived as boolean) as is_archived,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,
        cast(archived_at as timestamptz) as archived_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
