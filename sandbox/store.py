"""The sandbox store: one SQLite file per emulated vendor, shared by the generator and the server.

A store directory holds:

- ``hubspot.sqlite``: HubSpot CRM objects (generic property bags), associations, owners,
  pipelines, property definitions and custom-object schemas.
- ``harvest.sqlite``: Harvest v2 resources, one typed table each.
- ``netsuite.sqlite``: NetSuite tables named and shaped as SuiteQL sees them, so that a SuiteQL
  query runs against them after a light translation (``sandbox.server.suiteql``).
- ``firm.json``: what was generated (seed, size, as-of date, counts) and the API credentials.
- ``ground_truth.csv``: one row per injected discrepancy.

Conventions, so that every reader and writer agrees:

- Timestamps are ISO 8601 UTC text. HubSpot and Harvest use ``YYYY-MM-DDTHH:MM:SS.mmmZ`` /
  ``YYYY-MM-DDTHH:MM:SSZ`` as their APIs render them; NetSuite uses ``YYYY-MM-DD HH:MM:SS``.
- Dates are ``YYYY-MM-DD`` text. NetSuite booleans are ``'T'``/``'F'`` text as SuiteQL returns.
- Money and hours are REAL holding values with at most 2 decimals (rates 6), produced from exact
  integer/Decimal arithmetic in the generator; the wire formats of all three vendors are JSON
  numbers anyway. The warehouse re-types them as decimals.
- HubSpot property values are strings, as HubSpot returns them.
- Every write through the API sets the vendor's modification timestamp to the current time.
- Every HubSpot property write through the API is also logged in ``property_writes`` (one row per
  record and property, in the write's transaction); the generator logs nothing. Read it with
  :func:`property_writes`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

Vendor = Literal["hubspot", "harvest", "netsuite"]
VENDORS: tuple[Vendor, ...] = ("hubspot", "harvest", "netsuite")

FIRM_FILE = "firm.json"
GROUND_TRUTH_FILE = "ground_truth.csv"
ENDPOINTS_FILE = "endpoints.json"
GROUND_TRUTH_COLUMNS = ("exception_type", "record_ref", "expected", "actual")

# The write log of the HubSpot emulator: what each API request wrote, so that tests can count
# writes per (record, property, value) and tell which request made them. Kept apart from
# HUBSPOT_DDL so that :func:`upgrade_schema` can add it to stores made before it existed.
HUBSPOT_WRITE_LOG_DDL = """
create table if not exists property_writes (
    seq integer primary key autoincrement,
    object_type text not null,      -- canonical name: companies | contacts | deals | erp_invoices
    record_id integer not null,
    property text not null,
    value text,                     -- as stored; null when the write cleared the property
    previous_value text,            -- the value before this write; null when it was unset
    written_at text not null,       -- ISO 8601 ms, Z: the record's new updated_at
    correlation_id text,            -- the request's X-Correlation-Id header, if any
    request_method text not null,   -- POST | PATCH
    endpoint text not null          -- e.g. POST /crm/v3/objects/{object_type}/batch/update
);
create index if not exists property_writes_by_record
    on property_writes (object_type, record_id, property);
