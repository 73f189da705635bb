with

source as (

    select * from ({{ loaded_rows('harvest', 'time_entries') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as time_entry_id,
        cast(user__id as varchar) as user_id,
        cast(client__id as varchar) as client_id,
        cast(project__id as varchar) as project_id,
        cast(task__id as varchar) as task_id,
        cast(user_assignment__id as varchar) as user_assignment_id,
        cast(task_assignment__id as varchar) as task_assignment_id,
        cast(invoice__id as varchar) as invoice_id,
        cast(external_reference__id as varchar) as external_reference_id,
        cast(external_reference__group_id as varchar) as external_reference_group_id,
        cast(external_reference__account_id as varchar) as external_reference_account_id,
        {{ record_ref('harvest', 'time_entry', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,
        client__currency as currency_code,
        invoice__number as invoice_number,
        notes,
        locked_reason,
        external_reference__service as external_reference_service,
        external_reference__permalink as external_reference_permalink,

        ---------- numerics
        cast(hours as decimal(12, 4)) as hours,
        cast(hours_without_timer as decimal(12, 4)) as hours_without_timer,
        cast(rounded_hours as decimal(12, 4)) as rounded_hours,
        cast(billable_rate as decimal(18, 6)) as billable_rate,
        cast(cost_rate as decimal(18, 6)) as cost_rate,

        ---------- booleans
        cast(billable as boolean) as is_billable,
        cast(is_billed as boolean) as is_billed,
        cast(is_closed as boolean) as is_closed,
        cast(is_locked as boolean) as is_locked,
        cast(is_running as boolean) as is_running,
        cast(budgeted as boolean) as is_budgeted,

        ---------- dates
        cast(spent_date as date) as spent_date,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
