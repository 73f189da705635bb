{#- One row per engagement record of any system (ERP project, PSA project, CRM deal that became
    a project) with the canonical engagement it belongs to. The ERP project is the spine; the
    PSA project shares its project code, the CRM deal is named by the ERP project. -#}
with

erp_jobs as (
    select
        job_id,
        crm_deal_id,
        record_ref,
        source_system,
        upper(trim(project_code)) as code_key
    from {{ staged('erp', 'jobs') }}
),

psa_projects as (
    select
        project_id,
        record_ref,
        source_system,
        upper(trim(project_code)) as code_key
    from {{ staged('psa', 'projects') }}
),

crm_deals as (
    select
        deal_id,
        record_ref,
        source_system,
        upper(trim(erp_project_code)) as code_key
    from {{ staged('crm', 'deals') }}
    where not coalesce(is_archived, false)
),

erp_records_mapped as (
    select
        md5(record_ref) as engagement_id,
        'erp' as system_role,
        source_system,
        job_id as system_record_id,
        record_ref,
        'master' as match_method,
        cast(1.0 as decimal(4, 2)) as match_confidence
    from erp_jobs
),

psa_records_mapped_ranked as (
    select
        md5(coalesce(erp_jobs.record_ref, psa_projects.record_ref)) as engagement_id,
        'psa' as system_role,
        psa_projects.source_system,
        psa_projects.project_id as system_record_id,
        psa_projects.record_ref,
        case when erp_jobs.record_ref is null then 'unmatched' else 'project_code' end
            as match_method,
        cast(case when erp_jobs.record_ref is null then 0.0 else 1.0 end as decimal(4, 2))
            as match_confidence,
        row_number() over (
            partition by psa_projects.project_id order by erp_jobs.job_id
        ) as match_rank
    from psa_projects
    left join erp_jobs
        on psa_projects.code_key = erp_jobs.code_key
),

psa_records_mapped as (
    select
        engagement_id,
        system_role,
        source_system,
        system_record_id,
        record_ref,
        match_method,
        match_confidence
    from psa_records_mapped_ranked
    where match_rank = 1
),

crm_records_mapped_ranked as (
    select
        md5(coalesce(by_deal_id.record_ref, by_code.record_ref)) as engagement_id,
        'crm' as system_role,
        crm_deals.source_system,
        crm_deals.deal_id as system_record_id,
        crm_deals.record_ref,
        case when by_deal_id.record_ref is not null then 'external_id' else 'project_code' end
            as match_method,
        cast(1.0 as decimal(4, 2)) as match_confidence,
        row_number() over (
            partition by crm_deals.deal_id order by by_deal_id.job_id, by_code.job_id
        ) as match_rank
    from crm_deals
    left join erp_jobs as by_deal_id
        on crm_deals.deal_id = by_deal_id.crm_deal_id
    left join erp_jobs as by_code
        on crm_deals.code_key = by_code.code_key
    where coalesce(by_deal_id.record_ref, by_code.record_ref) is not null
),

crm_records_mapped as (
    select
        engagement_id,
        system_role,
        source_system,
        system_record_id,
        record_ref,
        match_method,
        match_confidence
    from crm_records_mapped_ranked
    where match_rank = 1
),

all_records as (
    select * from erp_records_mapped
    union all
    select * from psa_records_mapped
    union all
    select * from crm_records_mapped
)

select * from all_records
