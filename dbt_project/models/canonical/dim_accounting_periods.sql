with

periods as (
    select
        accounting_period_id,
        record_ref,
        period_name,
        start_date,
        end_date,
        closed_on_date,
        is_closed,
        is_posting,
        is_quarter,
        is_year,
        is_adjustment
    from {{ staged('erp', 'accounting_periods') }}
),

periods_typed as (
    select
        md5(record_ref) as accounting_period_id,
        accounting_period_id as erp_accounting_period_id,
        record_ref,
        period_name,
        case
            when is_year then 'year'
            when is_quarter then 'quarter'
            when is_adjustment then 'adjustment'
            else 'month'
        end as period_type,
        start_date,
        end_date,
        closed_on_date,
        -- closed as of the run's date: the ERP's flag, or a close date already passed
        coalesce(is_closed, false)
        or coalesce(closed_on_date < {{ as_of_date() }}, false) as is_closed,
        coalesce(is_posting, false) as is_posting
    from periods
)

select * from periods_typed
