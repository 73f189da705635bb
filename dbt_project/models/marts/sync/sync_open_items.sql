{#- One row per reverse-sync item that needs a person: a change of the latest plan held for
    approval, a conflict (someone edited a field after the plan read it), or a dead letter
    still retrying or given up (past the retry limit: an exception on the dashboard). -#}
with

changes as (
    select
        change_id,
        crm_object,
        record_key,
        crm_property,
        current_value,
        desired_value,
        change_status,
        coalesce(detail, decision_rule) as detail,
        updated_at
    from {{ ref('stg_pslake__sync_changes') }}
    where change_status in ('held', 'conflict')
),

dead_letters as (
    select
        change_id,
        crm_object,
        record_key,
        crm_property,
        desired_value,
        dead_letter_state,
        failure_reason,
        attempts,
        last_failed_at
    from {{ ref('stg_pslake__sync_dead_letters') }}
    where dead_letter_state in ('retrying', 'given_up')
),

items as (
    select
        change_id,
        case change_status
            when 'held' then 'approval_waiting'
            else 'conflict'
        end as item_type,
        crm_object,
        record_key,
        crm_property,
        current_value,
        desired_value,
        detail,
        cast(null as integer) as attempts,
        updated_at as seen_at
    from changes
    union all
    select
        change_id,
        case dead_letter_state
            when 'given_up' then 'write_given_up'
            else 'write_retrying'
        end as item_type,
        crm_object,
        record_key,
        crm_property,
        cast(null as varchar) as current_value,
        desired_value,
        failure_reason as detail,
        attempts,
        last_failed_at as seen_at
    from dead_letters
)

select * from items
