with

source as (

    select * from ({{ loaded_rows('hubspot', 'deal_pipelines') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as deal_pipeline_id,
        {{ record_ref('hubspot', 'deal_pipeline', 'id') }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        label as deal_pipeline_label,

        ---------- numerics
        cast(display_order as integer) as display_order,

        ---------- booleans
        cast(archived as boolean) as is_archived,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
