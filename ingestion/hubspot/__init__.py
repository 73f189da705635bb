"""HubSpot CRM as a dlt source (``raw_hubspot``), incremental on the records' ``updatedAt``.

Companies, contacts, deals and pslake's custom object ``erp_invoices`` are read with every
property the portal defines (asked of the properties API at run time), merged on HubSpot's
``id``. Properties become top-level columns; each is checked against its HubSpot type, and a
record whose value does not fit goes to ``raw_hubspot.quarantine`` with the reason. Pages are
parsed in batches by DuckDB (``ingestion.pages``), as for the other vendors.

Incremental reading. The first load lists every record (``GET /crm/v3/objects/{o}``). Later
runs search for records modified at or after dlt's cursor, oldest first. Each search page is a
new query starting from the latest modification time read so far, skipping the records already
read at that instant, so neither HubSpot's 10,000-result search window nor records changing
while we page can make a run skip a record. Only when more records than one page share a single
instant are they paged by offset; when more than the window share it, the rest comes from a
full list. Searches ask only for changes older than ``search_settle_s``, as HubSpot's search
index lags its writes; younger changes wait for the next run.

Archived records. Search never returns them and the cursor would filter them out, so a second
resource per object lists ``archived=true`` every run and merges those records into the same
table: the row stays, with ``archived`` true and ``archived_at`` set. Owners (live and
archived), the deal pipelines and their stages, and the property definitions are small
reference lists, replaced on every run.

Associations. For every record of contacts, deals and erp_invoices a run reads (all of them on
the first load, the changed ones later), a transformer reads its associations to companies (and
the invoices' to deals) by v4 batch read, into ``raw_hubspot.associations``. dlt's scd2 merge
keeps one row per association while HubSpot returns it and sets ``removed_at`` once a re-read
no longer does. As adding or removing an association need not move a record's modification
time, a full pass re-reads every live record's associations every ``association_pass_days``.

This module holds the source and its resources; the client, the paginators and the readers
that call HubSpot and parse its answers are in ``ingestion.hubspot.client``. See ``README.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import dlt
import orjson
import pyarrow as pa
from dlt.sources import DltResource

from ingestion.http import HttpSettings
from ingestion.hubspot.client import (
    AssociationReader,
    Portal,
    SearchLimiter,
    epoch_ms,
    make_client,
)
from ingestion.hubspot.settings import (
    ASSOCIATION_BATCH_SIZE,
    ASSOCIATION_COLUMNS,
    ASSOCIATION_PASS_DAYS,
    ASSOCIATION_WRITE_DISPOSITION,
    ASSOCIATIONS,
    ASSOCIATIONS_TABLE,
    BATCH_PAGES,
    CURSOR,
    DEAL_PIPELINES,
    DEAL_PIPELINES_PATH,
    DEAL_STAGES,
    OBJECTS,
    OWNERS,
    OWNERS_PATH,
    PAGE_SIZE,
    PROPERTIES,
    SEARCH_PAGE_SIZE,
    SEARCH_SETTLE_S,
    SEARCH_WINDOW,
)
from ingestion.pages import Contract, PageBatch, landing_folder
from ingestion.summary import SourceTally, TableTally, pages_to_items
from pslake.ratelimit import RateLimiter

# When one load holds a record twice (archived while the run read it live), keep the newest.
_NEWEST: dict[str, Any] = {CURSOR: {"dedup_sort": "desc"}}


# ---- resources --------------------------------------------------------------------------------


def _items(pages: Iterator[bytes], contract: Contract, landing: Path, tally: TableTally,
           batch_pages: int = BATCH_PAGES, until: str | None = None) -> Iterator[Any]:
    """Pages through a :class:`PageBatch`, opened only once a page holds records.

    Most incremental runs find nothing archived and nothing changed; their empty pages are
    counted without starting DuckDB.
    """
    for body in pages:
        if orjson.loads(body).get("results"):
            break
        tally.pages += 1
    else:
        return
    with PageBatch(landing, contract, selector="results", max_pages=batch_pages) as batch:
        batch.until = until
        yield from pages_to_items(chain([body], pages), batch, tally)


def _objects(portal: Portal, table: str, landing: Path, tally: SourceTally,
             batch_pages: int) -> DltResource:
    @dlt.resource(name=table, primary_key="id", write_disposition="merge", columns=_NEWEST)
    def records(
        updated: dlt.sources.incremental[Any] = dlt.sources.incremental(
            CURSOR, initial_value=None, on_cursor_value_missing="include"),
    ) -> Iterator[Any]:
        contract, names = portal.contract(table)
        since = epoch_ms(updated.start_value)
        until = None
        if since is None:  # first load: no cursor yet
            portal.listed_in_full.add(table)
            # what changes while the list is read is left to the next run's search, so the
            # cursor cannot pass an earlier record's change made during the read
            until = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=portal.settle_s)).isoformat()
            pages = portal.listed(table, names)
        else:
            pages = portal.changed(table, names, since, tally.table(table))
        yield from _items(pages, contract, landing, tally.table(table), batch_pages, until)

    return records


def _archived(portal: Portal, table: str, landing: Path, tally: SourceTally,
              batch_pages: int) -> DltResource:
    """Archived records, into the object's own table; not incremental, so never filtered."""

    @dlt.resource(name=f"{table}_archived", table_name=table, primary_key="id",
                  write_disposition="merge", columns=_NEWEST)
    def archived() -> Iterator[Any]:
        contract, names = portal.contract(table)
        yield from _items(portal.listed(table, names, archived=True), contract, landing,
                          tally.table(table), batch_pages)

    return archived


