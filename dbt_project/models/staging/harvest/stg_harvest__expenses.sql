with

source as (

    select * from ({{ loaded_rows('harvest', 'expenses') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as expense_id,
        cast(user__id as varchar) as user_id,
        cast(client__id as varchar) as client_id,
        cast(project__id as varchar) as project_id,
        cast(expense_category__id as varchar) as expense_category_id,
        cast(user_assignment__id as varchar) as user_assignment_id,
        cast(invoice__id as varchar) as invoice_id,
        {{ record_ref('harvest', 'expense', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,
        client__currency as currency_code,
        notes,
        locked_reason,

        ---------- numerics
        cast(total_cost as decimal(18, 2)) as expense_amount,
        cast(units as decimal(18, 4)) as units,

        ---------- booleans
        cast(billable as boolean) as is_billable,
        cast(is_billed as boolean) as is_billed,
        cast(is_closed as boolean) as is_closed,
        cast(is_locked as boolean) as is_locked,

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
