with

source as (

    select * from ({{ loaded_rows('netsuite', 'transactionline') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(uniquekey as varchar) as transaction_line_id,
        cast(transaction as varchar) as transaction_id,
        -- the line's id within its transaction; 0 is the main line
        cast(id as varchar) as line_id,
        cast(entity as varchar) as customer_id,
        cast(item as varchar) as item_id,
        cast(subsidiary as varchar) as subsidiary_id,
        cast(department as varchar) as department_id,
        cast(employee as varchar) as employee_id,
        -- the PSA (Harvest) expense a reimbursable-expense line bills, named by role
        cast(custcol_harvest_expense_id as varchar) as psa_expense_id,
        {{ record_ref('netsuite', 'transaction_line', 'uniquekey') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        memo,

        ---------- numerics
        cast(linesequencenumber as integer) as line_sequence_number,
        cast(quantity as decimal(18, 4)) as quantity,
        cast(rate as decimal(18, 6)) as rate,
        -- in the subsidiary's (base) currency
        cast(netamount as decimal(18, 2)) as net_amount,
        -- in the transaction's currency
        cast(foreignamount as decimal(18, 2)) as foreign_amount,

        ---------- booleans
        {{ netsuite_boolean('mainline') }} as is_main_line,
        {{ netsuite_boolean('taxline') }} as is_tax_line,
        {{ netsuite_boolean('isbillable') }} as is_billable,

        ---------- timestamps
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
