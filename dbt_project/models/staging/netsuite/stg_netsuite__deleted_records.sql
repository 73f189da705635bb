with

source as (

    select * from ({{ loaded_rows('netsuite', 'deletedrecord') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as deleted_record_id,
        cast(recordid as varchar) as record_id,
        -- the deleted record's own reference (`netsuite:invoice:<id>`)
        {{ record_ref_of_object(
            'netsuite', netsuite_record_type_object('recordtype'), 'recordid'
        ) }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        recordtype as record_type,

        ---------- timestamps
        cast(deleteddate as timestamptz) as deleted_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
