with

source as (

    select * from ({{ loaded_rows('hubspot', 'owners') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as owner_id,
        cast(user_id as varchar) as user_id,
        cast(user_id_including_inactive as varchar) as user_id_including_inactive,
        {{ record_ref('hubspot', 'owner', 'id') }} as record_ref,

        ---------- strings
        'hubspot' as source_system,
        email,
        first_name,
        last_name,
        type as owner_type,
        teams as teams_json,

        ---------- booleans
        cast(archived as boolean) as is_archived,

        ---------- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
