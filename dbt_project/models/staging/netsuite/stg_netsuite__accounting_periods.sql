with

source as (

    select * from ({{ loaded_rows('netsuite', 'accountingperiod') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as accounting_period_id,
        cast(parent as varchar) as parent_accounting_period_id,
        {{ record_ref('netsuite', 'accounting_period', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        periodname as period_name,

        ---------- booleans
        {{ netsuite_boolean('closed') }} as is_closed,
        {{ netsuite_boolean('alllocked') }} as is_all_locked,
        {{ netsuite_boolean('arlocked') }} as is_ar_locked,
        {{ netsuite_boolean('aplocked') }} as is_ap_locked,
        {{ netsuite_boolean('isposting') }} as is_posting,
        {{ netsuite_boolean('isquarter') }} as is_quarter,
        {{ netsuite_boolean('isyear') }} as is_year,
        {{ netsuite_boolean('isadjust') }} as is_adjustment,
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- dates
        cast(startdate as date) as start_date,
        cast(enddate as date) as end_date,
        cast(closedondate as date) as closed_on_date,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
