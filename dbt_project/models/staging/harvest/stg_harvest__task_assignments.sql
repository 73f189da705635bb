with

source as (

    select * from ({{ loaded_rows('harvest', 'task_assignments') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as task_assignment_id,
        cast(project__id as varchar) as project_id,
        cast(task__id as varchar) as task_id,
        {{ record_ref('harvest', 'task_assignment', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,

        ---------- numerics
        cast(hourly_rate as decimal(18, 6)) as hourly_rate,
        cast(budget as decimal(18, 4)) as budget,

        ---------- booleans
        cast(billable as boolean) as is_billable,
        cast(is_active as boolean) as is_active,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
