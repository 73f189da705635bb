{#- One row per canonical resource (person): the ERP employee's entity, practice, cost and
    target with the PSA user's capacity and role. -#}
with

resource_map as (
    select
        resource_id,
        system_role,
        system_record_id
    from {{ ref('map_resource_ids') }}
),

erp_employees as (
    select
        employee_id,
        department_id,
        subsidiary_id,
        first_name,
        last_name,
        email,
        role_name,
        labor_cost_rate,
        utilization_target,
        hire_date,
        release_date,
        is_inactive
    from {{ staged('erp', 'employees') }}
),

departments as (
    select
        department_id,
        department_name
    from {{ staged('erp', 'departments') }}
),

legal_entities as (
    select
        legal_entity_id,
        erp_subsidiary_id,
        currency_code
    from {{ ref('dim_legal_entities') }}
),

psa_users as (
    select
        user_id,
        first_name,
        last_name,
        email,
        role_name,
        weekly_capacity_hours,
        cost_rate,
        is_active,
        is_contractor
    from {{ staged('psa', 'users') }}
),

records_per_resource as (
    select
        resource_id,
        max(case when system_role = 'erp' then system_record_id end) as erp_employee_id,
        min(case when system_role = 'psa' then system_record_id end) as psa_user_id
    from resource_map
    group by 1
),

resources_described as (
    select
        records_per_resource.resource_id,
        coalesce(erp_employees.first_name, psa_users.first_name) || ' '
        || coalesce(erp_employees.last_name, psa_users.last_name) as resource_name,
        lower(coalesce(erp_employees.email, psa_users.email)) as email,
        coalesce(erp_employees.role_name, psa_users.role_name) as role_name,
        coalesce(departments.department_name, 'Unassigned') as practice_name,
        coalesce(legal_entities.legal_entity_id, md5('-1')) as legal_entity_id,
        legal_entities.currency_code,
        cast(coalesce(psa_users.weekly_capacity_hours, 40) as decimal(12, 4))
            as weekly_capacity_hours,
        cast(coalesce(psa_users.weekly_capacity_hours, 40) / 40.0 as decimal(6, 4)) as fte,
        cast(coalesce(erp_employees.labor_cost_rate, psa_users.cost_rate) as decimal(18, 6))
            as cost_rate,
        cast(erp_employees.utilization_target as decimal(6, 4)) as utilization_target,
        erp_employees.hire_date,
        erp_employees.release_date,
        coalesce(not erp_employees.is_inactive, psa_users.is_active, false) as is_active,
        coalesce(psa_users.is_contractor, false) as is_contractor,
        records_per_resource.erp_employee_id,
        records_per_resource.psa_user_id
    from records_per_resource
    left join erp_employees
        on records_per_resource.erp_employee_id = erp_employees.employee_id
    left join departments
        on erp_employees.department_id = departments.department_id
    left join legal_entities
        on erp_employees.subsidiary_id = legal_entities.erp_subsidiary_id
    left join psa_users
        on records_per_resource.psa_user_id = psa_users.user_id
)

select * from resources_described
