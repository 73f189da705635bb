{#- SQL that DuckDB spells differently from other warehouses, one macro each, through
    `adapter.dispatch` (DESIGN.md: the models run on another warehouse by changing the target).
    `duckdb__` is what the project runs on; `postgres__` is checked by the test suite against a
    real PostgreSQL server (tests/dbt/test_portability.py); `default__` is the SQL standard
    where there is one, else the form most warehouses share. -#}


{#- `expression` as `type`, or null when the text does not read as one (a CRM property typed by
    hand). Types: decimal(p, s), bigint, integer, boolean. -#}
{% macro try_cast_as(expression, type) -%}
    {{ return(adapter.dispatch('try_cast_as', 'pslake')(expression, type)) }}
{%- endmacro %}

{% macro duckdb__try_cast_as(expression, type) -%}
    try_cast({{ expression }} as {{ type }})
{%- endmacro %}

{% macro postgres__try_cast_as(expression, type) -%}
    {%- set text = "trim(cast(" ~ expression ~ " as varchar))" -%}
    {%- if type | lower == 'boolean' -%}
        case when lower({{ text }}) in ('true', 'false', 't', 'f', '1', '0', 'yes', 'no')
            then cast({{ text }} as boolean) end
    {%- elif (type | lower).startswith('decimal') or (type | lower).startswith('numeric') -%}
        case when {{ text }} ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$'
            then cast({{ text }} as {{ type }}) end
    {%- else -%}
        case when {{ text }} ~ '^[+-]?[0-9]{1,18}$' then cast({{ text }} as {{ type }}) end
    {%- endif -%}
{%- endmacro %}

{% macro default__try_cast_as(expression, type) -%}
    {{ dbt.safe_cast(expression, type) }}
{%- endmacro %}


{#- A top-level field of a JSON object held as text, as text (null when absent). -#}
{% macro json_field(column, field) -%}
    {{ return(adapter.dispatch('json_field', 'pslake')(column, field)) }}
{%- endmacro %}

{% macro duckdb__json_field(column, field) -%}
    json_extract_string({{ column }}, '$.{{ field }}')
{%- endmacro %}

{% macro postgres__json_field(column, field) -%}
    (cast({{ column }} as json) ->> '{{ field }}')
{%- endmacro %}

{% macro default__json_field(column, field) -%}
    json_value({{ column }}, '$.{{ field }}')
{%- endmacro %}


{#- The first element of a JSON list held as text (Harvest `users.roles`), as text. -#}
{% macro json_list_first(column) -%}
    {{ return(adapter.dispatch('json_list_first', 'pslake')(column)) }}
{%- endmacro %}

{% macro duckdb__json_list_first(column) -%}
    json_extract_string({{ column }}, '$[0]')
{%- endmacro %}

{% macro postgres__json_list_first(column) -%}
    (cast({{ column }} as json) ->> 0)
{%- endmacro %}

{% macro default__json_list_first(column) -%}
    json_value({{ column }}, '$[0]')
{%- endmacro %}


{#- A FROM item: one row per `step` ('day' or 'month') from `start` to `stop` (both included,
    dates), in column `column` of relation `alias`. -#}
{% macro date_series(start, stop, step, alias, column) -%}
    {{ return(adapter.dispatch('date_series', 'pslake')(start, stop, step, alias, column)) }}
{%- endmacro %}

{% macro default__date_series(start, stop, step, alias, column) -%}
    generate_series(
        cast({{ start }} as timestamp), cast({{ stop }} as timestamp), interval '1 {{ step }}'
    ) as {{ alias }} ({{ column }})
{%- endmacro %}

{% macro spark__date_series(start, stop, step, alias, column) -%}
    (
        select explode(sequence(
            cast({{ start }} as date), cast({{ stop }} as date), interval 1 {{ step }}
        )) as {{ column }}
    ) as {{ alias }}
{%- endmacro %}


{#- A whole number type wide enough for money in hundredths times a ratio in ten-thousandths. -#}
{% macro wide_integer() -%}
    {{ return(adapter.dispatch('wide_integer', 'pslake')()) }}
{%- endmacro %}

{% macro duckdb__wide_integer() -%}
    hugeint
{%- endmacro %}

{% macro default__wide_integer() -%}
    decimal(38, 0)
{%- endmacro %}


{#- `dividend` divided by `divisor`, both whole and not negative, rounded down to a whole number. -#}
{% macro integer_divide(dividend, divisor) -%}
    {{ return(adapter.dispatch('integer_divide', 'pslake')(dividend, divisor)) }}
{%- endmacro %}

{% macro duckdb__integer_divide(dividend, divisor) -%}
    ({{ dividend }}) // ({{ divisor }})
{%- endmacro %}

{% macro postgres__integer_divide(dividend, divisor) -%}
    div({{ dividend }}, {{ divisor }})
{%- endmacro %}

{% macro default__integer_divide(dividend, divisor) -%}
    floor(({{ dividend }}) / ({{ divisor }}))
{%- endmacro %}
