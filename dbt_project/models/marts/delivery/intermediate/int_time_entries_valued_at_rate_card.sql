{#- One row per PSA time entry (deleted ones left out), in its latest version, with what the
    delivery marts need: its hour category, the engagement's billing model, its value at the
    contracted rate (the rate card in force, DECISIONLOG) and at cost, and whether an ERP posting
    of it was invoiced. A time entry moved to another project keeps its id: it counts once, on the
    engagement the PSA now has it on, whatever project an earlier ERP posting names. -#}
with

fct_time_entries as (
    select
        time_entry_id,
        record_ref,
        psa_time_entry_id,
        resource_id,
        engagement_id,
        legal_entity_id,
        work_date,
        hours,
        bill_rate,
        cost_rate,
        currency_code,
        is_billable,
        is_approved,
        is_deleted,
        updated_at,
        _dlt_load_id
    from {{ ref('fct_time_entries') }}
),

dim_engagements as (
    select
        engagement_id,
        project_code,
        client_id,
        legal_entity_id,
        billing_model,
        is_internal,
        is_billable
    from {{ ref('dim_engagements') }}
),

dim_resources as (
    select
        resource_id,
        role_name,
        practice_name
    from {{ ref('dim_resources') }}
),

dim_rate_cards as (
    select
        legal_entity_id,
        client_id,
        role_name,
        bill_rate,
        effective_from,
        effective_to,
        is_standard_card
    from {{ ref('dim_rate_cards') }}
    where not is_inactive
),

fct_time_postings as (
    select
        psa_time_entry_id,
        erp_invoice_id
    from {{ ref('fct_time_postings') }}
    where not is_deleted and psa_time_entry_id is not null
),

fct_invoices as (
    select
        erp_invoice_id,
        invoice_date
    from {{ ref('fct_invoices') }}
    where document_type = 'invoice' and not is_voided
),

-- one version per PSA entry, the latest, whatever a load kept of older ones; then deleted
-- entries leave
latest_entries as (
    select *
    from (
        select
            fct_time_entries.*,
            row_number() over (
                partition by fct_time_entries.psa_time_entry_id
                order by fct_time_entries.updated_at desc, fct_time_entries._dlt_load_id desc
            ) as version_rank
        from fct_time_entries
    ) as ranked
    where version_rank = 1 and not is_deleted
),

-- an entry counts as invoiced when any ERP posting of it is on a live (not voided) invoice: the
-- first such invoice
postings_summarised as (
    select
        fct_time_postings.psa_time_entry_id,
        count(*) as postings,
        min(fct_invoices.erp_invoice_id) as erp_invoice_id,
        min(fct_invoices.invoice_date) as invoice_date
    from fct_time_postings
    left join fct_invoices
        on fct_time_postings.erp_invoice_id = fct_invoices.erp_invoice_id
    group by 1
),

entries_described as (
    select
        latest_entries.*,
        dim_engagements.project_code,
        dim_engagements.client_id,
        -- an engagement without an ERP project has no entity of its own: the person's
        case
            when dim_engagements.legal_entity_id = md5('-1')
                then latest_entries.legal_entity_id
            else coalesce(dim_engagements.legal_entity_id, latest_entries.legal_entity_id)
        end as engagement_legal_entity_id,
        coalesce(dim_engagements.billing_model, 'non_billable') as billing_model,
        -- client work: an ERP project, or a PSA project billable to a client
        coalesce(not dim_engagements.is_internal or dim_engagements.is_billable, false)
            as is_client_work,
        coalesce(dim_engagements.project_code like '{{ var("pto_project_code_pattern") }}', false)
            as is_pto,
        dim_resources.role_name,
        coalesce(dim_resources.practice_name, 'Unassigned') as practice_name
    from latest_entries
    left join dim_engagements
        on latest_entries.engagement_id = dim_engagements.engagement_id
    left join dim_resources
        on latest_entries.resource_id = dim_resources.resource_id
),

-- the card in force: the client's card for the role and date, else the entity's standard card
entries_valued as (
    select
        entries_described.*,
        case
            when entries_described.is_pto then 'pto'
            when entries_described.is_client_work and entries_described.is_billable
                then 'billable'
            when entries_described.is_client_work then 'non_billable_client'
            else 'internal'
        end as hour_category,
        coalesce(client_card.bill_rate, standard_card.bill_rate, entries_described.bill_rate)
            as contracted_rate,
        coalesce(client_card.bill_rate, standard_card.bill_rate) is not null as has_rate_card,
        coalesce(postings_summarised.postings, 0) as postings,
        postings_summarised.erp_invoice_id,
        postings_summarised.invoice_date
    from entries_described
    {{ join_rate_cards_in_force(
        'entries_described', 'dim_rate_cards', 'client_id', 'engagement_legal_entity_id'
    ) }}
    left join postings_summarised
        on entries_described.psa_time_entry_id = postings_summarised.psa_time_entry_id
),

final as (
    select
        time_entry_id,
        record_ref,
        psa_time_entry_id,
        resource_id,
        engagement_id,
        client_id,
        -- the person's entity (utilization, unbilled time) and the engagement's (WIP, margin)
        legal_entity_id,
        engagement_legal_entity_id,
        project_code,
        billing_model,
        practice_name,
        role_name,
        work_date,
        cast({{ dbt.date_trunc('month', 'work_date') }} as date) as work_month_start_date,
        hour_category,
        is_client_work,
        is_billable,
        is_approved,
        cast(hours as decimal(12, 4)) as hours,
        cast(bill_rate as decimal(18, 6)) as bill_rate,
        cast(contracted_rate as decimal(18, 6)) as contracted_rate,
        has_rate_card,
        cast(cost_rate as decimal(18, 6)) as cost_rate,
        currency_code,
        -- billable work at the contracted rate, rounded once per entry
        cast(case
            when hour_category = 'billable' then round(hours * contracted_rate, 2)
            else 0
        end as decimal(18, 2)) as contracted_amount,
        -- any client work at the contracted rate (weights revenue between practices)
        cast(case
            when is_client_work then round(hours * coalesce(contracted_rate, 0), 2)
            else 0
        end as decimal(18, 2)) as standard_amount,
        cast(round(hours * coalesce(cost_rate, 0), 2) as decimal(18, 2)) as cost_amount,
        postings,
        postings > 0 as is_posted,
        erp_invoice_id,
        invoice_date,
        erp_invoice_id is not null as is_invoiced
    from entries_valued
)

select * from final
