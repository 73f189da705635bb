{#- The rows of a raw table that belong to complete loads (DESIGN.md, loading rules): dlt writes
    a load's id to the dataset's `_dlt_loads` with status 0 only once every table of the load is
    in, so rows of a load that failed half-way are not read.

    `empty_columns` ({name: type}) is for tables dlt creates only when they get a first row (the
    quarantine, Harvest's `deleted_records`): while the table does not exist, the model reads as
    empty with those columns instead of failing. -#}
{% macro loaded_rows(source_name, table_name, empty_columns=none) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if empty_columns is none or relation_exists(relation) -%}
        select * from {{ relation }}
        where _dlt_load_id in (
            select load_id from {{ relation.database }}.{{ relation.schema }}._dlt_loads
            where status = 0
        )
    {%- else -%}
        select
        {%- for name, type in empty_columns.items() %}
            cast(null as {{ type }}) as {{ name }},
        {%- endfor %}
            cast(null as varchar) as _dlt_load_id,
            cast(null as varchar) as _dlt_id
        where false
    {%- endif -%}
{%- endmacro %}


{#- Whether a relation is in the warehouse (always true while dbt parses, when nothing runs). -#}
{% macro relation_exists(relation) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {{ return(adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) is not none) }}
{%- endmacro %}
