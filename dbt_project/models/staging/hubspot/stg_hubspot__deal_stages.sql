with

source as (

    select * from ({{ loaded_rows('hubspot', 'deal_stages') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as deal_stage_id,
        cast(pipeline_id as varchar) as deal_pipeline_id,
        {{ record_ref('hubspot', 'deal_stage', 'id') }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        label as deal_stage_label,
        write_permissions,

        ---------- numerics
        cast(display_order as integer) as display_order,
        {{ try_cast_as('metadata__probability', 'decimal(18, 6)') }} as win_probability,

        ---------- booleans
        {{ try_cast_as('metadata__is_closed', 'boolean') }} as is_closed,
        cast(archived as boolean) as is_archived,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
