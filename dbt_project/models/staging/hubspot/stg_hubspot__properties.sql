with

source as (

    select * from ({{ loaded_rows('hubspot', 'properties') }}) as loaded

),

renamed as (

    select
        ---------- ids
        object_type,
        name as property_name,
        {{ record_ref('hubspot', 'property', "object_type || '.' || name") }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        label as property_label,
        type as property_type,
        field_type,
        group_name,
        description,
        options as options_json,
        data_sensitivity,

        ---------- numerics
        cast(display_order as integer) as display_order,

        ---------- booleans
        cast(calculated as boolean) as is_calculated,
        cast(external_options as boolean) as has_external_options,
        cast(has_unique_value as boolean) as has_unique_value,
        cast(hidden as boolean) as is_hidden,
        cast(form_field as boolean) as is_form_field,
        cast(hubspot_defined as boolean) as is_hubspot_defined,
        cast(modification_metadata__archivable as boolean) as is_archivable,
        cast(modification_metadata__read_only_definition as boolean) as is_read_only_definition,
        cast(modification_metadata__read_only_value as boolean) as is_read_only_value,
        cast(archived as boolean) as is_archived,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
