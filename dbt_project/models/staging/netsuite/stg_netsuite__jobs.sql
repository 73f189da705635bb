with

source as (

    select * from ({{ loaded_rows('netsuite', 'job') }}) as loaded

),

renamed as (

    select
        ---------- ids
        cast(id as varchar) as job_id,
        cast(customer as varchar) as customer_id,
        cast(parent as varchar) as parent_id,
        cast(subsidiary as varchar) as subsidiary_id,
        cast(currency as varchar) as currency_id,
        cast(projectmanager as varchar) as project_manager_id,
        -- NetSuite's project status: 1 Not Started, 2 In Progress, 3 Closed, 4 Completed
        cast(entitystatus as varchar) as job_status_id,
        -- the CRM deal the project came from, named by role
        cast(custentity_hubspot_deal_id as varchar) as crm_deal_id,
        {{ record_ref('netsuite', 'job', 'id') }} as record_ref,

        ---------- strings
        'netsuite' as source_system,
        entityid as project_code,
        companyname as job_name,
        -- TM time and materials, FF fixed fee, MS milestone, RT retainer
        jobbillingtype as billing_type,

        ---------- numerics
        cast(estimatedrevenue as decimal(18, 2)) as estimated_revenue_amount,
        cast(estimatedcost as decimal(18, 2)) as estimated_cost_amount,
        cast(estimatedlaborhours as decimal(12, 4)) as estimated_labor_hours,

        ---------- booleans
        {{ netsuite_boolean('isinactive') }} as is_inactive,

        ---------- dates
        cast(startdate as date) as start_date,
        cast(enddate as date) as end_date,
        cast(projectedenddate as date) as projected_end_date,

        ---------- timestamps
        cast(datecreated as timestamptz) as created_at,
        cast(modified_at as timestamptz) as updated_at,

        ---------- dlt
        _dlt_load_id

    from source

)

select * from renamed
