with

source as (

    select * from ({{ loaded_rows('harvest', 'tasks') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as task_id,
        {{ record_ref('harvest', 'task', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,
        name as task_name,

        ---------- numerics
        cast(default_hourly_rate as decimal(18, 6)) as default_hourly_rate,

        ---------- booleans
        cast(billable_by_default as boolean) as is_billable_by_default,
        cast(is_default as boolean) as is_default,
        cast(is_active as boolean) as is_active,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
