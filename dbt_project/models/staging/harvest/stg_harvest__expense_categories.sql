with

source as (

    select * from ({{ loaded_rows('harvest', 'expense_categories') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as expense_category_id,
        {{ record_ref('harvest', 'expense_category', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,
        name as expense_category_name,
        unit_name,

        ---------- numerics
        cast(unit_price as decimal(18, 6)) as unit_price,

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
