{#- The quarantined record's key, read from the record as received: the typed key column is null
    when the key itself did not cast, and each table has its own key. -#}
{%- set record_id -%}
    case table_name
        when 'transactionline' then {{ json_field('record', 'uniquekey') }}
        when 'previoustransactionlink'
            then
                {{ json_field('record', 'previousdoc') }}
                || '-'
                || {{ json_field('record', 'nextdoc') }}
        else {{ json_field('record', 'id') }}
    end
{%- endset -%}

with

source as (

    select * from ({{ loaded_rows(
        'netsuite', 'quarantine',
        empty_columns={
            'table_name': 'varchar',
            'reason': 'varchar',
            'record': 'varchar',
            'quarantined_at': 'timestamptz',
        }
    ) }}) as loaded

),

renamed as (

    select
        ---------- ids
        _dlt_id as quarantine_id,
        {{ record_id }} as record_id,
        case
            when table_name = 'transaction' then {{ record_ref_of_object(
                'netsuite', netsuite_transaction_object(json_field('record', 'type')), record_id
            ) }}
            else {{ record_ref_of_table('netsuite', 'table_name', record_id) }}
        end as record_ref,

        ---------- strings
        'netsuite' as source_system,
        table_name,
        reason,
        record as record_json,

        ---------- timestamps
        cast(quarantined_at as timestamptz) as quarantined_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
