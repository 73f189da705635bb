with

source as (

    select * from ({{ loaded_rows('netsuite', 'previoustransactionlink') }}) as loaded

),

renamed as (

    select
        ---------- ids
        -- the earlier document (the invoice) and the one applied to it (payment, credit memo)
        cast(previousdoc as varchar) as previous_transaction_id,
        cast(nextdoc as varchar) as next_transaction_id,
        {{ record_ref(
            'netsuite', 'transaction_link', "cast(previousdoc as varchar) || '-' || nextdoc"
        ) }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        linktype as link_type,

        ---------- numerics
        -- the amount applied, in the subsidiary's (base) and the transaction's currency
        cast(amount as decimal(18, 2)) as amount,
        cast(foreignamount as decimal(18, 2)) as foreign_amount,

        ---------- dates
        cast(linkdate as date) as link_date,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
