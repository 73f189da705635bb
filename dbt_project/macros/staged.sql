{#- The staging model of whichever system plays `role` (var `systems`): canonical models read
    `{{ staged('psa', 'time_entries') }}` and never name a vendor. -#}
{% macro staged(role, object) -%}
    {{ ref('stg_' ~ var('systems')[role] ~ '__' ~ object) }}
{%- endmacro %}
