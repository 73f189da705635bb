{#- One row per live CRM company matched to an ERP customer: the values the CRM should hold for
    the company fields the ERP owns (field_ownership seed). The reverse sync diffs these against
    the CRM and writes what the policy allows. -#}
with

client_map as (
    select
        client_id,
        system_record_id,
        match_method
    from {{ ref('map_client_ids') }}
    where
        system_role = 'crm'
        and is_survivor
        and match_method in ('external_id', 'external_id_reverse', 'normalised_name')
),

clients as (
    select
        client_id,
        legal_name,
        billing_country_code,
        currency_code,
        payment_terms,
        erp_customer_id
    from {{ ref('dim_clients') }}
),

desired as (
    select
        client_map.system_record_id as crm_record_id,
        clients.client_id,
        client_map.match_method,
        clients.legal_name,
        clients.billing_country_code as country,
        clients.currency_code as billing_currency,
        clients.payment_terms,
        clients.erp_customer_id as netsuite_customer_id
    from client_map
    inner join clients
        on client_map.client_id = clients.client_id
    where clients.erp_customer_id is not null
)

select * from desired
