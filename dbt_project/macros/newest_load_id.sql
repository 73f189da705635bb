{#- The newer of two dlt load ids (`a` never null, `b` may be): the load in which a fact's row
    last changed, its own load or the later one in which its deletion was found. dlt load ids
    are epoch seconds as text, so they compare as numbers. -#}
{% macro newest_load_id(a, b) -%}
    case
        when
            {{ b }} is not null
            and cast({{ b }} as double precision) > cast({{ a }} as double precision)
            then {{ b }}
        else {{ a }}
    end
{%- endmacro %}
