{#- One row per expense logged in the PSA (deleted ones kept, flagged), with the ERP invoice that
    billed it: the ERP bills a billable expense on an invoice line that names the PSA expense. -#}
with

expenses as (
    select
        expense_id,
        user_id,
        project_id,
        expense_category_id,
        record_ref,
        currency_code,
        expense_amount,
        is_billable,
        is_closed,
        spent_date,
        created_at,
        updated_at
    from {{ staged('psa', 'expenses') }}
),

expense_categories as (
    select
        expense_category_id,
        expense_category_name
    from {{ staged('psa', 'expense_categories') }}
),

deletions as (
    select record_id
    from {{ staged('psa', 'deleted_records') }}
    where resource_name = 'expenses'
),

invoices as (
    select transaction_id
    from {{ staged('erp', 'transactions') }}
    where transaction_type = 'CustInvc' and not coalesce(is_voided, false)
),

invoice_lines as (
    select
        psa_expense_id,
        min(transaction_id) as erp_invoice_id
    from {{ staged('erp', 'transaction_lines') }}
    where
        psa_expense_id is not null
        and transaction_id in (select invoices.transaction_id from invoices)
    group by 1
),

resource_map as (
    select
        resource_id,
        system_record_id
    from {{ ref('map_resource_ids') }}
    where system_role = 'psa'
),

engagement_map as (
    select
        engagement_id,
        system_record_id
    from {{ ref('map_engagement_ids') }}
    where system_role = 'psa'
),

engagements as (
    select
        engagement_id,
        client_id
    from {{ ref('dim_engagements') }}
),

resources as (
    select
        resource_id,
        legal_entity_id
    from {{ ref('dim_resources') }}
),

expenses_resolved as (
    select
        md5(expenses.record_ref) as expense_id,
        expenses.record_ref,
        expenses.expense_id as psa_expense_id,
        coalesce(resource_map.resource_id, md5('-1')) as resource_id,
        coalesce(engagement_map.engagement_id, md5('-1')) as engagement_id,
        coalesce(engagements.client_id, md5('-1')) as client_id,
        -- the person's entity, as for time: people never work across entities
        coalesce(resources.legal_entity_id, md5('-1')) as legal_entity_id,
        expense_categories.expense_category_name,
        expenses.spent_date as expense_date,
        cast(expenses.expense_amount as decimal(18, 2)) as expense_amount,
        expenses.currency_code,
        coalesce(expenses.is_billable, false) as is_billable,
        -- approved with the week's timesheet
        coalesce(expenses.is_closed, false) as is_approved,
        invoice_lines.erp_invoice_id,
        invoice_lines.erp_invoice_id is not null as is_invoiced,
        expenses.expense_id in (select deletions.record_id from deletions) as is_deleted,
        expenses.created_at,
        expenses.updated_at
    from expenses
    left join expense_categories
        on expenses.expense_category_id = expense_categories.expense_category_id
    left join resource_map
        on expenses.user_id = resource_map.system_record_id
    left join engagement_map
        on expenses.project_id = engagement_map.system_record_id
    left join engagements
        on engagement_map.engagement_id = engagements.engagement_id
    left join resources
        on resource_map.resource_id = resources.resource_id
    left join invoice_lines
        on expenses.expense_id = invoice_lines.psa_expense_id
)

select * from expenses_resolved
