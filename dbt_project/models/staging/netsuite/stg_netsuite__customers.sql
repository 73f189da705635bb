with

source as (

    select * from ({{ loaded_rows('netsuite', 'customer') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as customer_id,
        cast(parent as varchar) as parent_customer_id,
        cast(subsidiary as varchar) as subsidiary_id,
        cast(currency as varchar) as currency_id,
        cast(terms as varchar) as term_id,
        -- the CRM's company id stored on the ERP customer, named by role
        cast(custentity_hubspot_company_id as varchar) as crm_company_id,
        {{ record_ref('netsuite', 'customer', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        entityid as customer_number,
        companyname as company_name,
        email,
        phone,
        url as website,
        billcountry as bill_country,

        ---------- booleans
        {{ netsuite_boolean('isperson') }} as is_person,
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- timestamps
        cast(datecreated as timestamptz) as created_at,
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
