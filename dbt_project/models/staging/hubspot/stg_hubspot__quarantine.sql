with

source as (

    select * from ({{ loaded_rows(
        'hubspot', 'quarantine',
        empty_columns={
            'table_name': 'varchar',
            'reason': 'varchar',
            'record': 'varchar',
            'quarantined_at': 'timestamptz',
        }
    ) }}) as loaded

),

renamed as (

    select
        ---------- ids
        _dlt_id as quarantine_id,
        -- read from the record as received: the typed key column is null when the key itself
        -- did not cast
        {{ json_field('record', 'id') }} as record_id,
        {{ record_ref_of_table(
            'hubspot', 'table_name', json_field('record', 'id')
        ) }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        table_name,
        reason,
        record as record_json,

        ---------- timestamps
        cast(quarantined_at as timestamptz) as quarantined_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
