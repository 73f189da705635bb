{#- One row per PSA time entry that breaks a time rule of the reconciliation (sandbox README,
    discrepancy rules): not posted, posted twice, hours differ, in a closed period, on a closed
    project, rate differs from the card. Entries on a project whose code is unmapped are left to
    `project_code_unmapped`: their time cannot be tied to the ERP by code. -#}
with

-- the valued entries: one per PSA entry, deleted ones left out, with the role and the rate card
-- in force already looked up (DECISIONLOG: billable work is valued at the contracted rate)
time_entries as (
    select
        time_entry_id,
        record_ref,
        psa_time_entry_id,
        resource_id,
        engagement_id,
        work_date,
        hours,
        bill_rate,
        currency_code,
        is_billable,
        is_approved,
        updated_at,
        role_name,
        case when has_rate_card then contracted_rate end as card_rate
    from {{ ref('int_time_entries_valued_at_rate_card') }}
),

postings as (
    select
        psa_time_entry_id,
        count(*) as postings,
        min(hours) as posted_hours
    from {{ ref('fct_time_postings') }}
    where not is_deleted and psa_time_entry_id is not null
    group by 1
),

engagements as (
    select
        engagement_id,
        client_id,
        legal_entity_id,
        engagement_status,
        end_date,
        is_internal,
        is_billable,
        erp_project_id
    from {{ ref('dim_engagements') }}
),

periods as (
    select
        start_date,
        end_date,
        closed_on_date
    from {{ ref('dim_accounting_periods') }}
    where is_posting and period_type = 'month' and is_closed
),

fx_rates as (
    select
        currency_code,
        rate_date,
        rate_to_reporting
    from {{ ref('fct_fx_rates') }}
),

-- time the reconciliation can judge: entries on ERP-mapped projects and internal time; an
-- unmapped billable project's time is left out
judged_entries as (
    select
        time_entries.*,
        engagements.engagement_status,
        engagements.end_date as engagement_end_date,
        engagements.legal_entity_id as engagement_legal_entity_id,
        engagements.client_id as engagement_client_id,
        engagements.erp_project_id is not null as is_mapped,
        -- wide enough that hours x rate x FX cannot overflow before the final rounding
        cast(time_entries.hours as decimal(20, 4)) as wide_hours,
        cast(time_entries.bill_rate as decimal(20, 6)) as wide_bill_rate,
        cast(coalesce(fx_rates.rate_to_reporting, 1) as decimal(20, 6)) as rate_to_reporting
    from time_entries
    inner join engagements
        on time_entries.engagement_id = engagements.engagement_id
    left join fx_rates
        on
            time_entries.currency_code = fx_rates.currency_code
            and time_entries.work_date = fx_rates.rate_date
    where engagements.erp_project_id is not null or not engagements.is_billable
),

posting_checks as (
    select
        case
            when postings.psa_time_entry_id is null then 'time_not_posted'
            when postings.postings > 1 then 'time_posted_twice'
            else 'time_hours_mismatch'
        end as exception_type,
        judged_entries.record_ref,
        judged_entries.engagement_id,
        judged_entries.engagement_client_id as client_id,
        case
            when postings.psa_time_entry_id is null then cast(judged_entries.hours as varchar)
            when postings.postings > 1 then '1'
            else cast(judged_entries.hours as varchar)
        end as expected_value,
        case
            when postings.psa_time_entry_id is null then null
            when postings.postings > 1 then cast(postings.postings as varchar)
            else cast(postings.posted_hours as varchar)
        end as actual_value,
        case
            when postings.psa_time_entry_id is null
                then judged_entries.wide_hours * judged_entries.wide_bill_rate
            when postings.postings > 1
                then
                    (postings.postings - 1) * judged_entries.wide_hours
                    * judged_entries.wide_bill_rate
            else
                abs(judged_entries.wide_hours - postings.posted_hours)
                * judged_entries.wide_bill_rate
        end * judged_entries.rate_to_reporting as amount_at_risk
    from judged_entries
    left join postings
        on judged_entries.psa_time_entry_id = postings.psa_time_entry_id
    where
        (
            postings.psa_time_entry_id is null
            and judged_entries.is_approved
            and judged_entries.is_billable
            and judged_entries.work_date <= {{ as_of_date() }} - {{ var('posting_grace_days') }}
        )
        or postings.postings > 1
        or (postings.postings = 1 and postings.posted_hours <> judged_entries.hours)
),

closed_period_checks as (
    select
        'time_in_closed_period' as exception_type,
        judged_entries.record_ref,
        judged_entries.engagement_id,
        judged_entries.engagement_client_id as client_id,
        cast(periods.closed_on_date as varchar) as expected_value,
        cast(judged_entries.updated_at as varchar) as actual_value,
        judged_entries.wide_hours * coalesce(judged_entries.wide_bill_rate, 0)
        * judged_entries.rate_to_reporting as amount_at_risk
    from judged_entries
    inner join periods
        on judged_entries.work_date between periods.start_date and periods.end_date
    where cast(judged_entries.updated_at as date) > periods.closed_on_date
),

closed_project_checks as (
    select
        'time_on_closed_project' as exception_type,
        record_ref,
        engagement_id,
        engagement_client_id as client_id,
        cast(engagement_end_date as varchar) as expected_value,
        cast(work_date as varchar) as actual_value,
        wide_hours * coalesce(wide_bill_rate, 0) * rate_to_reporting as amount_at_risk
    from judged_entries
    where
        is_mapped
        and engagement_status in ('closed', 'completed')
        and work_date > engagement_end_date
),

entries_with_card as (
    select
        record_ref,
        engagement_id,
        engagement_client_id as client_id,
        wide_hours,
        bill_rate,
        rate_to_reporting,
        card_rate
    from judged_entries
    where is_billable and is_mapped
),

rate_checks as (
    select
        'rate_mismatch' as exception_type,
        record_ref,
        engagement_id,
        client_id,
        cast(card_rate as varchar) as expected_value,
        cast(bill_rate as varchar) as actual_value,
        cast(abs(coalesce(card_rate, 0) - coalesce(bill_rate, 0)) as decimal(20, 6))
        * wide_hours * rate_to_reporting as amount_at_risk
    from entries_with_card
    where card_rate is null or card_rate <> coalesce(bill_rate, 0)
),

all_checks as (
    select * from posting_checks
    union all
    select * from closed_period_checks
    union all
    select * from closed_project_checks
    union all
    select * from rate_checks
)

select
    exception_type,
    record_ref,
    engagement_id,
    client_id,
    expected_value,
    actual_value,
    cast(round(amount_at_risk, 2) as decimal(18, 2)) as amount_at_risk_reporting,
    cast(null as varchar) as crm_object,
    cast(null as varchar) as crm_record_id,
    cast(null as varchar) as crm_property
from all_checks
