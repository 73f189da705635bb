{{ config(
    materialized='incremental',
    unique_key='exception_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}
{#- One row per exception ever detected: when it was first and last seen. Kept across runs (an
    incremental model), so an exception's age survives a rebuild of everything else. -#}
with

-- typed as the contract says: a warehouse whose md5() returns another text type would see the
-- incremental table's columns change type (on_schema_change: fail)
detected as (
    select
        cast(exception_id as varchar) as exception_id,
        cast(exception_type as varchar) as exception_type,
        cast(record_ref as varchar) as record_ref
    from {{ ref('int_exceptions_detected') }}
),

{% if is_incremental() %}
    known as (
        select
            exception_id,
            first_seen_at
        from {{ this }}
    ),
{% endif %}

seen as (
    select
        detected.exception_id,
        detected.exception_type,
        detected.record_ref,
        {% if is_incremental() %}
            coalesce(known.first_seen_at, cast('{{ run_started_at.isoformat() }}' as timestamptz))
        {% else %}
        cast('{{ run_started_at.isoformat() }}' as timestamptz)
        {% endif %} as first_seen_at,
        cast('{{ run_started_at.isoformat() }}' as timestamptz) as last_seen_at
    from detected
    {% if is_incremental() %}
        left join known
            on detected.exception_id = known.exception_id
    {% endif %}
)

select * from seen
