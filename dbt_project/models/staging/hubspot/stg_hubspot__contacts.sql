with

source as (

    select * from ({{ loaded_rows('hubspot', 'contacts') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as contact_id,
        cast(hubspot_owner_id as varchar) as owner_id,
        {{ record_ref('hubspot', 'contact', 'id') }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        email,
        firstname as first_name,
        lastname as last_name,
        phone,
        -- free text; the contact's company is its association to a company record
        company as company_name,
        jobtitle as job_title,
        lifecyclestage as lifecycle_stage,

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