"""

HUBSPOT_DDL = """
create table if not exists objects (
    object_type text not null,      -- companies | contacts | deals | erp_invoices
    id integer not null,
    properties text not null,       -- JSON object: property name -> string value
    created_at text not null,       -- ISO 8601 ms, Z
    updated_at text not null,       -- equals properties.hs_lastmodifieddate (lastmodifieddate)
    archived integer not null default 0,
    archived_at text,
    primary key (object_type, id)
);
create index if not exists objects_by_updated on objects (object_type, updated_at, id);
create table if not exists associations (
    from_type text not null,
    from_id integer not null,
    to_type text not null,
    to_id integer not null,
    type_id integer not null,       -- v4 association type id, e.g. 279 contact->company
    category text not null default 'HUBSPOT_DEFINED',
    primary key (from_type, from_id, to_type, to_id, type_id)
);
create index if not exists associations_by_to on associations (to_type, to_id);
create table if not exists owners (
    id integer primary key,
    email text not null,
    first_name text,
    last_name text,
    user_id integer,
    type text not null default 'PERSON',
    teams text not null default '[]',   -- JSON list of {id, name, primary}
    archived integer not null default 0,
    created_at text not null,
    updated_at text not null
);
create table if not exists pipelines (
    object_type text not null,
    id text not null,
    label text not null,
    display_order integer not null,
    archived integer not null default 0,
    created_at text not null,
    updated_at text not null,
    primary key (object_type, id)
);
create table if not exists pipeline_stages (
    pipeline_id text not null,
    id text not null,
    label text not null,
    display_order integer not null,
    metadata text not null,          -- JSON object, e.g. {"probability": "1.0", "isClosed": "true"}
    archived integer not null default 0,
    created_at text not null,
    updated_at text not null,
    primary key (pipeline_id, id)
);
create table if not exists properties (
    object_type text not null,
    name text not null,
    label text not null,
    type text not null,              -- string | number | date | datetime | enumeration | bool
    field_type text not null,        -- text | number | date | select | booleancheckbox | ...
    group_name text not null,
    description text not null default '',
    options text not null default '[]',
    has_unique_value integer not null default 0,
    hubspot_defined integer not null default 1,
    calculated integer not null default 0,
    hidden integer not null default 0,
    display_order integer not null default -1,
    archived integer not null default 0,
    created_at text not null,
    updated_at text not null,
    primary key (object_type, name)
);
create table if not exists object_schemas (
    object_type_id text primary key,     -- e.g. 2-9001
    name text not null unique,           -- e.g. erp_invoices (the path name pslake uses)
    fully_qualified_name text not null,  -- e.g. p_erp_invoices
    labels text not null,                -- JSON {singular, plural}
    primary_display_property text not null,
    created_at text not null,
    updated_at text not null
);
"""

HARVEST_DDL = """
create table if not exists company (
    id integer primary key,
    base_uri text, full_domain text, name text, is_active integer, week_start_day text,
    wants_timestamp_timers integer, time_format text, date_format text, plan_type text,
    clock text, currency text, weekly_capacity integer,
    expense_feature integer, invoice_feature integer, estimate_feature integer,
    approval_feature integer, team_feature integer
);
create table if not exists clients (
    id integer primary key,
    name text not null,
    is_active integer not null,
    address text,
    statement_key text,
    currency text not null,
    created_at text not null,
    updated_at text not null
);
create table if not exists users (
    id integer primary key,
    first_name text not null,
    last_name text not null,
    email text not null,
    telephone text not null default '',
    timezone text not null,
    has_access_to_all_future_projects integer not null default 0,
    is_contractor integer not null,
    is_active integer not null,
    weekly_capacity integer not null,      -- seconds, as Harvest returns it
    default_hourly_rate real,
    cost_rate real,
    roles text not null,                   -- JSON list of strings: [role, practice]
    access_roles text not null,            -- JSON list, e.g. ["member"]
    avatar_url text,
    created_at text not null,
    updated_at text not null
);
create table if not exists tasks (
    id integer primary key,
    name text not null,
    billable_by_default integer not null,
    default_hourly_rate real,
    is_default integer not null,
    is_active integer not null,
    created_at text not null,
    updated_at text not null
);
create table if not exists projects (
    id integer primary key,
    client_id integer not null,
    name text not null,
    code text,
    is_active integer not null,
    is_billable integer not null,
    is_fixed_fee integer not null,
    bill_by text not null,                 -- Project | Tasks | People | none
    hourly_rate real,
    budget real,
    budget_by text not null,               -- project | project_cost | task | task_fees | person
    budget_is_monthly integer not null default 0,
    notify_when_over_budget integer not null default 0,
    over_budget_notification_percentage real not null default 80,
    show_budget_to_all integer not null default 0,
    cost_budget real,
    cost_budget_include_expenses integer not null default 0,
    fee real,
    notes text,
    starts_on text,
    ends_on text,
    created_at text not null,
    updated_at text not null
);
create table if not exists task_assignments (
    id integer primary key,
    project_id integer not null,
    task_id integer not null,
    is_active integer not null,
    billable integer not null,
    hourly_rate real,
    budget real,
    created_at text not null,
    updated_at text not null
);
create table if not exists user_assignments (
    id integer primary key,
    project_id integer not null,
    user_id integer not null,
    is_active integer not null,
    is_project_manager integer not null,
    use_default_rates integer not null,
    hourly_rate real,
    budget real,
    created_at text not null,
    updated_at text not null
);
create table if not exists time_entries (
    id integer primary key,
    spent_date text not null,
    user_id integer not null,
    client_id integer not null,
    project_id integer not null,
    task_id integer not null,
    user_assignment_id integer,
    task_assignment_id integer,
    hours real not null,
    hours_without_timer real not null,
    rounded_hours real not null,
    notes text,
    is_locked integer not null,
    locked_reason text,
    is_closed integer not null,            -- approved through timesheet approval
    is_billed integer not null,
    timer_started_at text,
    started_time text,
    ended_time text,
    is_running integer not null default 0,
    billable integer not null,
    budgeted integer not null,
    billable_rate real,
    cost_rate real,
    external_reference text,               -- JSON object or null (the ERP posting)
    invoice_id integer,
    invoice_number text,
    created_at text not null,
    updated_at text not null
);
create table if not exists expense_categories (
    id integer primary key,
    name text not null,
    unit_name text,
    unit_price real,
    is_active integer not null,
    created_at text not null,
    updated_at text not null
);
create table if not exists expenses (
    id integer primary key,
    client_id integer not null,
    project_id integer not null,
    expense_category_id integer not null,
    user_id integer not null,
    user_assignment_id integer,
    notes text,
    units real,
    total_cost real not null,
    billable integer not null,
    is_closed integer not null,
    is_locked integer not null,
    is_billed integer not null,
    locked_reason text,
    spent_date text not null,
    receipt text,
    invoice_id integer,
    invoice_number text,
    created_at text not null,
    updated_at text not null
);
"""

# Indexes that matter for serving; created after the bulk load (faster than maintaining them).
HARVEST_INDEXES = """
create index if not exists time_entries_by_updated on time_entries (updated_at, id);
create index if not exists time_entries_by_spent on time_entries (spent_date, id);
create index if not exists time_entries_by_project on time_entries (project_id, id);
create index if not exists time_entries_by_user on time_entries (user_id, id);
create index if not exists expenses_by_updated on expenses (updated_at, id);
create index if not exists projects_by_updated on projects (updated_at, id);
create index if not exists task_assignments_by_project on task_assignments (project_id);
create index if not exists user_assignments_by_project on user_assignments (project_id);
"""

NETSUITE_DDL = """
create table if not exists subsidiary (
    id integer primary key, name text not null, fullname text not null, legalname text,
    country text not null, currency integer not null, parent integer,
    iselimination text not null default 'F', isinactive text not null default 'F',
    lastmodifieddate text not null
);
create table if not exists currency (
    id integer primary key, symbol text not null, name text not null,
    isbasecurrency text not null, isinactive text not null default 'F',
    lastmodifieddate text not null
);
create table if not exists currencyrate (
    id integer primary key, basecurrency integer not null, transactioncurrency integer not null,
    exchangerate real not null,            -- units of base currency per 1 transaction currency
    effectivedate text not null, lastmodifieddate text not null
);
create table if not exists accountingperiod (
    id integer primary key, periodname text not null, startdate text not null,
    enddate text not null, closed text not null, closedondate text,
    alllocked text not null, arlocked text not null, aplocked text not null,
    isposting text not null, isquarter text not null, isyear text not null,
    isadjust text not null default 'F', isinactive text not null default 'F',
    parent integer, lastmodifieddate text not null
);
create table if not exists term (
    id integer primary key, name text not null, daysuntilnetdue integer not null,
    isinactive text not null default 'F', lastmodifieddate text not null
);
create table if not exists department (
    id integer primary key, name text not null, fullname text not null,
    isinactive text not null default 'F', lastmodifieddate text not null
);
create table if not exists item (
    id integer primary key, itemid text not null, displayname text not null,
    itemtype text not null,                -- Service | OthCharge
    isinactive text not null default 'F', lastmodifieddate text not null
);
create table if not exists customer (
    id integer primary key, entityid text not null, companyname text not null,
    isperson text not null default 'F', email text, phone text, url text, parent integer,
    subsidiary integer not null, currency integer not null, terms integer,
    billcountry text, externalid text, custentity_hubspot_company_id text,
    datecreated text not null, lastmodifieddate text not null,
    isinactive text not null default 'F'
);
create table if not exists entitystatus (
    id integer primary key, name text not null, category text not null   -- category: project
);
create table if not exists job (
    id integer primary key, entityid text not null, companyname text not null,
    customer integer not null, parent integer, subsidiary integer not null,
    entitystatus integer not null, projectmanager integer,
    startdate text, enddate text, projectedenddate text,
    jobbillingtype text not null,          -- TM | FF | MS | RT (time and materials, fixed fee,
                                           -- milestone, retainer)
    estimatedrevenue real,                 -- contract value in the customer's currency
    estimatedcost real, estimatedlaborhours real, currency integer not null,
    custentity_hubspot_deal_id text, externalid text,
    datecreated text not null, lastmodifieddate text not null,
    isinactive text not null default 'F'
);
create table if not exists employee (
    id integer primary key, entityid text not null, firstname text not null,
    lastname text not null, email text, title text, department integer, subsidiary integer not null,
    supervisor integer, currency integer, laborcost real, hiredate text, releasedate text,
    externalid text, custentity_utilization_target real,   -- billable share the firm expects
    datecreated text not null, lastmodifieddate text not null,
    isinactive text not null default 'F'
);
create table if not exists timebill (
    id integer primary key, employee integer not null, customer integer not null,  -- customer = job
    item integer, hours real not null, trandate text not null, isbillable text not null,
    rate real, approvalstatus integer not null,   -- 1 pending approval, 2 approved, 3 rejected
    memo text, subsidiary integer not null, postingperiod integer,
    externalid text,                       -- the Harvest time entry id
    invoice integer,                       -- the invoice that billed this time, if any
    posted text not null default 'T',
    datecreated text not null, lastmodifieddate text not null
);
create table if not exists "transaction" (
    id integer primary key, tranid text not null, transactionnumber text not null,
    type text not null,                    -- CustInvc | CustPymt | CustCred
    trandate text not null, duedate text, entity integer not null, job integer,
    subsidiary integer not null, currency integer not null, exchangerate real not null,
    status text not null,                  -- invoice A open / B paid in full; payment C deposited
    postingperiod integer, foreigntotal real not null, foreignamountpaid real,
    foreignamountremaining real, terms integer, memo text, closedate text,
    voided text not null default 'F', externalid text,
    createddate text not null, lastmodifieddate text not null
);
create table if not exists transactionline (
    uniquekey integer primary key, "transaction" integer not null, id integer not null,
    linesequencenumber integer not null, mainline text not null, taxline text not null default 'F',
    entity integer, item integer, quantity real, rate real, netamount real, foreignamount real,
    memo text, isbillable text not null default 'F', subsidiary integer, department integer,
    employee integer, custcol_harvest_expense_id text, linelastmodifieddate text not null
);
create table if not exists previoustransactionlink (
    previousdoc integer not null, nextdoc integer not null,
    linktype text not null,                -- Payment | Credit Memo
    amount real not null, foreignamount real not null, linkdate text not null,
    lastmodifieddate text not null,
    primary key (previousdoc, nextdoc)
);
create table if not exists customrecord_pslake_rate_card (
    id integer primary key, name text not null,
    custrecord_rc_subsidiary integer not null,
    custrecord_rc_customer integer,        -- null: the standard card of the subsidiary
    custrecord_rc_role text not null,
    custrecord_rc_rate real not null,
    custrecord_rc_currency integer not null,
    custrecord_rc_effective_from text not null,
    custrecord_rc_effective_to text,       -- inclusive; null: open-ended
    isinactive text not null default 'F', lastmodifieddate text not null
);
create table if not exists deletedrecord (
    id integer primary key, recordid text not null, recordtype text not null,
    deleteddate text not null, name text, context text not null default 'WEBSERVICES'
);
"""

NETSUITE_INDEXES = """
create index if not exists timebill_by_modified on timebill (lastmodifieddate, id);
create index if not exists timebill_by_externalid on timebill (externalid);
create index if not exists transaction_by_modified on "transaction" (lastmodifieddate, id);
create index if not exists transactionline_by_transaction on transactionline ("transaction");
create index if not exists transactionline_by_modified on transactionline (linelastmodifieddate);
"""

DDL: dict[Vendor, str] = {
    "hubspot": HUBSPOT_DDL + HUBSPOT_WRITE_LOG_DDL,
    "harvest": HARVEST_DDL,
    "netsuite": NETSUITE_DDL,
}
INDEXES: dict[Vendor, str] = {
    "hubspot": "",
    "harvest": HARVEST_INDEXES,
    "netsuite": NETSUITE_INDEXES,
}


def db_path(store_dir: Path, vendor: Vendor) -> Path:
    """Path of one vendor's SQLite file inside a store directory."""
    return store_dir / f"{vendor}.sqlite"


