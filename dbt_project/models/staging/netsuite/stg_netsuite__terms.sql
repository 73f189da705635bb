with

source as (

    select * from ({{ loaded_rows('netsuite', 'term') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as term_id,
        {{ record_ref('netsuite', 'term', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        name as term_name,

        ---------- numerics
        cast(daysuntilnetdue as integer) as days_until_net_due,

        ---------- booleans
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
