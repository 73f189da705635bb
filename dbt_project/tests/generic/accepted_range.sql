{#- Fails when a value lies outside its possible range, e.g. negative hours, a utilization above
    3, a rate of 0, a date before the firm existed.

    Returns the rows where `column_name` lies below `min_value` or above `max_value` (either may be
    left out; bounds are literals or SQL expressions such as `current_date`). `inclusive: false`
    makes both bounds strict. A null value passes: pair it with `not_null` where null is wrong. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
    {%- if min_value is none and max_value is none -%}
        {{ exceptions.raise_compiler_error(
            "accepted_range on " ~ column_name ~ ": give min_value, max_value or both"
        ) }}
    {%- endif -%}
    {%- set comparison = '>=' if inclusive else '>' %}

    select *
    from {{ model }}
    where
        not (
            true
            {%- if min_value is not none %}
            and {{ column_name }} {{ comparison }} {{ min_value }}
            {%- endif %}
            {%- if max_value is not none %}
            and {{ max_value }} {{ comparison }} {{ column_name }}
            {%- endif %}
        )

{% endtest %}
