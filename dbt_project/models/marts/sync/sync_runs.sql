{#- One row per reverse-sync run (plan, apply, revert), newest first in the dashboard: what it
    planned, wrote, held, refused and failed, and the CRM calls it made. -#}
with

runs as (
    select
        run_id,
        plan_run_id,
        run_kind,
        run_status,
        actor,
        planned_count,
        held_count,
        refused_count,
        deferred_count,
        given_up_count,
        written_count,
        already_count,
        conflict_count,
        failed_count,
        write_calls_count,
        read_calls_count,
        started_at,
        finished_at
    from {{ ref('stg_pslake__sync_runs') }}
),

final as (
    select
        *,
        cast({{ dbt.datediff('started_at', 'finished_at', 'second') }} as integer)
            as duration_seconds
    from runs
)

select * from final
