{#- One row per client record of any system (CRM company, PSA client, ERP customer) with the
    canonical client it belongs to, how it was matched and how sure the match is. The ERP's
    customer master is the spine: a client is a surviving ERP customer, or an unmatched record. -#}
with

erp_customers as (
    select
        customer_id,
        crm_company_id,
        record_ref,
        source_system,
        {{ normalised_name('company_name') }} as name_key
    from {{ staged('erp', 'customers') }}
),

erp_groups as (
    select
        record_id,
        survivor_record_id,
        is_survivor
    from {{ ref('int_erp_customers_grouped') }}
),

crm_companies as (
    select
        company_id,
        erp_customer_id,
        record_ref,
        source_system,
        {{ normalised_name('company_name') }} as name_key
    from {{ staged('crm', 'companies') }}
    where not coalesce(is_archived, false)
),

crm_groups as (
    select
        record_id,
        survivor_record_id,
        is_survivor
    from {{ ref('int_crm_companies_grouped') }}
),

psa_clients as (
    select
        client_id,
        record_ref,
        source_system,
        {{ normalised_name('client_name') }} as name_key
    from {{ staged('psa', 'clients') }}
),

psa_projects as (
    select
        client_id,
        upper(trim(project_code)) as project_code
    from {{ staged('psa', 'projects') }}
),

erp_jobs as (
    select
        customer_id,
        upper(trim(project_code)) as project_code
    from {{ staged('erp', 'jobs') }}
),

erp_survivors as (
    select
        erp_customers.customer_id,
        erp_customers.crm_company_id,
        erp_customers.name_key,
        erp_customers.record_ref
    from erp_customers
    inner join erp_groups
        on erp_customers.customer_id = erp_groups.record_id
    where erp_groups.is_survivor
),

erp_records_mapped as (
    select
        md5(survivor.record_ref) as client_id,
        'erp' as system_role,
        erp_customers.source_system,
        erp_customers.customer_id as system_record_id,
        erp_customers.record_ref,
        case when erp_groups.is_survivor then 'master' else 'duplicate_in_system' end
            as match_method,
        cast(1.0 as decimal(4, 2)) as match_confidence,
        erp_groups.is_survivor
    from erp_customers
    inner join erp_groups
        on erp_customers.customer_id = erp_groups.record_id
    inner join erp_customers as survivor
        on erp_groups.survivor_record_id = survivor.customer_id
),

-- a surviving CRM company finds its ERP customer by the id it stores, else by the CRM id the
-- customer stores, else by normalised name (sandbox README, customer_master_drift)
crm_survivors_matched_ranked as (
    select
        crm_companies.company_id,
        coalesce(by_stored_id.record_ref, by_reverse_id.record_ref, by_name.record_ref)
            as erp_record_ref,
        case
            when by_stored_id.record_ref is not null then 'external_id'
            when by_reverse_id.record_ref is not null then 'external_id_reverse'
            when by_name.record_ref is not null then 'normalised_name'
            else 'unmatched'
        end as match_method,
        row_number() over (
            partition by crm_companies.company_id
            order by by_reverse_id.customer_id, by_name.customer_id
        ) as match_rank
    from crm_companies
    inner join crm_groups
        on crm_companies.company_id = crm_groups.record_id
    left join erp_survivors as by_stored_id
        on crm_companies.erp_customer_id = by_stored_id.customer_id
    left join erp_survivors as by_reverse_id
        on crm_companies.company_id = by_reverse_id.crm_company_id
    left join erp_survivors as by_name
        on crm_companies.name_key = by_name.name_key
    where crm_groups.is_survivor
),

crm_survivors_matched as (
    select
        company_id,
        erp_record_ref,
        match_method
    from crm_survivors_matched_ranked
    where match_rank = 1
),

crm_records_mapped as (
    select
        md5(coalesce(crm_match.erp_record_ref, survivor.record_ref)) as client_id,
        'crm' as system_role,
        crm_companies.source_system,
        crm_companies.company_id as system_record_id,
        crm_companies.record_ref,
        case
            when crm_groups.is_survivor then crm_match.match_method
            else 'duplicate_in_system'
        end as match_method,
        cast(case crm_match.match_method
            when 'external_id' then 1.0
            when 'external_id_reverse' then 1.0
            when 'normalised_name' then 0.8
            else 0.0
        end as decimal(4, 2)) as match_confidence,
        crm_groups.is_survivor
    from crm_companies
    inner join crm_groups
        on crm_companies.company_id = crm_groups.record_id
    inner join crm_companies as survivor
        on crm_groups.survivor_record_id = survivor.company_id
    inner join crm_survivors_matched as crm_match
        on crm_groups.survivor_record_id = crm_match.company_id
),

-- a PSA client finds its ERP customer through the project codes both systems share, else by
-- normalised name
psa_clients_by_project_code as (
    select
        psa_projects.client_id,
        min(survivor.record_ref) as erp_record_ref,
        count(distinct survivor.record_ref) as customers_found
    from psa_projects
    inner join erp_jobs
        on psa_projects.project_code = erp_jobs.project_code
    inner join erp_groups
        on erp_jobs.customer_id = erp_groups.record_id
    inner join erp_customers as survivor
        on erp_groups.survivor_record_id = survivor.customer_id
    group by 1
),

psa_records_mapped_ranked as (
    select
        md5(coalesce(
            case when by_code.customers_found = 1 then by_code.erp_record_ref end,
            by_name.record_ref,
            psa_clients.record_ref
        )) as client_id,
        'psa' as system_role,
        psa_clients.source_system,
        psa_clients.client_id as system_record_id,
        psa_clients.record_ref,
        case
            when by_code.customers_found = 1 then 'project_code'
            when by_name.record_ref is not null then 'normalised_name'
            else 'unmatched'
        end as match_method,
        cast(case
            when by_code.customers_found = 1 then 1.0
            when by_name.record_ref is not null then 0.8
            else 0.0
        end as decimal(4, 2)) as match_confidence,
        true as is_survivor,
        row_number() over (
            partition by psa_clients.client_id order by by_name.customer_id
        ) as match_rank
    from psa_clients
    left join psa_clients_by_project_code as by_code
        on psa_clients.client_id = by_code.client_id
    left join erp_survivors as by_name
        on psa_clients.name_key = by_name.name_key
),

psa_records_mapped as (
    select
        client_id,
        system_role,
        source_system,
        system_record_id,
        record_ref,
        match_method,
        match_confidence,
        is_survivor
    from psa_records_mapped_ranked
    where match_rank = 1
),

all_records as (
    select * from erp_records_mapped
    union all
    select * from crm_records_mapped
    union all
    select * from psa_records_mapped
)

select * from all_records