def _reference(contract: Contract, pages: Callable[[], Iterator[bytes]], landing: Path,
               tally: SourceTally) -> DltResource:
    """A small list replaced on every run; ``pages()`` gives its raw pages."""
    name = contract.table

    @dlt.resource(name=name, primary_key=list(contract.primary_key), write_disposition="replace")
    def reference() -> Iterator[Any]:
        yield from _items(pages(), contract, landing, tally.table(name))

    return reference


# ---- associations -----------------------------------------------------------------------------


def _record_ids(item: Any) -> list[int]:
    """The ids of a batch of records (rows or quarantined rows) the object resource yielded."""
    if isinstance(item, pa.Table) and "id" in item.column_names:
        return [int(i) for i in item.column("id").to_pylist() if i is not None]
    return []


def _has_cursor(table: str) -> bool:
    """Whether an object's resource kept a cursor from an earlier run (dlt's resource state)."""
    resources = dlt.current.source_state().get("resources", {})
    cursors = resources.get(table, {}).get("incremental", {})
    return any(c.get("last_value") is not None for c in cursors.values())


def _associations_from(records: DltResource, table: str,
                       reader: AssociationReader) -> DltResource:
    """The associations of every record the object's resource yields, as it yields them."""

    @dlt.transformer(data_from=records, name=f"associations_from_{table}",
                     table_name=ASSOCIATIONS_TABLE, columns=ASSOCIATION_COLUMNS)
    def associations(item: Any) -> Iterator[Any]:
        # a quarantined batch arrives marked for the quarantine table, and a transformer's
        # items inherit the mark: name the table again
        for found in reader.read(table, _record_ids(item)):
            yield dlt.mark.with_table_name(found, ASSOCIATIONS_TABLE)

    # the decorator's signature takes only a plain disposition; the hints take the strategy
    resource: DltResource = associations
    return resource.apply_hints(write_disposition=ASSOCIATION_WRITE_DISPOSITION)


