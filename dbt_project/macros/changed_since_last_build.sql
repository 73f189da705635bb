{#- The body of an incremental fact's `changed` CTE: on a full build every row of `rows`; on an
    incremental one the rows of the loads after the newest load the model holds (less
    `incremental_lookback_hours`, 0 by default), and the rows whose deletion (`deletions`:
    record_id, _dlt_load_id) was found in those loads, so a deletion flags its row even when the
    row itself is older (DECISIONLOG: "Incremental facts read the loads they have not seen").
    `key` is the column of `rows` that `deletions.record_id` names. -#}
{% macro changed_since_last_build(rows, key, deletions) -%}
    {%- if is_incremental() -%}
        {%- set load_after -%}
            select coalesce(max(cast(_dlt_load_id as double precision)), 0)
                - {{ var('incremental_lookback_hours') }} * 3600
            from {{ this }}
        {%- endset -%}
        select {{ rows }}.*
        from {{ rows }}
        where cast({{ rows }}._dlt_load_id as double precision) > ({{ load_after }})
        union
        select {{ rows }}.*
        from {{ rows }}
        inner join {{ deletions }}
            on {{ rows }}.{{ key }} = {{ deletions }}.record_id
        where cast({{ deletions }}._dlt_load_id as double precision) > ({{ load_after }})
    {%- else -%}
        select * from {{ rows }}
    {%- endif -%}
{%- endmacro %}
