with

source as (

    select * from ({{ loaded_rows(
        'harvest', 'deleted_records',
        empty_columns={'resource': 'varchar', 'id': 'bigint', 'detected_at': 'timestamptz'}
    ) }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as record_id,
        -- the deleted record's own reference (`harvest:time_entry:<id>`)
        {{ record_ref_of_table('harvest', 'resource', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,
        resource as resource_name,

        ---------- timestamps
        cast(detected_at as timestamptz) as detected_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
