-- Fails when the AR ageing and the DSO disagree on what is owed at the as-of date: the ageing's
-- total due (reporting currency) must equal the DSO mart's AR, all entities, for the month of
-- the as-of date (both apply payments and credit memos up to that day at that day's rate).
with

ageing as (
    select coalesce(sum(amount_due_reporting), 0) as amount_due_reporting
    from {{ ref('mart_ar_ageing') }}
),

dso as (
    select coalesce(sum(ar_balance_reporting), 0) as ar_balance_reporting
    from {{ ref('mart_dso_monthly') }}
    where
        is_all_entities
        and measured_on_date = {{ as_of_date() }}
)

select
    ageing.amount_due_reporting,
    dso.ar_balance_reporting
from ageing
cross join dso
where ageing.amount_due_reporting <> dso.ar_balance_reporting
