with

source as (

    select * from ({{ exported_rows(
        'reverse_sync', 'runs',
        {'run_id': 'varchar', 'kind': 'varchar', 'plan_run_id': 'varchar',
         'started_at': 'varchar', 'finished_at': 'varchar', 'status': 'varchar',
         'actor': 'varchar', 'summary': 'varchar'}
    ) }}) as loaded

),

renamed as (

    select
        ---------- ids
        run_id,
        plan_run_id,

        ---------- strings
        'pslake' as source_system,
        kind as run_kind,
        status as run_status,
        actor,

        ---------- numerics (the run's counts; absent counts are 0)
        cast(coalesce({{ json_field('summary', 'planned') }}, '0') as integer) as planned_count,
        cast(coalesce({{ json_field('summary', 'held') }}, '0') as integer) as held_count,
        cast(coalesce({{ json_field('summary', 'refused') }}, '0') as integer) as refused_count,
        cast(coalesce({{ json_field('summary', 'deferred') }}, '0') as integer) as deferred_count,
        cast(coalesce({{ json_field('summary', 'given_up') }}, '0') as integer) as given_up_count,
        cast(coalesce({{ json_field('summary', 'written') }}, '0') as integer) as written_count,
        cast(coalesce({{ json_field('summary', 'already') }}, '0') as integer) as already_count,
        cast(coalesce({{ json_field('summary', 'conflict') }}, '0') as integer) as conflict_count,
        cast(coalesce({{ json_field('summary', 'failed') }}, '0') as integer) as failed_count,
        cast(coalesce({{ json_field('summary', 'write_calls') }}, '0') as integer)
            as write_calls_count,
        cast(coalesce({{ json_field('summary', 'read_calls') }}, '0') as integer)
            as read_calls_count,

        ---------- timestamps
        cast(started_at as timestamptz) as started_at,
        cast(finished_at as timestamptz) as finished_at

    from source

)

select * from renamed
