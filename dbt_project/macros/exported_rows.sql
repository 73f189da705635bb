{#- The rows of a table pslake itself exports into the warehouse before dbt runs (the reverse
    sync's journal, `raw_reverse_sync`), or no rows with `empty_columns` ({name: type}) while
    the table does not exist yet (a warehouse built by dbt directly, not by `pslake transform`). -#}
{% macro exported_rows(source_name, table_name, empty_columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if relation_exists(relation) -%}
        select * from {{ relation }}
    {%- else -%}
        select
        {%- for name, type in empty_columns.items() %}
            cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
        where false
    {%- endif -%}
{%- endmacro %}
