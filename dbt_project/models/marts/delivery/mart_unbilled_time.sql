{#- One row per approved billable time entry on a time-and-materials engagement that no invoice
    has billed yet (no ERP posting of it is on a live invoice; time not posted at all counts
    too), valued at the contracted rate, aged at the run's as-of date. Fixed-fee, milestone and
    retainer time is never billed by the hour: its unbilled value is WIP
    (mart_wip_by_engagement). Time on a PSA project the ERP does not know has no billing model
    to judge it by: the reconciliation reports it (project_code_unmapped). -#}
with

int_time_entries_valued_at_rate_card as (
    select
        time_entry_id,
        record_ref,
        resource_id,
        engagement_id,
        client_id,
        legal_entity_id,
        practice_name,
        work_date,
        hours,
        bill_rate,
        contracted_rate,
        contracted_amount,
        currency_code,
        is_posted
    from {{ ref('int_time_entries_valued_at_rate_card') }}
    where
        hour_category = 'billable'
        and is_approved
        and not is_invoiced
        and billing_model = 'time_and_materials'
),

fct_fx_rates as (
    select
        currency_code,
        rate_to_reporting
    from {{ ref('fct_fx_rates') }}
    where rate_date = {{ as_of_date() }}
),

entries_aged as (
    select
        int_time_entries_valued_at_rate_card.*,
        {{ dbt.datediff('int_time_entries_valued_at_rate_card.work_date', as_of_date(), 'day') }}
            as age_days,
        fct_fx_rates.rate_to_reporting
    from int_time_entries_valued_at_rate_card
    left join fct_fx_rates
        on int_time_entries_valued_at_rate_card.currency_code = fct_fx_rates.currency_code
),

final as (
    select
        time_entry_id,
        record_ref,
        resource_id,
        engagement_id,
        client_id,
        legal_entity_id,
        practice_name,
        work_date,
        cast(hours as decimal(12, 2)) as hours,
        bill_rate,
        contracted_rate,
        currency_code,
        cast(contracted_amount as decimal(18, 2)) as unbilled_amount,
        rate_to_reporting,
        cast(round(contracted_amount * rate_to_reporting, 2) as decimal(18, 2))
            as unbilled_amount_reporting,
        is_posted,
        cast(age_days as integer) as age_days,
        case
            when age_days <= 30 then '0-30'
            when age_days <= 60 then '31-60'
            when age_days <= 90 then '61-90'
            else '90+'
        end as age_bucket
    from entries_aged
)

select * from final
