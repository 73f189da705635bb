{{ config(
    materialized='incremental',
    unique_key='psa_time_entry_id',
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    post_hook=[
        "delete from {{ this }} where psa_time_entry_id in (
            select psa_time_entry_id from {{ ref('fct_time_entries') }}
            group by 1 having bool_and(is_deleted))",
    ],
) }}
{#- One row per PSA time entry (deleted ones left out), in its latest version, with what the
    delivery marts need: its hour category, the engagement's billing model, its value at the
    contracted rate (the rate card in force, DECISIONLOG) and at cost, and whether an ERP posting
    of it was invoiced. A time entry moved to another project keeps its id: it counts once, on the
    engagement the PSA now has it on, whatever project an earlier ERP posting names.

    Incremental (DECISIONLOG: "The valued time entries revalue what changed"): a run revalues the
    entries changed in the PSA since the table was built, those whose ERP postings changed, and
    those whose engagement or person changed; a changed rate card or invoice revalues them all.
    Entries deleted in the PSA leave in the post-hook. -#}
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
        _dlt_load_id,
        changed_load_id
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
        is_billable,
        -- what a change of revalues the engagement's entries
        {{ fingerprint([
            'project_code', 'client_id', 'legal_entity_id', 'billing_model', 'is_internal',
            'is_billable'
        ]) }} as engagement_fingerprint
    from {{ ref('dim_engagements') }}
),

dim_resources as (
    select
        resource_id,
        role_name,
        practice_name,
        -- what a change of revalues the person's entries
        {{ fingerprint(['role_name', 'practice_name']) }} as resource_fingerprint
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

-- deleted postings too: when a posting was last changed or deleted counts
fct_time_postings as (
    select
        psa_time_entry_id,
        erp_invoice_id,
        is_deleted,
        changed_load_id
    from {{ ref('fct_time_postings') }}
    where psa_time_entry_id is not null
),

fct_invoices as (
    select
        erp_invoice_id,
        invoice_date,
        document_type,
        is_voided
    from {{ ref('fct_invoices') }}
),

-- what a change of revalues every entry: the rate cards, which invoices are live and their
-- dates, and the pattern of PTO project codes
rate_card_fingerprints as (
    select
        {{ fingerprint([
            'legal_entity_id', 'client_id', 'role_name', 'bill_rate', 'effective_from',
            'effective_to', 'is_standard_card'
        ]) }} as row_fingerprint
    from dim_rate_cards
),

invoice_fingerprints as (
    select
        {{ fingerprint(['erp_invoice_id', 'invoice_date', 'document_type', 'is_voided']) }}
            as row_fingerprint
    from fct_invoices
),

valuation_inputs as (
    select
        md5(concat_ws(
            '|',
            (
                select {{ fingerprint_of_rows('rate_card_fingerprints.row_fingerprint') }}
                from rate_card_fingerprints
            ),
            (
                select {{ fingerprint_of_rows('invoice_fingerprints.row_fingerprint') }}
                from invoice_fingerprints
            ),
            '{{ var("pto_project_code_pattern") }}'
        )) as valuation_fingerprint
),

{% if is_incremental() -%}
    -- what the table was built from
    built as (
        select
            coalesce(max(cast(entry_load_id as double precision)), 0) as entry_load,
            coalesce(max(cast(postings_load_id as double precision)), 0) as postings_load,
            max(valuation_fingerprint) as valuation_fingerprint
        from {{ this }}
    ),

    entries_to_value as (
        select fct_time_entries.psa_time_entry_id
        from fct_time_entries
        where
            cast(fct_time_entries.changed_load_id as double precision)
            > (select built.entry_load from built)
        union
        select fct_time_postings.psa_time_entry_id
        from fct_time_postings
        where
            cast(fct_time_postings.changed_load_id as double precision)
            > (select built.postings_load from built)
        union
        select valued.psa_time_entry_id
        from {{ this }} as valued
        left join dim_engagements
            on valued.engagement_id = dim_engagements.engagement_id
        left join dim_resources
            on valued.resource_id = dim_resources.resource_id
        where
            valued.engagement_fingerprint is distinct from dim_engagements.engagement_fingerprint
            or valued.resource_fingerprint is distinct from dim_resources.resource_fingerprint
        union
        select fct_time_entries.psa_time_entry_id
        from fct_time_entries
        where
            (select valuation_inputs.valuation_fingerprint from valuation_inputs)
            is distinct from (select built.valuation_fingerprint from built)
    ),

{% endif -%}

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
        {%- if is_incremental() %}
            where fct_time_entries.psa_time_entry_id in (
                select entries_to_value.psa_time_entry_id from entries_to_value
            )
        {%- endif %}
    ) as ranked
    where version_rank = 1 and not is_deleted
),

-- an entry counts as invoiced when any ERP posting of it is on a live (not voided) invoice: the
-- first such invoice
postings_summarised as (
    select
        fct_time_postings.psa_time_entry_id,
        count(*) filter (where not fct_time_postings.is_deleted) as postings,
        min(fct_invoices.erp_invoice_id) as erp_invoice_id,
        min(fct_invoices.invoice_date) as invoice_date,
        max(cast(fct_time_postings.changed_load_id as double precision)) as postings_load_id
    from fct_time_postings
    left join fct_invoices
        on
            fct_time_postings.erp_invoice_id = fct_invoices.erp_invoice_id
            and not fct_time_postings.is_deleted
            and fct_invoices.document_type = 'invoice'
            and not fct_invoices.is_voided
    {%- if is_incremental() %}
        where fct_time_postings.psa_time_entry_id in (
            select entries_to_value.psa_time_entry_id from entries_to_value
        )
    {%- endif %}
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
        coalesce(dim_resources.practice_name, 'Unassigned') as practice_name,
        dim_engagements.engagement_fingerprint,
        dim_resources.resource_fingerprint
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
        postings_summarised.invoice_date,
        postings_summarised.postings_load_id
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
        erp_invoice_id is not null as is_invoiced,
        updated_at,
        -- what this row was valued from (the incremental run compares them)
        cast(changed_load_id as double precision) as entry_load_id,
        postings_load_id,
        engagement_fingerprint,
        resource_fingerprint,
        (select valuation_inputs.valuation_fingerprint from valuation_inputs)
            as valuation_fingerprint
    from entries_valued
)

select * from final
