{#- Groups of records that are the same party within one system: records are linked when they
    share a normalised name or a normalised domain, links are followed transitively, and the
    oldest record of each group (created first, then lowest id) survives.

    `relation` must have columns: record_id, name_key, domain_key, created_at.
    Returns one row per record: record_id, survivor_record_id, is_survivor, group_size. -#}
{% macro duplicate_groups(relation) -%}
    with recursive

    records as (
        select
            record_id,
            name_key,
            domain_key,
            row_number() over (
                order by created_at, {{ try_cast_as('record_id', 'bigint') }}, record_id
            ) as age_rank
        from {{ relation }}
    ),

    links as (
        select
            one.record_id as from_id,
            other.record_id as to_id
        from records as one
        inner join records as other
            on one.name_key = other.name_key
        where one.record_id <> other.record_id
        union
        select
            one.record_id as from_id,
            other.record_id as to_id
        from records as one
        inner join records as other
            on one.domain_key = other.domain_key
        where one.record_id <> other.record_id
    ),

    reachable (from_id, to_id) as (
        select
            record_id as from_id,
            record_id as to_id
        from records
        union
        select
            reachable.from_id,
            links.to_id
        from reachable
        inner join links
            on reachable.to_id = links.from_id
    ),

    groups as (
        select
            reachable.from_id as record_id,
            min(records.age_rank) as survivor_rank,
            count(*) as group_size
        from reachable
        inner join records
            on reachable.to_id = records.record_id
        group by 1
    )

    select
        groups.record_id,
        survivors.record_id as survivor_record_id,
        groups.record_id = survivors.record_id as is_survivor,
        groups.group_size
    from groups
    inner join records as survivors
        on groups.survivor_rank = survivors.age_rank
{%- endmacro %}
