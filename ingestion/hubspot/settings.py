"""HubSpot constants: objects, endpoints, page sizes, search limits, contracts of the lists."""

from ingestion.pages import Contract

OBJECTS_PATH = "crm/v3/objects"
PROPERTIES_PATH = "crm/v3/properties"
OWNERS_PATH = "crm/v3/owners"
DEAL_PIPELINES_PATH = "crm/v3/pipelines/deals"
SCHEMAS_PATH = "crm-object-schemas/v3/schemas"

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

RESOURCES = (*OBJECTS, OWNERS.table, DEAL_PIPELINES.table, DEAL_STAGES.table,
             PROPERTIES.table)
