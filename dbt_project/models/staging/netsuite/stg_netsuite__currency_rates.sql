with

source as (

    select * from ({{ loaded_rows('netsuite', 'currencyrate') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as currency_rate_id,
        cast(basecurrency as varchar) as base_currency_id,
        cast(transactioncurrency as varchar) as transaction_currency_id,
        {{ record_ref('netsuite', 'currency_rate', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,

        ---------- numerics
        -- units of the base currency for one unit of the transaction currency
        cast(exchangerate as decimal(18, 6)) as exchange_rate,

        ---------- dates
        cast(effectivedate as date) as effective_date,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
