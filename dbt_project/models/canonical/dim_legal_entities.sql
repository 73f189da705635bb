with

subsidiaries as (
    select
        subsidiary_id,
        parent_subsidiary_id,
        currency_id,
        record_ref,
        subsidiary_name,
        legal_name,
        country,
        is_elimination,
        is_inactive
    from {{ staged('erp', 'subsidiaries') }}
),

currencies as (
    select
        currency_id,
        currency_code
    from {{ staged('erp', 'currencies') }}
),

subsidiaries_with_currency as (
    select
        md5(subsidiaries.record_ref) as legal_entity_id,
        subsidiaries.subsidiary_id as erp_subsidiary_id,
        subsidiaries.record_ref,
        subsidiaries.subsidiary_name as legal_entity_name,
        subsidiaries.legal_name,
        subsidiaries.country as country_code,
        currencies.currency_code,
        subsidiaries.parent_subsidiary_id is null as is_group,
        subsidiaries.is_elimination,
        subsidiaries.is_inactive
    from subsidiaries
    left join currencies
        on subsidiaries.currency_id = currencies.currency_id
)

select * from subsidiaries_with_currency
