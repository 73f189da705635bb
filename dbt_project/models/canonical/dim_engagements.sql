{#- One row per canonical engagement (project): the ERP project's commercial terms with the
    PSA project's delivery settings. PSA-only projects (internal time, PTO) are engagements too,
    without a billing model. -#}
with

engagement_map as (
    select
        engagement_id,
        system_role,
        system_record_id
    from {{ ref('map_engagement_ids') }}
),

client_map as (
    select
        client_id,
        system_role,
        system_record_id
    from {{ ref('map_client_ids') }}
),

legal_entities as (
    select
        legal_entity_id,
        erp_subsidiary_id,
        currency_code
    from {{ ref('dim_legal_entities') }}
),

erp_jobs as (
    select
        job_id,
        customer_id,
        subsidiary_id,
        job_status_id,
        project_code,
        job_name,
        billing_type,
        estimated_revenue_amount,
        estimated_labor_hours,
        start_date,
        end_date,
        created_at
    from {{ staged('erp', 'jobs') }}
),

psa_projects as (
    select
        project_id,
        client_id,
        project_code,
        project_name,
        is_billable,
        is_active,
        start_date,
        end_date,
        created_at
    from {{ staged('psa', 'projects') }}
),

records_per_engagement as (
    select
        engagement_id,
        max(case when system_role = 'erp' then system_record_id end) as erp_project_id,
        min(case when system_role = 'psa' then system_record_id end) as psa_project_id,
        min(case when system_role = 'crm' then system_record_id end) as crm_deal_id
    from engagement_map
    group by 1
),

engagements_described as (
    select
        records_per_engagement.engagement_id,
        coalesce(erp_jobs.project_code, psa_projects.project_code) as project_code,
        coalesce(psa_projects.project_name, erp_jobs.job_name) as engagement_name,
        coalesce(erp_clients.client_id, psa_clients.client_id) as client_id,
        coalesce(legal_entities.legal_entity_id, md5('-1')) as legal_entity_id,
        legal_entities.currency_code,
        case erp_jobs.billing_type
            when 'TM' then 'time_and_materials'
            when 'FF' then 'fixed_fee'
            when 'MS' then 'milestone'
            when 'RT' then 'retainer'
            else 'non_billable'
        end as billing_model,
        cast(erp_jobs.estimated_revenue_amount as decimal(18, 2)) as contract_value,
        cast(erp_jobs.estimated_labor_hours as decimal(12, 2)) as budget_hours,
        coalesce(erp_jobs.start_date, psa_projects.start_date) as start_date,
        coalesce(erp_jobs.end_date, psa_projects.end_date) as end_date,
        case
            when erp_jobs.job_status_id = '3' then 'closed'
            when erp_jobs.job_status_id = '4' then 'completed'
            when erp_jobs.job_id is not null then 'active'
            when psa_projects.is_active then 'active'
            else 'archived'
        end as engagement_status,
        coalesce(erp_jobs.job_status_id in ('3', '4'), not psa_projects.is_active, false)
            as is_closed,
        coalesce(psa_projects.is_billable, erp_jobs.job_id is not null) as is_billable,
        erp_jobs.job_id is null as is_internal,
        records_per_engagement.erp_project_id,
        records_per_engagement.psa_project_id,
        records_per_engagement.crm_deal_id,
        coalesce(erp_jobs.created_at, psa_projects.created_at) as created_at
    from records_per_engagement
    left join erp_jobs
        on records_per_engagement.erp_project_id = erp_jobs.job_id
    left join psa_projects
        on records_per_engagement.psa_project_id = psa_projects.project_id
    left join client_map as erp_clients
        on
            erp_clients.system_role = 'erp'
            and erp_jobs.customer_id = erp_clients.system_record_id
    left join client_map as psa_clients
        on
            psa_clients.system_role = 'psa'
            and psa_projects.client_id = psa_clients.system_record_id
    left join legal_entities
        on erp_jobs.subsidiary_id = legal_entities.erp_subsidiary_id
)

select * from engagements_described
