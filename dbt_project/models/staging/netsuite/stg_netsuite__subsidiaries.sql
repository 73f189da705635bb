with

source as (

    select * from ({{ loaded_rows('netsuite', 'subsidiary') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as subsidiary_id,
        cast(parent as varchar) as parent_subsidiary_id,
        cast(currency as varchar) as currency_id,
        {{ record_ref('netsuite', 'subsidiary', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        name as subsidiary_name,
        fullname as full_name,
        legalname as legal_name,
        country,

        ---------- booleans
        {{ netsuite_boolean('iselimination') }} as is_elimination,
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
