{#- Typing helpers for staging models: one definition each, so a second warehouse changes them in
    one place (DESIGN.md, portable models). -#}

{#- NetSuite's booleans are the text 'T'/'F'; anything else (or null) is null. -#}
{% macro netsuite_boolean(column) -%}
    case {{ column }} when 'T' then true when 'F' then false end
{%- endmacro %}

{#- The first element of a JSON list held as text (Harvest `users.roles`), as text. -#}
{% macro json_list_first(column) -%}
    json_extract_string({{ column }}, '$[0]')
{%- endmacro %}

{#- A top-level field of a JSON object held as text, as text (null when absent). -#}
{% macro json_field(column, field) -%}
    json_extract_string({{ column }}, '$.{{ field }}')
{%- endmacro %}
