{#- One row per canonical client: the ERP customer master's values, with the CRM's and the
    PSA's record beside them. -#}
with

client_map as (
    select
        client_id,
        system_role,
        system_record_id,
        match_method,
        is_survivor
    from {{ ref('map_client_ids') }}
),

erp_customers as (
    select
        customer_id,
        subsidiary_id,
        currency_id,
        term_id,
        company_name,
        website,
        bill_country,
        created_at
    from {{ staged('erp', 'customers') }}
),

currencies as (
    select
        currency_id,
        currency_code
    from {{ staged('erp', 'currencies') }}
),

terms as (
    select
        term_id,
        term_name
    from {{ staged('erp', 'terms') }}
),

legal_entities as (
    select
        legal_entity_id,
        erp_subsidiary_id
    from {{ ref('dim_legal_entities') }}
),

crm_companies as (
    select
        company_id,
        company_name,
        domain,
        created_at
    from {{ staged('crm', 'companies') }}
),

psa_clients as (
    select
        client_id,
        client_name,
        currency_code,
        created_at
    from {{ staged('psa', 'clients') }}
),

primary_records as (
    select
        client_id,
        max(case when system_role = 'erp' and is_survivor then system_record_id end)
            as erp_customer_id,
        min(case when system_role = 'crm' and is_survivor then system_record_id end)
            as crm_company_id,
        min(case when system_role = 'psa' then system_record_id end) as psa_client_id,
        count(*) as records_in_systems
    from client_map
    group by 1
),

clients_described as (
    select
        primary_records.client_id,
        coalesce(crm_companies.company_name, psa_clients.client_name, erp_customers.company_name)
            as client_name,
        erp_customers.company_name as legal_name,
        coalesce(crm_companies.domain, {{ normalised_domain('erp_customers.website') }})
            as web_domain,
        erp_customers.bill_country as billing_country_code,
        coalesce(currencies.currency_code, psa_clients.currency_code) as currency_code,
        terms.term_name as payment_terms,
        legal_entities.legal_entity_id,
        primary_records.erp_customer_id,
        primary_records.crm_company_id,
        primary_records.psa_client_id,
        primary_records.records_in_systems,
        primary_records.erp_customer_id is not null as has_erp_record,
        primary_records.crm_company_id is not null as has_crm_record,
        primary_records.psa_client_id is not null as has_psa_record,
        least(erp_customers.created_at, crm_companies.created_at, psa_clients.created_at)
            as created_at
    from primary_records
    left join erp_customers
        on primary_records.erp_customer_id = erp_customers.customer_id
    left join currencies
        on erp_customers.currency_id = currencies.currency_id
    left join terms
        on erp_customers.term_id = terms.term_id
    left join legal_entities
        on erp_customers.subsidiary_id = legal_entities.erp_subsidiary_id
    left join crm_companies
        on primary_records.crm_company_id = crm_companies.company_id
    left join psa_clients
        on primary_records.psa_client_id = psa_clients.client_id
)

select * from clients_described
