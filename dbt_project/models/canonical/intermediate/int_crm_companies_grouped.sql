{{ config(materialized='table') }}
{#- Live CRM companies that are the same party: shared normalised name or domain, transitively;
    the oldest survives. Archived companies take no part. -#}
with

companies as (
    select
        company_id as record_id,
        {{ normalised_name('company_name') }} as name_key,
        {{ normalised_domain('domain') }} as domain_key,
        created_at
    from {{ staged('crm', 'companies') }}
    where not coalesce(is_archived, false)
),

grouped as (
    {{ duplicate_groups('companies') }}
)

select * from grouped
