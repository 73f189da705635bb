{#- One row per exception this run detects: the record-level time checks and the master-data
    checks, with a stable id, and the resolution_action the field-ownership matrix allows. -#}
with

time_checks as (
    select * from {{ ref('int_time_entries_checked') }}
),

master_data_checks as (
    select * from {{ ref('int_master_data_checked') }}
),

exception_types as (
    select
        exception_type,
        severity,
        systems,
        owner_team,
        default_action
    from {{ ref('exception_types') }}
),

field_ownership as (
    select
        crm_object,
        crm_property,
        pslake_writes
    from {{ ref('field_ownership') }}
),

detected as (
    select * from time_checks
    union all
    select * from master_data_checks
),

detected_with_action as (
    select
        md5(detected.exception_type || '|' || detected.record_ref) as exception_id,
        detected.exception_type,
        detected.record_ref,
        split_part(detected.record_ref, ':', 1) as record_system,
        exception_types.severity,
        exception_types.systems,
        exception_types.owner_team,
        detected.engagement_id,
        detected.client_id,
        detected.expected_value,
        detected.actual_value,
        detected.amount_at_risk_reporting,
        detected.crm_object,
        detected.crm_record_id,
        detected.crm_property,
        case
            when field_ownership.pslake_writes = 'auto' then 'auto_correct'
            when field_ownership.pslake_writes = 'always_approve' then 'needs_approval'
            when field_ownership.pslake_writes = 'never' then 'manual'
            else coalesce(exception_types.default_action, 'manual')
        end as resolution_action
    from detected
    left join exception_types
        on detected.exception_type = exception_types.exception_type
    left join field_ownership
        on
            detected.crm_object = field_ownership.crm_object
            and detected.crm_property = field_ownership.crm_property
)

select * from detected_with_action
