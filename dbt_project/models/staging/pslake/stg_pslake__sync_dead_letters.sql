with

source as (

    select * from ({{ exported_rows(
        'reverse_sync', 'dead_letters',
        {'change_id': 'varchar', 'object': 'varchar', 'record_key': 'varchar',
         'crm_id': 'varchar', 'field': 'varchar', 'desired_value': 'varchar',
         'reason': 'varchar', 'http_status': 'bigint', 'attempts': 'bigint',
         'first_failed_at': 'varchar', 'last_failed_at': 'varchar',
         'next_attempt_at': 'varchar', 'state': 'varchar', 'run_id': 'varchar'}
    ) }}) as loaded

),

renamed as (

    select
        ---------- ids
        change_id,
        record_key,
        crm_id as crm_record_id,
        run_id as last_run_id,

        ---------- strings
        'pslake' as source_system,
        object as crm_object,
        field as crm_property,
        desired_value,
        reason as failure_reason,
        state as dead_letter_state,

        ---------- numerics
        cast(http_status as integer) as http_status,
        cast(attempts as integer) as attempts,

        ---------- timestamps
        cast(first_failed_at as timestamptz) as first_failed_at,
        cast(last_failed_at as timestamptz) as last_failed_at,
        cast(next_attempt_at as timestamptz) as next_attempt_at

    from source

)

select * from renamed
