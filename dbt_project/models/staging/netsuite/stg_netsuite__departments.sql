with

source as (

    select * from ({{ loaded_rows('netsuite', 'department') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as department_id,
        {{ record_ref('netsuite', 'department', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        name as department_name,
        fullname as full_name,

        ---------- booleans
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
