with

source as (

    select * from ({{ loaded_rows('netsuite', 'customrecord_pslake_rate_card') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as rate_card_id,
        cast(custrecord_rc_subsidiary as varchar) as subsidiary_id,
        -- null on a standard card (the entity's), set on a client's discounted card
        cast(custrecord_rc_customer as varchar) as customer_id,
        cast(custrecord_rc_currency as varchar) as currency_id,
        {{ record_ref('netsuite', 'rate_card', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        name as rate_card_name,
        custrecord_rc_role as role_name,

        ---------- numerics
        cast(custrecord_rc_rate as decimal(18, 6)) as bill_rate,

        ---------- booleans
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- dates
        cast(custrecord_rc_effective_from as date) as effective_from_date,
        cast(custrecord_rc_effective_to as date) as effective_to_date,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
