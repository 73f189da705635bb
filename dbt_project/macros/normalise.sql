{#- Name and domain keys used to match records across and within systems (sandbox README,
    "Names are normalised"): lower case, every run of characters other than a-z0-9 becomes one
    space, legal-form words are dropped. -#}
{% macro normalised_name(column) -%}
    nullif(trim(regexp_replace(
        ' ' || regexp_replace(lower(coalesce({{ column }}, '')), '[^a-z0-9]+', ' ', 'g') || ' ',
        ' ((inc|llc|corp|ltd|plc|gmbh|ag|ulc|co|company|corporation|incorporated|limited) )+',
        ' ', 'g'
    )), '')
{%- endmacro %}

{% macro normalised_domain(column) -%}
    nullif(regexp_replace(
        regexp_replace(lower(trim(coalesce({{ column }}, ''))), '^(https?://)?(www\.)?', ''),
        '/.*$', ''
    ), '')
{%- endmacro %}
