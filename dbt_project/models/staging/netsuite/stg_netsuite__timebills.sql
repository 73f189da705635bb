with

source as (

    select * from ({{ loaded_rows('netsuite', 'timebill') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as timebill_id,
        cast(employee as varchar) as employee_id,
        -- NetSuite's `customer` field is Customer:Project: pslake posts time to the job
        cast(customer as varchar) as job_id,
        cast(item as varchar) as item_id,
        cast(subsidiary as varchar) as subsidiary_id,
        cast(postingperiod as varchar) as accounting_period_id,
        cast(invoice as varchar) as invoice_id,
        -- NetSuite's approval status: 2 approved
        cast(approvalstatus as varchar) as approval_status_id,
        -- the Harvest time entry the posting came from
        cast(externalid as varchar) as external_id,
        {{ record_ref('netsuite', 'timebill', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,

        ---------- numerics
        cast(hours as decimal(12, 4)) as hours,
        cast(rate as decimal(18, 6)) as rate,

        ---------- booleans
        {{ netsuite_boolean('isbillable') }} as is_billable,
        {{ netsuite_boolean('posted') }} as is_posted,

        ---------- dates
        cast(trandate as date) as transaction_date,

        ---------- timestamps
        cast(datecreated as timestamptz) as created_at,
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
