-- Fails when a month offset and a day offset computed in one SELECT come out wrong: DuckDB 2.0
-- takes `interval 30 day` for `interval 1 month` (the two compare equal) when both sit in one
-- SELECT, so 2026-01-31 + interval 30 day gave 2026-02-28. The models write day offsets as
-- `d + 30` and never mix the two intervals in one SELECT; this test checks that this form and
-- the month offset are still right on a known date (2026-01-31: +1 month = 2026-02-28, +30
-- days = 2026-03-02). A DuckDB defect: on another warehouse the test does not run.
{{ config(enabled=target.type == 'duckdb') }}

with

known_date as (
    select cast('2026-01-31' as date) as d
),

offsets as (
    select
        cast(d + interval 1 month as date) as plus_one_month,
        d + 30 as plus_30_days
    from known_date
)

select *
from offsets
where
    plus_one_month <> cast('2026-02-28' as date)
    or plus_30_days <> cast('2026-03-02' as date)
