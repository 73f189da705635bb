"""HubSpot constants: objects, endpoints, page sizes, search limits, list contracts, associations.

The associations part names the pairs pslake reads, the batch size, and how the merge marks an
association HubSpot no longer returns.
"""

from dlt.common.schema.typing import TScd2StrategyDict, TTableSchemaColumns

from ingestion.pages import Contract

OBJECTS_PATH = "crm/v3/objects"
PROPERTIES_PATH = "crm/v3/properties"
OWNERS_PATH = "crm/v3/owners"
DEAL_PIPELINES_PATH = "crm/v3/pipelines/deals"
SCHEMAS_PATH = "crm-object-schemas/v3/schemas"
ASSOCIATIONS_PATH = "crm/v4/associations"  # + /{from}/{to}/batch/read

PAGE_SIZE = 100  # list endpoints: HubSpot's practical maximum
SEARCH_PAGE_SIZE = 200  # search: the documented maximum
SEARCH_WINDOW = 10_000  # search pages no further than this many results per query
# Search lags writes (about 10 s after a create, 60 s after an update, vendor-apis.md 1.4), so
# a search only asks for changes older than this; younger ones wait for the next run.
SEARCH_SETTLE_S = 60.0
SEARCH_CALLS_PER_S = 4  # the search endpoint's own budget, on top of the account's
# dlt's verified source keeps each ``properties=`` value under this many characters
MAX_PROPS_LENGTH = 2000
# Pages per DuckDB parse. DuckDB infers column types from at most 32 files of a read (its
# ``maximum_sample_files``); a malformed date in an unsampled page would fail the whole read
# instead of quarantining one record, so a batch stays within what DuckDB samples.
BATCH_PAGES = 32

CUSTOM_OBJECT = "erp_invoices"  # pslake's custom object (unique property netsuite_invoice_id)
# table -> the property search filters and sorts on (contacts name it differently)
OBJECTS: dict[str, str] = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    CUSTOM_OBJECT: "hs_lastmodifieddate",
}
CURSOR = "updatedAt"  # the record's top-level modification time (dlt normalises: updated_at)
ID = "BIGINT"
TS = "TIMESTAMPTZ"
RECORD_COLUMNS = {"id": ID, "createdAt": TS, "updatedAt": TS, "archived": "BOOLEAN",
                  "archivedAt": TS}

# HubSpot property type -> the DuckDB type its value must have, and how the contract holds it.
# ``check``: the column keeps HubSpot's text, a value that does not cast quarantines the record.
# ``typed``: the column has the type. DuckDB's JSON reader already turns ISO date and timestamp
# strings into dates and timestamps, so these cannot stay text; declaring the type keeps the
# column stable when one batch holds a malformed value. Other types (string, enumeration,
# phone_number) are declared VARCHAR for the same reason (DuckDB would detect UUIDs, times).
PROPERTY_TYPES: dict[str, tuple[str, str]] = {
    "number": ("DOUBLE", "check"),
    "bool": ("BOOLEAN", "check"),
    "datetime": (TS, "typed"),
    "date": ("DATE", "typed"),
}

OWNERS = Contract(table="owners", primary_key=("id",), columns={
    "id": ID, "userId": ID, "userIdIncludingInactive": ID, "createdAt": TS, "updatedAt": TS,
    "archived": "BOOLEAN"})
DEAL_PIPELINES = Contract(table="deal_pipelines", primary_key=("id",), drop=("stages",),
                          columns={"id": "VARCHAR", "displayOrder": "INTEGER", "createdAt": TS,
                                   "updatedAt": TS, "archived": "BOOLEAN"})
# stages arrive inside their pipeline; each is loaded with ``pipeline_id`` beside its own id
DEAL_STAGES = Contract(
    table="deal_stages", primary_key=("id",),
    columns={"id": "VARCHAR", "pipeline_id": "VARCHAR", "displayOrder": "INTEGER",
             "createdAt": TS, "updatedAt": TS, "archived": "BOOLEAN"},
    checks={"metadata__probability": "DOUBLE", "metadata__isClosed": "BOOLEAN"})
# every property definition of the objects above, with ``object_type`` (the table name)
PROPERTIES = Contract(table="properties", primary_key=("object_type", "name"), columns={
    "object_type": "VARCHAR", "name": "VARCHAR", "displayOrder": "INTEGER", "createdAt": TS,
    "updatedAt": TS, "archived": "BOOLEAN"})

# ---- associations ---------------------------------------------------------------------------

ASSOCIATIONS_TABLE = "associations"
# object -> the objects its associations point to: the links pslake needs downstream
ASSOCIATIONS: dict[str, tuple[str, ...]] = {
    "contacts": ("companies",),
    "deals": ("companies",),
    CUSTOM_OBJECT: ("companies", "deals"),
}
# v4 batch read takes at most 1,000 inputs since 10 Feb 2025 (vendor-apis.md 1.5)
ASSOCIATION_BATCH_SIZE = 1000
# HubSpot's answer for a record without associations of the asked type (a 207 error entry)
NO_ASSOCIATIONS = "crm.associations.NO_ASSOCIATIONS_FOUND"
# Adding or removing an association need not move a record's modification time, so every this
# many days a run re-reads the associations of every live record (see README.md).
ASSOCIATION_PASS_DAYS = 7.0
# The merge: dlt's scd2 strategy, one row per association (and per label) for as long as HubSpot
# returns it. Each run's rows also carry markers (``to_id`` null) that are not loaded: one per
# record read without associations, and one per pair type (``from_id`` null too) after a full
# pass. The merge ends (``removed_at``) the live rows of every marked or re-read record, or of
# the whole pair type after a full pass, that the run did not read again.
ASSOCIATION_VERSION = "row_hash"
ASSOCIATION_WRITE_DISPOSITION: TScd2StrategyDict = {
    "disposition": "merge",
    "strategy": "scd2",
    "validity_column_names": ["first_seen_at", "removed_at"],
    "row_version_column_name": ASSOCIATION_VERSION,
    "source_filter": "to_id IS NOT NULL",
    # dlt joins the scope to its own conditions with AND, unparenthesised: keep the outer ()
    "destination_scope": (
        "((from_type, to_type) IN (SELECT from_type, to_type FROM {staging_table} "
        "WHERE from_id IS NULL) OR (from_type, from_id, to_type) IN "
        "(SELECT from_type, from_id, to_type FROM {staging_table}))"),
}
ASSOCIATION_COLUMNS: TTableSchemaColumns = {
    "from_type": {"data_type": "text"}, "from_id": {"data_type": "bigint"},
    "to_type": {"data_type": "text"}, "to_id": {"data_type": "bigint"},
    "type_id": {"data_type": "bigint"}, "category": {"data_type": "text"},
    "label": {"data_type": "text"}}

RESOURCES = (*OBJECTS, OWNERS.table, DEAL_PIPELINES.table, DEAL_STAGES.table,
             PROPERTIES.table, ASSOCIATIONS_TABLE)
