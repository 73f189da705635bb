{#- `amount` x `part` / `whole`, rounded half up (away from zero) to the cent, in integers.
    In DuckDB a decimal divided by a decimal is a DOUBLE, and a binary float rounds an exact
    half cent the wrong way (12,204.375 became 12,204.37). `amount` has at most 2 decimals,
    `part` and `whole` at most 4; `whole` must not be 0. -#}
{% macro exact_share(amount, part, whole) -%}
    cast(
        sign({{ amount }}) * (
            (
                2 * abs(cast(({{ amount }}) * 100 as hugeint))
                * cast(({{ part }}) * 10000 as hugeint)
                + cast(({{ whole }}) * 10000 as hugeint)
            ) // (2 * cast(({{ whole }}) * 10000 as hugeint))
        ) as decimal(38, 0)
    ) * cast(0.01 as decimal(3, 2))
{%- endmacro %}
