with

source as (

    select * from ({{ exported_rows(
        'reverse_sync', 'changes',
        {'run_id': 'varchar', 'change_id': 'varchar', 'object': 'varchar',
         'record_key': 'varchar', 'crm_id': 'varchar', 'field': 'varchar',
         'current_value': 'varchar', 'desired_value': 'varchar', 'reason': 'varchar',
         'decision': 'varchar', 'rule': 'varchar', 'status': 'varchar', 'detail': 'varchar',
         'updated_at': 'varchar'}
    ) }}) as loaded

),

renamed as (

    select
        ---------- ids
        change_id,
        run_id as plan_run_id,
        record_key,
        crm_id as crm_record_id,

        ---------- strings
        'pslake' as source_system,
        object as crm_object,
        field as crm_property,
        current_value,
        desired_value,
        reason,
        decision,
        rule as decision_rule,
        status as change_status,
        detail,

        ---------- timestamps
        cast(updated_at as timestamptz) as updated_at

    from source

)

select * from renamed
