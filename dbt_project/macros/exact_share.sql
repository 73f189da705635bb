{#- `amount` x `part` / `whole`, rounded half up (away from zero) to the cent, in integers.
    In DuckDB a decimal divided by a decimal is a DOUBLE, and a binary float rounds an exact
    half cent the wrong way (12,204.375 became 12,204.37). `amount` has at most 2 decimals,
    `part` and `whole` at most 4; `whole` must not be 0. -#}
{% macro exact_share(amount, part, whole) -%}
    cast(
        sign({{ amount }}) * (
            {{ integer_divide(
                '2 * abs(cast((' ~ amount ~ ') * 100 as ' ~ wide_integer() ~ '))'
                ~ ' * cast((' ~ part ~ ') * 10000 as ' ~ wide_integer() ~ ')'
                ~ ' + cast((' ~ whole ~ ') * 10000 as ' ~ wide_integer() ~ ')',
                '2 * cast((' ~ whole ~ ') * 10000 as ' ~ wide_integer() ~ ')'
            ) }}
        ) as decimal(38, 0)
    ) * cast(0.01 as decimal(3, 2))
{%- endmacro %}


{#- `numerator` / `denominator` rounded half up (away from zero) to `digits` decimals, in whole
    numbers for the same reason as `exact_share`: a double rounds 1.4 / 160 = 0.00875 down to
    0.0087. Both have at most 4 decimals (hours, money); null when `denominator` is 0 or null.
    The result is a decimal with `digits` decimals. -#}
{% macro exact_ratio(numerator, denominator, digits=4) -%}
    {%- set n = 'abs(cast((' ~ numerator ~ ') * 10000 as ' ~ wide_integer() ~ '))' -%}
    {%- set d = 'abs(cast((' ~ denominator ~ ') * 10000 as ' ~ wide_integer() ~ '))' -%}
    case
        when ({{ denominator }}) <> 0
            then
                sign({{ numerator }}) * sign({{ denominator }})
                * cast({{ integer_divide(
                    '2 * ' ~ n ~ ' * ' ~ (10 ** digits) ~ ' + ' ~ d, '2 * ' ~ d
                ) }} as decimal(38, 0))
                * cast({{ '0.' ~ '0' * (digits - 1) ~ '1' }} as decimal({{ digits + 1 }}, {{ digits }}))
    end
{%- endmacro %}