def connect(store_dir: Path, vendor: Vendor, *, bulk: bool = False) -> sqlite3.Connection:
    """Open one vendor's store in WAL mode.

    Args:
        store_dir: The store directory.
        vendor: Which vendor's file.
        bulk: Trade durability for speed while the generator writes a fresh store.
    """
    con = sqlite3.connect(db_path(store_dir, vendor), check_same_thread=False, isolation_level=None)
    con.execute("pragma busy_timeout=10000")
    if bulk:
        # A scratch store being generated: no journal (a crash discards the scratch folder).
        con.execute("pragma journal_mode=off")
        con.execute("pragma synchronous=off")
        con.execute("pragma cache_size=-65536")  # 64 MiB per vendor file
    else:
        con.execute("pragma journal_mode=wal")
        con.execute("pragma synchronous=normal")
    return con


def create_schema(store_dir: Path) -> None:
    """Create (or complete) the tables of all three vendor files in a store directory."""
    store_dir.mkdir(parents=True, exist_ok=True)
    for vendor in VENDORS:
        con = connect(store_dir, vendor)
        try:
            con.executescript(DDL[vendor])
        finally:
            con.close()


def create_indexes(store_dir: Path) -> None:
    """Create the serving indexes; run once after a bulk load."""
    for vendor in VENDORS:
        con = connect(store_dir, vendor, bulk=True)
        try:
            con.executescript(INDEXES[vendor])
            con.execute("analyze")
            con.execute("pragma journal_mode=wal")  # how the server runs it
        finally:
            con.close()


