{#- One row per resource per day: every weekday the person was employed (hire to release date,
    both included) from the first month the PSA has time for to the day before the as-of date,
    and any other day they logged time. Capacity is the standard day (weekly capacity / 5, so
    FTE is already in it) on a weekday that is not a public holiday of the entity's country;
    hours are summed by category (DECISIONLOG: capacity). -#}
with

int_time_entries_valued_at_rate_card as (
    select
        resource_id,
        work_date,
        hour_category,
        hours
    from {{ ref('int_time_entries_valued_at_rate_card') }}
),

dim_resources as (
    select
        resource_id,
        legal_entity_id,
        weekly_capacity_hours,
        hire_date,
        release_date
    from {{ ref('dim_resources') }}
),

dim_legal_entities as (
    select
        legal_entity_id,
        country_code
    from {{ ref('dim_legal_entities') }}
),

public_holidays as (
    select
        country_code,
        holiday_date
    from {{ ref('public_holidays') }}
),

calendar as (
    select cast(calendar_days.calendar_day as date) as calendar_date
    from {{ date_series(
        '(select cast(' ~ dbt.date_trunc('month', 'min(work_date)') ~ ' as date)'
        ~ ' from int_time_entries_valued_at_rate_card)',
        as_of_date() ~ ' - 1', 'day', 'calendar_days', 'calendar_day'
    ) }}
),

-- ISO day of week: 1 Monday .. 7 Sunday
employed_weekdays as (
    select
        dim_resources.resource_id,
        calendar.calendar_date as work_date,
        cast(dim_resources.weekly_capacity_hours / 5 as decimal(12, 4)) as standard_day_hours,
        dim_legal_entities.country_code
    from dim_resources
    cross join calendar
    left join dim_legal_entities
        on dim_resources.legal_entity_id = dim_legal_entities.legal_entity_id
    where
        extract(isodow from calendar.calendar_date) <= 5
        and calendar.calendar_date >= coalesce(dim_resources.hire_date, calendar.calendar_date)
        and calendar.calendar_date <= coalesce(dim_resources.release_date, calendar.calendar_date)
),

weekdays_with_capacity as (
    select
        employed_weekdays.resource_id,
        employed_weekdays.work_date,
        public_holidays.holiday_date is not null as is_public_holiday,
        case
            when public_holidays.holiday_date is null then employed_weekdays.standard_day_hours
            else 0
        end as capacity_hours
    from employed_weekdays
    left join public_holidays
        on
            employed_weekdays.country_code = public_holidays.country_code
            and employed_weekdays.work_date = public_holidays.holiday_date
),

hours_by_day as (
    select
        resource_id,
        work_date,
        sum(case when hour_category = 'billable' then hours else 0 end) as billable_hours,
        sum(case when hour_category = 'non_billable_client' then hours else 0 end)
            as non_billable_client_hours,
        sum(case when hour_category = 'internal' then hours else 0 end) as internal_hours,
        sum(case when hour_category = 'pto' then hours else 0 end) as pto_hours,
        sum(hours) as total_hours
    from int_time_entries_valued_at_rate_card
    group by 1, 2
),

days_joined as (
    select
        coalesce(weekdays_with_capacity.resource_id, hours_by_day.resource_id) as resource_id,
        coalesce(weekdays_with_capacity.work_date, hours_by_day.work_date) as work_date,
        weekdays_with_capacity.resource_id is not null as is_employed_weekday,
        coalesce(weekdays_with_capacity.is_public_holiday, false) as is_public_holiday,
        cast(coalesce(weekdays_with_capacity.capacity_hours, 0) as decimal(12, 4))
            as capacity_hours,
        cast(coalesce(hours_by_day.billable_hours, 0) as decimal(12, 4)) as billable_hours,
        cast(coalesce(hours_by_day.non_billable_client_hours, 0) as decimal(12, 4))
            as non_billable_client_hours,
        cast(coalesce(hours_by_day.internal_hours, 0) as decimal(12, 4)) as internal_hours,
        cast(coalesce(hours_by_day.pto_hours, 0) as decimal(12, 4)) as pto_hours,
        cast(coalesce(hours_by_day.total_hours, 0) as decimal(12, 4)) as total_hours
    from weekdays_with_capacity
    full outer join hours_by_day
        on
            weekdays_with_capacity.resource_id = hours_by_day.resource_id
            and weekdays_with_capacity.work_date = hours_by_day.work_date
)

select * from days_joined