def _association_pass(portal: Portal, reader: AssociationReader,
                      pass_days: float) -> DltResource:
    """Every ``pass_days``, the associations of every live record (see ``README.md``)."""

    @dlt.resource(name="associations_full_pass", table_name=ASSOCIATIONS_TABLE,
                  write_disposition=ASSOCIATION_WRITE_DISPOSITION, columns=ASSOCIATION_COLUMNS)
    def full_pass() -> Iterator[Any]:
        passed: dict[str, str] = dlt.current.resource_state().setdefault("passed_at", {})
        now = dt.datetime.now(dt.UTC)
        for table in ASSOCIATIONS:
            if table in portal.listed_in_full or not _has_cursor(table):
                # a first load lists every record, and the records' associations come with them
                passed[table] = now.isoformat()
                continue
            last = passed.get(table)
            if last is not None and (now - dt.datetime.fromisoformat(last)
                                     < dt.timedelta(days=pass_days)):
                continue
            if (yield from reader.full_pass(table)):
                passed[table] = now.isoformat()

    return full_pass


@dlt.source(name="hubspot", max_table_nesting=0)
def hubspot_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    landing_dir: str | None = None,
    tally: SourceTally | None = None,
    limiter: RateLimiter | None = None,
    http: HttpSettings | None = None,
    batch_pages: int = BATCH_PAGES,
    page_size: int = PAGE_SIZE,
    search_page_size: int = SEARCH_PAGE_SIZE,
    search_window: int = SEARCH_WINDOW,
    search_settle_s: float = SEARCH_SETTLE_S,
    association_batch_size: int = ASSOCIATION_BATCH_SIZE,
    association_pass_days: float = ASSOCIATION_PASS_DAYS,
) -> list[DltResource]:
    """The HubSpot resources pslake reads.

    Args:
        base_url: ``https://api.hubapi.com`` or the sandbox's ``/hubspot`` URL.
        access_token: A private app token.
        landing_dir: Where raw pages wait for their batch (the pipeline's working folder).
        tally: Counts for the run summary.
        limiter: The account's client-side rate limit; searches also keep the search
            endpoint's own budget when it is set.
        http: Timeout and retry settings.
        batch_pages: Pages per DuckDB parse.
        page_size: Records per list page (HubSpot allows 100).
        search_page_size: Records per search page (HubSpot allows 200).
        search_window: How many results one search query can page through (HubSpot: 10,000).
        search_settle_s: Changes younger than this are left for the next run (search lags).
        association_batch_size: Records per v4 association batch read (HubSpot allows 1,000).
        association_pass_days: How often every live record's associations are read again, as
            association changes need not move a record's modification time (0: every run).
    """
    tally = tally or SourceTally("hubspot")
    landing = landing_folder(landing_dir)
    portal = Portal(
        base_url, make_client(base_url, access_token, tally, limiter, http),
        make_client(base_url, access_token, tally, SearchLimiter(limiter) if limiter else None,
                    http),
        page_size, search_page_size, search_window, search_settle_s)

    def owners() -> Iterator[bytes]:
        for archived in ("false", "true"):
            yield from portal.pages(OWNERS_PATH, {"limit": page_size, "archived": archived})

    def pipelines() -> Iterator[bytes]:
        yield portal.body(DEAL_PIPELINES_PATH)

    def stages() -> Iterator[bytes]:
        found = orjson.loads(portal.body(DEAL_PIPELINES_PATH)).get("results") or []
        yield orjson.dumps({"results": [{**stage, "pipeline_id": pipeline.get("id")}
                                        for pipeline in found
                                        for stage in pipeline.get("stages") or []]})

    def properties() -> Iterator[bytes]:
        for table in OBJECTS:
            yield orjson.dumps({"results": [{"object_type": table, **prop}
                                            for prop in portal.properties(table)]})

    records = {table: _objects(portal, table, landing, tally, batch_pages) for table in OBJECTS}
    reader = AssociationReader(portal, tally.table(ASSOCIATIONS_TABLE), association_batch_size)
    return [
        *records.values(),
        *(_archived(portal, table, landing, tally, batch_pages) for table in OBJECTS),
        _reference(OWNERS, owners, landing, tally),
        _reference(DEAL_PIPELINES, pipelines, landing, tally),
        _reference(DEAL_STAGES, stages, landing, tally),
        _reference(PROPERTIES, properties, landing, tally),
        *(_associations_from(records[table], table, reader) for table in ASSOCIATIONS),
        _association_pass(portal, reader, association_pass_days),
    ]