def upgrade_schema(store_dir: Path) -> None:
    """Add the tables newer than a store (idempotent; the server runs it at start).

    A store generated before the HubSpot write log existed lacks ``property_writes``; this creates
    it, and leaves a store that has it untouched (no write transaction is taken then).

    Args:
        store_dir: The store directory; vendor files that do not exist are left alone.
    """
    path = db_path(store_dir, "hubspot")
    if not path.exists():
        return
    con = connect(store_dir, "hubspot")
    try:
        present = con.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'property_writes'"
        ).fetchone()
        if present is None:
            con.executescript(HUBSPOT_WRITE_LOG_DDL)
    finally:
        con.close()


def property_writes(store_dir: Path | str, object_type: str | None = None) -> list[dict[str, Any]]:
    """The HubSpot write log, oldest first, read straight from the store file (read only).

    One dict per (request, record, property) written through the API, with the keys ``seq``,
    ``object_type``, ``record_id``, ``property``, ``value`` (None when cleared),
    ``previous_value``, ``written_at``, ``correlation_id``, ``request_method`` and ``endpoint``.
    Safe to call while the sandbox serves the store (SQLite WAL readers do not block it).

    Args:
        store_dir: The store directory.
        object_type: Only this object type, by its canonical name (``companies``,
            ``erp_invoices``); all types when omitted.

    Returns:
        The rows in write order; empty for a store that has no write log yet.
    """
    path = db_path(Path(store_dir), "hubspot")
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        has_log = con.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'property_writes'"
        ).fetchone()
        if has_log is None:
            return []
        sql = "select * from property_writes"
        params: list[str] = []
        if object_type is not None:
            sql += " where object_type = ?"
            params.append(object_type)
        return [dict(row) for row in con.execute(sql + " order by seq", params)]
    finally:
        con.close()


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in one write transaction (``begin immediate`` ... ``commit``)."""
    con.execute("begin immediate")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
