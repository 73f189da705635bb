{#- Record references, `<system>:<object>:<id>`: the vocabulary the sandbox's ground-truth manifest
    and `rec_exceptions` share (DESIGN.md, Reconciliation), e.g. `harvest:time_entry:81234`.
    Objects are singular snake_case; NetSuite transactions are named by their type (`invoice`,
    `payment`, `credit_memo`), so an invoice is `netsuite:invoice:<id>` as in the manifest. -#}

{#- The reference of a record of a known object: `record_ref('harvest', 'time_entry', 'id')`. -#}
{% macro record_ref(system, object, id_expression) -%}
    '{{ system }}:{{ object }}:' || cast({{ id_expression }} as varchar)
{%- endmacro %}

{#- The reference of a record whose object is a SQL expression (a NetSuite transaction's type). -#}
{% macro record_ref_of_object(system, object_expression, id_expression) -%}
    '{{ system }}:' || {{ object_expression }} || ':' || cast({{ id_expression }} as varchar)
{%- endmacro %}

{#- Raw table name -> object, per system: for rows that name the table they are about (quarantine,
    Harvest's deleted records, HubSpot's associations). -#}
{% macro record_objects(system) -%}
    {%- set objects = {
        'harvest': {
            'clients': 'client',
            'users': 'user',
            'projects': 'project',
            'tasks': 'task',
            'task_assignments': 'task_assignment',
            'user_assignments': 'user_assignment',
            'time_entries': 'time_entry',
            'expenses': 'expense',
            'expense_categories': 'expense_category',
        },
        'hubspot': {
            'companies': 'company',
            'contacts': 'contact',
            'deals': 'deal',
            'erp_invoices': 'erp_invoice',
            'owners': 'owner',
            'deal_pipelines': 'deal_pipeline',
            'deal_stages': 'deal_stage',
            'properties': 'property',
        },
        'netsuite': {
            'subsidiary': 'subsidiary',
            'currency': 'currency',
            'currencyrate': 'currency_rate',
            'accountingperiod': 'accounting_period',
            'customer': 'customer',
            'job': 'job',
            'employee': 'employee',
            'department': 'department',
            'item': 'item',
            'term': 'term',
            'timebill': 'timebill',
            'transaction': 'transaction',
            'transactionline': 'transaction_line',
            'previoustransactionlink': 'transaction_link',
            'customrecord_pslake_rate_card': 'rate_card',
            'deletedrecord': 'deleted_record',
        },
    } -%}
    {{ return(objects[system]) }}
{%- endmacro %}

{#- The reference of a record whose raw table is in `table_expression` (a column or SQL
    expression); a table missing from `record_objects` keeps its own name. -#}
{% macro record_ref_of_table(system, table_expression, id_expression) -%}
    '{{ system }}:'
    || case {{ table_expression }}
        {%- for table, object in record_objects(system).items() %}
        when '{{ table }}' then '{{ object }}'
        {%- endfor %}
        else {{ table_expression }}
    end
    || ':' || cast({{ id_expression }} as varchar)
{%- endmacro %}

{#- A NetSuite transaction's object, from its `type` (SuiteQL's type ids). -#}
{% macro netsuite_transaction_object(type_expression) -%}
    case {{ type_expression }}
        when 'CustInvc' then 'invoice'
        when 'CustPymt' then 'payment'
        when 'CustCred' then 'credit_memo'
        else lower({{ type_expression }})
    end
{%- endmacro %}

{#- A NetSuite record type as `deletedrecord.recordtype` spells it (`invoice`, `timebill`,
    `customerpayment`) -> pslake's object name. -#}
{% macro netsuite_record_type_object(record_type_expression) -%}
    case lower({{ record_type_expression }})
        when 'customerpayment' then 'payment'
        when 'creditmemo' then 'credit_memo'
        when 'customrecord_pslake_rate_card' then 'rate_card'
        else lower({{ record_type_expression }})
    end
{%- endmacro %}
