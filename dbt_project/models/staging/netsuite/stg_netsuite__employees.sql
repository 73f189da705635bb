with

source as (

    select * from ({{ loaded_rows('netsuite', 'employee') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as employee_id,
        cast(department as varchar) as department_id,
        cast(subsidiary as varchar) as subsidiary_id,
        cast(supervisor as varchar) as supervisor_id,
        cast(currency as varchar) as currency_id,
        {{ record_ref('netsuite', 'employee', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        entityid as employee_name,
        firstname as first_name,
        lastname as last_name,
        email,
        -- the person's role (= the first of the Harvest user's roles)
        title as role_name,

        ---------- numerics
        cast(laborcost as decimal(18, 6)) as labor_cost_rate,
        cast(custentity_utilization_target as decimal(18, 6)) as utilization_target,

        ---------- booleans
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- dates
        cast(hiredate as date) as hire_date,
        cast(releasedate as date) as release_date,

        ---------- timestamps
        cast(datecreated as timestamptz) as created_at,
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
