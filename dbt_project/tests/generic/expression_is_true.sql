{#- Fails when a row breaks a rule its columns must obey, e.g. `hours >= 0`, an end date before
    its start, an amount that does not add up (`invoice_amount = net_amount + tax_amount`).

    Returns the rows where `expression` is false. Like a SQL `check` constraint, a row where the
    expression is null passes: pair it with `not_null` where null is wrong too. Given on a column,
    the expression is appended to the column (`expression: ">= 0"`); given on a model, it is a
    whole predicate. dbt's `where` config narrows the rows checked. -#}
{% test expression_is_true(model, expression, column_name=none) %}

    select *
    from {{ model }}
    where not ({{ column_name ~ ' ' if column_name is not none else '' }}{{ expression }})

{% endtest %}
