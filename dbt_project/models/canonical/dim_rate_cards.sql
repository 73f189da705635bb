{#- One row per rate card line: the bill rate of a role in a legal entity (standard card) or for
    one client (client card) over a date range. -#}
with

rate_cards as (
    select
        rate_card_id,
        subsidiary_id,
        customer_id,
        currency_id,
        record_ref,
        role_name,
        bill_rate,
        effective_from_date,
        effective_to_date,
        is_inactive
    from {{ staged('erp', 'rate_cards') }}
),

client_map as (
    select
        client_id,
        system_record_id
    from {{ ref('map_client_ids') }}
    where system_role = 'erp'
),

legal_entities as (
    select
        legal_entity_id,
        erp_subsidiary_id
    from {{ ref('dim_legal_entities') }}
),

currencies as (
    select
        currency_id,
        currency_code
    from {{ staged('erp', 'currencies') }}
),

rate_cards_resolved as (
    select
        md5(rate_cards.record_ref) as rate_card_id,
        rate_cards.record_ref,
        legal_entities.legal_entity_id,
        client_map.client_id,
        rate_cards.customer_id as erp_customer_id,
        rate_cards.subsidiary_id as erp_subsidiary_id,
        rate_cards.role_name,
        currencies.currency_code,
        cast(rate_cards.bill_rate as decimal(18, 6)) as bill_rate,
        rate_cards.effective_from_date as effective_from,
        rate_cards.effective_to_date as effective_to,
        rate_cards.customer_id is null as is_standard_card,
        coalesce(rate_cards.is_inactive, false) as is_inactive
    from rate_cards
    left join client_map
        on rate_cards.customer_id = client_map.system_record_id
    left join legal_entities
        on rate_cards.subsidiary_id = legal_entities.erp_subsidiary_id
    left join currencies
        on rate_cards.currency_id = currencies.currency_id
)

select * from rate_cards_resolved
