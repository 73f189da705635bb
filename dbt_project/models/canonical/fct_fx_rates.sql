{#- Daily rates to the reporting currency: the ERP publishes weekday rates; a day without one
    takes the latest rate before it (sandbox README, FX). -#}
with

rates as (
    select
        base_currency_id,
        transaction_currency_id,
        exchange_rate,
        effective_date
    from {{ staged('erp', 'currency_rates') }}
),

currencies as (
    select
        currency_id,
        currency_code
    from {{ staged('erp', 'currencies') }}
),

rates_to_reporting as (
    select
        quoted.currency_code,
        rates.effective_date,
        rates.exchange_rate
    from rates
    inner join currencies as base
        on rates.base_currency_id = base.currency_id
    inner join currencies as quoted
        on rates.transaction_currency_id = quoted.currency_id
    where base.currency_code = '{{ var("reporting_currency") }}'
),

calendar as (
    select cast(calendar_days.calendar_day as date) as rate_date
    from {{ date_series(
        '(select min(effective_date) from rates_to_reporting)', as_of_date(), 'day',
        'calendar_days', 'calendar_day'
    ) }}
),

quoted_currencies as (
    select distinct currency_code from rates_to_reporting
),

days_with_latest_rate as (
    select
        quoted_currencies.currency_code,
        calendar.rate_date,
        (
            select latest.exchange_rate
            from rates_to_reporting as latest
            where
                latest.currency_code = quoted_currencies.currency_code
                and latest.effective_date <= calendar.rate_date
            order by latest.effective_date desc  -- noqa: AM06
            limit 1
        ) as rate_to_reporting
    from quoted_currencies
    cross join calendar
),

reporting_currency_days as (
    select
        '{{ var("reporting_currency") }}' as currency_code,
        rate_date,
        cast(1 as decimal(18, 6)) as rate_to_reporting
    from calendar
),

all_days as (
    select
        currency_code,
        rate_date,
        cast(rate_to_reporting as decimal(18, 6)) as rate_to_reporting
    from days_with_latest_rate
    where rate_to_reporting is not null
    union all
    select * from reporting_currency_days
)

select * from all_days
