{#- The date the run judges at: var `as_of` when set, else today in UTC. -#}
{% macro as_of_date() -%}
    {%- if var('as_of') -%}
        cast('{{ var("as_of") }}' as date)
    {%- else -%}
        cast(current_date as date)
    {%- endif -%}
{%- endmacro %}
