with

source as (

    select * from ({{ loaded_rows('harvest', 'projects') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as project_id,
        cast(client__id as varchar) as client_id,
        {{ record_ref('harvest', 'project', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,
        name as project_name,
        code as project_code,
        client__currency as currency_code,
        bill_by,
        budget_by,
        notes,

        ---------- numerics
        -- hours or money, as `budget_by` says
        cast(budget as decimal(18, 4)) as budget,
        cast(hourly_rate as decimal(18, 6)) as hourly_rate,
        cast(fee as decimal(18, 2)) as fee_amount,

        ---------- booleans
        cast(is_active as boolean) as is_active,
        cast(is_billable as boolean) as is_billable,
        cast(is_fixed_fee as boolean) as is_fixed_fee,
        cast(budget_is_monthly as boolean) as is_budget_monthly,
        cast(cost_budget_include_expenses as boolean) as is_cost_budget_including_expenses,

        ---------- dates
        cast(starts_on as date) as start_date,
        cast(ends_on as date) as end_date,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
