{#- The margin figures of a margin mart, from monthly sums of an engagement-level margin
    (approved_hours, recognised_revenue, labour_cost_amount, expense_cost_amount, cost_amount,
    their _to_date and _reporting sums): money cast once to decimal(18, 2), margin % exact to 4
    decimals, null when there is no revenue. Shared by the client, entity and practice margin
    marts. -#}
{% macro margin_figures() -%}
        cast(approved_hours as decimal(12, 2)) as approved_hours,
        cast(recognised_revenue as decimal(18, 2)) as recognised_revenue,
        cast(labour_cost_amount as decimal(18, 2)) as labour_cost_amount,
        cast(expense_cost_amount as decimal(18, 2)) as expense_cost_amount,
        cast(cost_amount as decimal(18, 2)) as cost_amount,
        cast(recognised_revenue - cost_amount as decimal(18, 2)) as margin_amount,
        cast({{ exact_ratio('recognised_revenue - cost_amount', 'recognised_revenue') }}
            as decimal(18, 4)) as margin_pct,
        cast(recognised_revenue_to_date as decimal(18, 2)) as recognised_revenue_to_date,
        cast(cost_amount_to_date as decimal(18, 2)) as cost_amount_to_date,
        cast(recognised_revenue_to_date - cost_amount_to_date as decimal(18, 2))
            as margin_amount_to_date,
        cast({{ exact_ratio(
            'recognised_revenue_to_date - cost_amount_to_date', 'recognised_revenue_to_date'
        ) }} as decimal(18, 4)) as margin_pct_to_date,
        cast(recognised_revenue_reporting as decimal(18, 2)) as recognised_revenue_reporting,
        cast(cost_amount_reporting as decimal(18, 2)) as cost_amount_reporting,
        cast(recognised_revenue_reporting - cost_amount_reporting as decimal(18, 2))
            as margin_amount_reporting,
        cast(recognised_revenue_to_date_reporting as decimal(18, 2))
            as recognised_revenue_to_date_reporting,
        cast(cost_amount_to_date_reporting as decimal(18, 2)) as cost_amount_to_date_reporting,
        cast(
            recognised_revenue_to_date_reporting - cost_amount_to_date_reporting
            as decimal(18, 2)
        ) as margin_amount_to_date_reporting
{%- endmacro %}
