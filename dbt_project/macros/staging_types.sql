{#- Typing helpers for staging models (the JSON ones are in portable.sql). -#}

{#- NetSuite's booleans are the text 'T'/'F'; anything else (or null) is null. -#}
{% macro netsuite_boolean(column) -%}
    case {{ column }} when 'T' then true when 'F' then false end
{%- endmacro %}
