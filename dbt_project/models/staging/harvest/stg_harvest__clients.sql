with

source as (

    select * from ({{ loaded_rows('harvest', 'clients') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as client_id,
        {{ record_ref('harvest', 'client', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,
        name as client_name,
        address,
        currency as currency_code,

        ---------- booleans
        cast(is_active as boolean) as is_active,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
