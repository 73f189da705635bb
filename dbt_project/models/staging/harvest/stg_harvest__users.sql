with

source as (

    select * from ({{ loaded_rows('harvest', 'users') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as user_id,
        {{ record_ref('harvest', 'user', 'id') }} as record_ref,

        ---------- strings
        'harvest' as source_system,
        first_name,
        last_name,
        email,
        nullif(telephone, '') as telephone,
        timezone,
        -- the first of Harvest's roles is the person's role (= NetSuite employee title)
        {{ json_list_first('roles') }} as role_name,
        roles as roles_json,
        access_roles as access_roles_json,

        ---------- numerics
        cast(weekly_capacity as integer) as weekly_capacity_seconds,
        cast(weekly_capacity / 3600.0 as decimal(12, 4)) as weekly_capacity_hours,
        cast(default_hourly_rate as decimal(18, 6)) as default_hourly_rate,
        cast(cost_rate as decimal(18, 6)) as cost_rate,

        ---------- booleans
        cast(is_active as boolean) as is_active,
        cast(is_contractor as boolean) as is_contractor,
        cast(has_access_to_all_future_projects as boolean) as has_access_to_all_future_projects,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
