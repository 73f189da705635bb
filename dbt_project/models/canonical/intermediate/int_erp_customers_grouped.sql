{{ config(materialized='table') }}
{#- ERP customers that are the same party: shared normalised name or domain, transitively; the
    oldest survives (sandbox README, duplicate_customer). -#}
with

customers as (
    select
        customer_id as record_id,
        {{ normalised_name('company_name') }} as name_key,
        {{ normalised_domain('website') }} as domain_key,
        created_at
    from {{ staged('erp', 'customers') }}
),

grouped as (
    {{ duplicate_groups('customers') }}
)

select * from grouped
