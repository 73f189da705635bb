{#- One row per open exception: a disagreement between the CRM, the PSA and the ERP found by
    this run, with its stable id, type, severity, record, expected vs actual, amount at risk,
    owner, resolution_action and when it was first seen. -#}
with

detected as (
    select * from {{ ref('int_exceptions_detected') }}
),

log as (
    select
        exception_id,
        first_seen_at,
        last_seen_at
    from {{ ref('rec_exception_log') }}
),

exceptions as (
    select
        detected.exception_id,
        detected.exception_type,
        detected.record_ref,
        detected.record_system,
        detected.severity,
        detected.systems,
        detected.owner_team,
        detected.resolution_action,
        detected.engagement_id,
        detected.client_id,
        detected.expected_value,
        detected.actual_value,
        detected.amount_at_risk_reporting,
        detected.crm_object,
        detected.crm_record_id,
        detected.crm_property,
        log.first_seen_at,
        log.last_seen_at
    from detected
    left join log
        on detected.exception_id = log.exception_id
)

select * from exceptions
