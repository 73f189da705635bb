with

source as (

    select * from ({{ loaded_rows('hubspot', 'associations') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(from_id as varchar) as from_id,
        cast(to_id as varchar) as to_id,
        cast(type_id as varchar) as association_type_id,
        {{ record_ref_of_table('hubspot', 'from_type', 'from_id') }} as from_record_ref,
        {{ record_ref_of_table('hubspot', 'to_type', 'to_id') }} as to_record_ref,

        ---------- strings
        'hubspot' as source_system,
        from_type as from_object_type,
        to_type as to_object_type,
        category as association_category,
        label as association_label,
        row_hash,

        ---------- booleans
        removed_at is not null as is_removed,

        ---------- timestamps
        cast(first_seen_at as timestamptz) as first_seen_at,
        cast(removed_at as timestamptz) as removed_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
