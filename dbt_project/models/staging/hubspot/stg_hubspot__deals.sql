with

source as (

    select * from ({{ loaded_rows('hubspot', 'deals') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as deal_id,
        cast(hubspot_owner_id as varchar) as owner_id,
        pipeline as deal_pipeline_id,
        dealstage as deal_stage_id,
        {{ record_ref('hubspot', 'deal', 'id') }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        dealname as deal_name,
        deal_currency_code as currency_code,
        erp_project_code,
        description,

        ---------- numerics
        -- HubSpot sends numbers as text; ingestion quarantines a value that does not cast
        {{ try_cast_as('amount', 'decimal(18, 2)') }} as deal_amount,

        ---------- booleans
        {{ try_cast_as('hs_is_closed_won', 'boolean') }} as is_closed_won,
        cast(archived as boolean) as is_archived,

        ---------- dates
        -- a datetime property HubSpot sets at midnight UTC for a date
        cast(closedate as date) as close_date,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,
        cast(archived_at as timestamptz) as archived_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
