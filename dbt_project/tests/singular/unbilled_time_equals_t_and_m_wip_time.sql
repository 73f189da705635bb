-- Fails when the unbilled time mart and the WIP mart disagree on T&M time not yet invoiced: the
-- entries listed unbilled (entity currency) must add up, per engagement, to the unbilled time of
-- its WIP row for the month of the as-of date (both read approved billable T&M time at the
-- contracted rate, less what a live invoice billed).
with

unbilled as (
    select
        engagement_id,
        sum(unbilled_amount) as unbilled_amount
    from {{ ref('mart_unbilled_time') }}
    group by 1
),

wip as (
    select
        engagement_id,
        unbilled_time_amount
    from {{ ref('mart_wip_by_engagement') }}
    where is_latest_month and billing_model = 'time_and_materials'
)

select
    coalesce(unbilled.engagement_id, wip.engagement_id) as engagement_id,
    unbilled.unbilled_amount,
    wip.unbilled_time_amount
from unbilled
full outer join wip
    on unbilled.engagement_id = wip.engagement_id
where coalesce(unbilled.unbilled_amount, 0) <> coalesce(wip.unbilled_time_amount, 0)
