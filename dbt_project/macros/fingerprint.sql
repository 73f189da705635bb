{#- A text fingerprint of one row's `columns` (a list of SQL expressions): equal rows give equal
    fingerprints, a null differs from every value. md5 and concat_ws are in every warehouse dbt
    supports. Call it as a column of a select list (it renders indented for one). -#}
{% macro fingerprint(columns) -%}
    md5(concat_ws(
            '|'
            {%- for column in columns %},
            coalesce(cast({{ column }} as varchar), '<null>')
            {%- endfor %}
        ))
{%- endmacro %}

{#- A fingerprint of a set of rows (an aggregate) from their row fingerprints (`column`), in
    order, so it does not depend on the order the rows are read in. -#}
{% macro fingerprint_of_rows(column) -%}
    md5(coalesce(string_agg({{ column }}, ',' order by {{ column }}), ''))
{%- endmacro %}
