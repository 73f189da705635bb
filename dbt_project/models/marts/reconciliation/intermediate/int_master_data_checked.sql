{#- One row per client, project, deal or invoice record that breaks a master-data rule of the
    reconciliation (sandbox README, discrepancy rules): duplicates, customer master drift,
    unmapped project codes, contract values, won deals without a project, invoice status. -#}
with

client_map as (
    select
        client_id,
        system_role,
        system_record_id,
        record_ref,
        match_method,
        is_survivor
    from {{ ref('map_client_ids') }}
),

engagement_map as (
    select
        engagement_id,
        system_role,
        system_record_id,
        record_ref,
        match_method
    from {{ ref('map_engagement_ids') }}
),

erp_groups as (
    select
        record_id,
        survivor_record_id
    from {{ ref('int_erp_customers_grouped') }}
    where not is_survivor
),

crm_groups as (
    select
        record_id,
        survivor_record_id
    from {{ ref('int_crm_companies_grouped') }}
    where not is_survivor
),

clients as (
    select
        client_id,
        legal_name,
        billing_country_code,
        currency_code,
        payment_terms
    from {{ ref('dim_clients') }}
),

crm_companies as (
    select
        company_id,
        company_name,
        legal_name,
        country,
        billing_currency_code,
        payment_terms
    from {{ staged('crm', 'companies') }}
),

engagements as (
    select
        engagement_id,
        client_id,
        project_code,
        engagement_name,
        contract_value,
        currency_code,
        is_billable,
        erp_project_id
    from {{ ref('dim_engagements') }}
),

deals as (
    select
        deal_id,
        record_ref,
        crm_deal_id,
        client_id,
        deal_stage,
        deal_amount,
        currency_code,
        close_date,
        is_archived
    from {{ ref('dim_deals') }}
),

invoices as (
    select
        invoice_id,
        record_ref,
        erp_invoice_id,
        client_id,
        engagement_id,
        document_type,
        invoice_status,
        amount_paid,
        rate_to_reporting
    from {{ ref('fct_invoices') }}
),

crm_invoice_records as (
    select
        crm_record_id,
        erp_invoice_id,
        invoice_status,
        amount_paid
    from {{ ref('fct_crm_invoice_records') }}
    where not is_archived
),

fx_today as (
    select
        currency_code,
        rate_to_reporting
    from {{ ref('fct_fx_rates') }}
    where rate_date = {{ as_of_date() }}
),

duplicates as (
    select
        'duplicate_customer' as exception_type,
        duplicate.record_ref,
        cast(null as varchar) as engagement_id,
        duplicate.client_id,
        survivor.record_ref as expected_value,
        duplicate.system_record_id as actual_value,
        cast(null as decimal(18, 2)) as amount_at_risk_reporting,
        cast(null as varchar) as crm_object,
        cast(null as varchar) as crm_record_id,
        cast(null as varchar) as crm_property
    from client_map as duplicate
    inner join erp_groups
        on
            duplicate.system_role = 'erp'
            and duplicate.system_record_id = erp_groups.record_id
    inner join client_map as survivor
        on
            survivor.system_role = 'erp'
            and erp_groups.survivor_record_id = survivor.system_record_id
    union all
    select
        'duplicate_customer' as exception_type,
        duplicate.record_ref,
        cast(null as varchar) as engagement_id,
        duplicate.client_id,
        survivor.record_ref as expected_value,
        duplicate.system_record_id as actual_value,
        cast(null as decimal(18, 2)) as amount_at_risk_reporting,
        cast(null as varchar) as crm_object,
        cast(null as varchar) as crm_record_id,
        cast(null as varchar) as crm_property
    from client_map as duplicate
    inner join crm_groups
        on
            duplicate.system_role = 'crm'
            and duplicate.system_record_id = crm_groups.record_id
    inner join client_map as survivor
        on
            survivor.system_role = 'crm'
            and crm_groups.survivor_record_id = survivor.system_record_id
),

-- the CRM's copy of the fields the ERP owns, beside the ERP's values (surviving, matched
-- companies only)
crm_fields_against_erp as (
    select
        client_map.record_ref,
        client_map.client_id,
        crm_companies.company_id,
        field_values.crm_property,
        field_values.crm_value,
        field_values.erp_value
    from client_map
    inner join crm_companies
        on client_map.system_record_id = crm_companies.company_id
    inner join clients
        on client_map.client_id = clients.client_id
    cross join
        lateral (
            values
            ('legal_name', crm_companies.legal_name, clients.legal_name),
            ('country', crm_companies.country, clients.billing_country_code),
            ('billing_currency', crm_companies.billing_currency_code, clients.currency_code),
            ('payment_terms', crm_companies.payment_terms, clients.payment_terms)
        ) as field_values (crm_property, crm_value, erp_value)
    where
        client_map.system_role = 'crm'
        and client_map.is_survivor
        and client_map.match_method in ('external_id', 'external_id_reverse', 'normalised_name')
),

master_drift as (
    select
        'customer_master_drift' as exception_type,
        record_ref || '#' || crm_property as record_ref,
        cast(null as varchar) as engagement_id,
        client_id,
        erp_value as expected_value,
        crm_value as actual_value,
        cast(null as decimal(18, 2)) as amount_at_risk_reporting,
        'companies' as crm_object,
        company_id as crm_record_id,
        crm_property
    from crm_fields_against_erp
    where coalesce(crm_value, '') <> coalesce(erp_value, '')
),

unmapped_codes as (
    select
        'project_code_unmapped' as exception_type,
        engagement_map.record_ref,
        engagement_map.engagement_id,
        engagements.client_id,
        cast(null as varchar) as expected_value,
        engagements.project_code as actual_value,
        cast(null as decimal(18, 2)) as amount_at_risk_reporting,
        cast(null as varchar) as crm_object,
        cast(null as varchar) as crm_record_id,
        cast(null as varchar) as crm_property
    from engagement_map
    inner join engagements
        on engagement_map.engagement_id = engagements.engagement_id
    where
        engagement_map.system_role = 'psa'
        and engagement_map.match_method = 'unmatched'
        and engagements.is_billable
),

deals_with_project as (
    select
        deals.*,
        engagement_map.engagement_id,
        engagements.contract_value,
        engagements.currency_code as engagement_currency_code
    from deals
    left join engagement_map
        on
            engagement_map.system_role = 'crm'
            and engagement_map.match_method = 'external_id'
            and deals.crm_deal_id = engagement_map.system_record_id
    left join engagements
        on engagement_map.engagement_id = engagements.engagement_id
    where not deals.is_archived
),

deal_checks as (
    select
        case
            when deals_with_project.engagement_id is null then 'deal_won_without_project'
            else 'contract_value_mismatch'
        end as exception_type,
        deals_with_project.record_ref,
        deals_with_project.engagement_id,
        deals_with_project.client_id,
        case
            when deals_with_project.engagement_id is null then 'project'
            else cast(deals_with_project.contract_value as varchar)
        end as expected_value,
        case
            when deals_with_project.engagement_id is null then null
            else cast(deals_with_project.deal_amount as varchar)
        end as actual_value,
        cast(round(case
            when deals_with_project.engagement_id is null
                then coalesce(deals_with_project.deal_amount, 0)
            else abs(
                coalesce(deals_with_project.deal_amount, 0)
                - deals_with_project.contract_value
            )
        end * coalesce(fx_today.rate_to_reporting, 1), 2) as decimal(18, 2))
            as amount_at_risk_reporting,
        'deals' as crm_object,
        deals_with_project.crm_deal_id as crm_record_id,
        case when deals_with_project.engagement_id is not null then 'amount' end
            as crm_property
    from deals_with_project
    left join fx_today
        on coalesce(
            deals_with_project.engagement_currency_code,
            deals_with_project.currency_code
        ) = fx_today.currency_code
    where
        (
            deals_with_project.engagement_id is null
            and deals_with_project.deal_stage = 'closedwon'
            and deals_with_project.close_date
            <= {{ as_of_date() }} - {{ var('deal_grace_days') }}
        )
        or (
            deals_with_project.engagement_id is not null
            and abs(
                coalesce(deals_with_project.deal_amount, 0)
                - deals_with_project.contract_value
            )
            > {{ var('contract_value_tolerance') }} * abs(deals_with_project.contract_value)
        )
),

invoice_checks as (
    select
        'invoice_status_drift' as exception_type,
        invoices.record_ref,
        invoices.engagement_id,
        invoices.client_id,
        invoices.invoice_status || ' / ' || cast(invoices.amount_paid as varchar)
            as expected_value,
        crm_invoice_records.invoice_status || ' / '
        || coalesce(cast(crm_invoice_records.amount_paid as varchar), '')
            as actual_value,
        cast(round(
            abs(invoices.amount_paid - coalesce(crm_invoice_records.amount_paid, 0))
            * coalesce(invoices.rate_to_reporting, 1), 2
        ) as decimal(18, 2
        ))
            as amount_at_risk_reporting,
        'erp_invoices' as crm_object,
        crm_invoice_records.crm_record_id,
        case
            when coalesce(crm_invoice_records.invoice_status, '') <> invoices.invoice_status
                then 'invoice_status'
            else 'amount_paid'
        end as crm_property
    from invoices
    inner join crm_invoice_records
        on invoices.erp_invoice_id = crm_invoice_records.erp_invoice_id
    where
        invoices.document_type = 'invoice'
        and (
            coalesce(crm_invoice_records.invoice_status, '') <> invoices.invoice_status
            or abs(coalesce(crm_invoice_records.amount_paid, 0) - invoices.amount_paid) > 0.001
        )
),

all_checks as (
    select * from duplicates
    union all
    select * from master_drift
    union all
    select * from unmapped_codes
    union all
    select * from deal_checks
    union all
    select * from invoice_checks
)

select * from all_checks
