with

source as (

    select * from ({{ loaded_rows('netsuite', 'currency') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as currency_id,
        {{ record_ref('netsuite', 'currency', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        symbol as currency_code,
        name as currency_name,

        ---------- booleans
        {{ netsuite_boolean('isbasecurrency') }} as is_base_currency,
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
