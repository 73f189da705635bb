{#- Fails when a model's grain is broken: two rows share the same combination of the key columns
    (a fan-out from a join, a load read twice), or a key column is null, since a null part makes
    the key meaningless (STYLE rule 13: this is the primary-key test of a model whose grain
    is several columns). `allow_nulls: true` keeps only the duplicate check.

    Returns one row per offending key with the number of rows that share it. -#}
{% test unique_combination_of_columns(model, combination_of_columns, allow_nulls=false) %}
    {%- if combination_of_columns is string or combination_of_columns | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            "unique_combination_of_columns: combination_of_columns must be a non-empty list of "
            ~ "column names, got '" ~ combination_of_columns ~ "'"
        ) }}
    {%- endif -%}
    {%- set key_columns = combination_of_columns | join(', ') %}

    with rows_per_key as (
        select
            {{ key_columns }},
            count(*) as row_count
        from {{ model }}
        group by {{ key_columns }}
    )

    select *
    from rows_per_key
    where
        row_count > 1
        {%- if not allow_nulls %}
            {%- for column in combination_of_columns %}
            or {{ column }} is null
            {%- endfor %}
        {%- endif %}

{% endtest %}
