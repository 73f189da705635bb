with

source as (

    select * from ({{ exported_rows(
        'pslake', 'source_freshness',
        {'source_name': 'varchar', 'table_name': 'varchar', 'status': 'varchar',
         'max_loaded_at': 'timestamptz', 'age_seconds': 'double',
         'checked_at': 'timestamptz'}
    ) }}) as loaded

),

renamed as (

    select
        ---------- ids
        source_name || '.' || table_name as source_table_id,

        ---------- strings
        'pslake' as source_system,
        source_name,
        table_name,
        status as freshness_status,

        ---------- numerics
        cast(age_seconds / 3600 as decimal(12, 1)) as age_hours,

        ---------- timestamps
        max_loaded_at,
        checked_at

    from source

)

select * from renamed
