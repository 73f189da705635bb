{#- The rate cards in force for time entries (DECISIONLOG: billable work is valued at the
    contracted rate): `client_card`, the client's card for the entry's role and date, and
    `standard_card`, the entity's standard card for them. The caller takes
    `coalesce(client_card.bill_rate, standard_card.bill_rate)`. `entries` needs `role_name` and
    `work_date` and the named client and entity columns; `cards` the columns of dim_rate_cards,
    inactive cards already left out. -#}
{% macro join_rate_cards_in_force(entries, cards, client_column, entity_column) -%}
    left join {{ cards }} as client_card
        on
            not client_card.is_standard_card
            and {{ entries }}.{{ client_column }} = client_card.client_id
            and {{ entries }}.role_name = client_card.role_name
            and {{ entries }}.work_date >= client_card.effective_from
            and {{ entries }}.work_date
            <= coalesce(client_card.effective_to, cast('9999-12-31' as date))
    left join {{ cards }} as standard_card
        on
            standard_card.is_standard_card
            and {{ entries }}.{{ entity_column }} = standard_card.legal_entity_id
            and {{ entries }}.role_name = standard_card.role_name
            and {{ entries }}.work_date >= standard_card.effective_from
            and {{ entries }}.work_date
            <= coalesce(standard_card.effective_to, cast('9999-12-31' as date))
{%- endmacro %}
