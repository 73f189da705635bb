with

source as (

    select * from ({{ loaded_rows('netsuite', 'item') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as item_id,
        {{ record_ref('netsuite', 'item', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        itemid as item_name,
        displayname as display_name,
        itemtype as item_type,

        ---------- booleans
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
