{#- One row per person record of any system (PSA user, ERP employee) with the canonical
    resource it belongs to: the same person has the same e-mail address in both. -#}
with

erp_employees as (
    select
        employee_id,
        record_ref,
        source_system,
        lower(trim(email)) as email_key
    from {{ staged('erp', 'employees') }}
),

psa_users as (
    select
        user_id,
        record_ref,
        source_system,
        lower(trim(email)) as email_key
    from {{ staged('psa', 'users') }}
),

erp_records_mapped as (
    select
        md5(record_ref) as resource_id,
        'erp' as system_role,
        source_system,
        employee_id as system_record_id,
        record_ref,
        'master' as match_method,
        cast(1.0 as decimal(4, 2)) as match_confidence
    from erp_employees
),

psa_records_mapped_ranked as (
    select
        md5(coalesce(erp_employees.record_ref, psa_users.record_ref)) as resource_id,
        'psa' as system_role,
        psa_users.source_system,
        psa_users.user_id as system_record_id,
        psa_users.record_ref,
        case when erp_employees.record_ref is null then 'unmatched' else 'email' end
            as match_method,
        cast(case when erp_employees.record_ref is null then 0.0 else 1.0 end as decimal(4, 2))
            as match_confidence,
        row_number() over (
            partition by psa_users.user_id order by erp_employees.employee_id
        ) as match_rank
    from psa_users
    left join erp_employees
        on psa_users.email_key = erp_employees.email_key
),

psa_records_mapped as (
    select
        resource_id,
        system_role,
        source_system,
        system_record_id,
        record_ref,
        match_method,
        match_confidence
    from psa_records_mapped_ranked
    where match_rank = 1
),

all_records as (
    select * from erp_records_mapped
    union all
    select * from psa_records_mapped
)

select * from all_records
