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
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import dlt
import orjson
from dlt.sources import DltResource
from dlt.sources.helpers.rest_client.paginators import (
    JSONResponseCursorPaginator,
    SinglePagePaginator,
)
from requests import Response

from ingestion.http import (
    HttpSettings,
    RateLimit,
    RateLimiter,
    RawPageClient,
    bearer,
    vendor_session,
)
from ingestion.hubspot.settings import (
    BATCH_PAGES,
    CURSOR,
    CUSTOM_OBJECT,
    DEAL_PIPELINES,
    DEAL_PIPELINES_PATH,
    DEAL_STAGES,
    MAX_PROPS_LENGTH,
    OBJECTS,
    OBJECTS_PATH,
    OWNERS,
    OWNERS_PATH,
    PAGE_SIZE,
    PROPERTIES,
    PROPERTIES_PATH,
    PROPERTY_TYPES,
    RECORD_COLUMNS,
    SCHEMAS_PATH,
    SEARCH_CALLS_PER_S,
    SEARCH_PAGE_SIZE,
    SEARCH_SETTLE_S,
    SEARCH_WINDOW,
)
from ingestion.pages import Contract, PageBatch
from ingestion.summary import SourceTally, TableTally, pages_to_items
from pslake.errors import PslakeError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
# When one load holds a record twice (archived while the run read it live), keep the newest.
_NEWEST: dict[str, Any] = {CURSOR: {"dedup_sort": "desc"}}


def _ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO 8601 string or a datetime; None for anything else."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    ms: int = (value - _EPOCH) // _MS
    return ms


def _chunks(names: list[str], limit: int = MAX_PROPS_LENGTH) -> list[str]:
    """Property names joined by commas, in as few values of at most ``limit`` characters."""
    chunks: list[str] = []
    current = ""
    for name in names:
        if current and len(current) + 1 + len(name) > limit:
            chunks.append(current)
            current = name
        else:
            current = f"{current},{name}" if current else name
    if current:
        chunks.append(current)
    return chunks


class _SearchLimiter(RateLimiter):
    """The search endpoint's own budget (a few calls a second), on top of the account's."""

    def __init__(self, account: RateLimiter) -> None:
        super().__init__(RateLimit(calls=SEARCH_CALLS_PER_S, window_s=1.0))
        self._account = account

    def acquire(self) -> None:
        """Wait for a place in the search window, then in the account's."""
        super().acquire()
        self._account.acquire()

    def release(self) -> None:
        """Give both back."""
        self._account.release()
        super().release()


class _WindowPaginator(JSONResponseCursorPaginator):
    """Search's offset cursor (``paging.next.after``), stopping where the result window ends.

    ``capped`` tells afterwards whether results were left beyond the window.
    """

    def __init__(self, page_size: int, window: int) -> None:
        super().__init__(cursor_path="paging.next.after", cursor_body_path="after")
        self._page_size = page_size
        self._window = window
        self.capped = False

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Take the next offset, unless it would page past the window."""
        super().update_state(response, data)
        after = self._next_reference
        if after is not None and int(after) + self._page_size > self._window:
            self.capped = True
            self._next_reference = None


def _stamp(ms: int) -> str:
    return (_EPOCH + ms * _MS).isoformat(timespec="milliseconds")


@dataclass
class _Page:
    """A page less what this run already read: body, kept records, whether more follow."""

    body: bytes
    kept: list[dict[str, Any]]
    more: bool


def _unread(body: bytes, floor: int, seen: set[str]) -> _Page:
    """A raw page without the records this run has already read.

    Already read: modified before ``floor`` (epoch ms), or at ``floor`` with an id in ``seen``.
    A record without a readable ``updatedAt`` is kept (the contract judges it). The body is
    rewritten only when a record was dropped.
    """
    page = orjson.loads(body)
    records = page.get("results") or []
    kept = []
    for record in records:
        ms = _ms(record.get(CURSOR))
        if ms is None or ms > floor or (ms == floor and str(record.get("id")) not in seen):
            kept.append(record)
    more = bool((page.get("paging") or {}).get("next"))
    if len(kept) == len(records):
        return _Page(body, kept, more)
    return _Page(orjson.dumps({"results": kept}), kept, more)


class _Portal:
    """One run's view of the portal: its calls, and what it says about itself (read once)."""

    def __init__(self, base_url: str, client: RawPageClient, search: RawPageClient,
                 page_size: int, search_page_size: int, search_window: int,
                 settle_s: float) -> None:
        self.base_url = base_url
        self.client = client
        self.search = search
        self.page_size = page_size
        self.search_page_size = search_page_size
        self.search_window = search_window
        self.settle_s = settle_s
        self._lock = threading.Lock()
        self._bodies: dict[str, bytes] = {}

    # ---- what the portal says about itself ------------------------------------------------

    def body(self, path: str) -> bytes:
        """One unpaged answer (schemas, properties, pipelines), fetched once per run."""
        with self._lock:
            if path not in self._bodies:
                page = next(iter(self.client.paginate(path, paginator=SinglePagePaginator())))
                self._bodies[path] = page[0]
            return self._bodies[path]

    def object_path(self, table: str) -> str:
        """The path segment of an object: its name, or for the custom object its type id."""
        if table != CUSTOM_OBJECT:
            return table
        for schema in orjson.loads(self.body(SCHEMAS_PATH)).get("results") or []:
            if schema.get("name") == table:
                return str(schema["objectTypeId"])
        raise PslakeError(
            f"hubspot: the portal at {self.base_url} has no custom object {table!r} "
            f"({SCHEMAS_PATH}); create it there, or set SOURCES__HUBSPOT__BASE_URL to "
            "pslake's portal")

    def properties(self, table: str) -> list[dict[str, Any]]:
        """Every property definition of an object."""
        body = self.body(f"{PROPERTIES_PATH}/{self.object_path(table)}")
        results: list[dict[str, Any]] = orjson.loads(body).get("results") or []
        return results

    def contract(self, table: str) -> tuple[Contract, list[str]]:
        """The object's contract and its property names, from the portal's definitions."""
        columns = dict(RECORD_COLUMNS)
        checks: dict[str, str] = {}
        names = []
        for prop in self.properties(table):
            name = str(prop["name"])
            names.append(name)
            if name in columns:  # a property named like a record field: the field wins
                continue
            duck, how = PROPERTY_TYPES.get(str(prop.get("type")), ("VARCHAR", "typed"))
            (checks if how == "check" else columns)[name] = duck
        contract = Contract(table=table, primary_key=("id",), cursor=CURSOR, columns=columns,
                            checks=checks, unwrap="properties")
        return contract, sorted(names)

    # ---- records ----------------------------------------------------------------------------

    def pages(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        """The raw pages of a list endpoint, following ``paging.next.after``."""
        paginator = JSONResponseCursorPaginator(cursor_path="paging.next.after",
                                                cursor_param="after")
        for page in self.client.paginate(path, params=params, paginator=paginator):
            yield page[0]

    def listed(self, table: str, names: list[str], archived: bool = False) -> Iterator[bytes]:
        """Every live (or every archived) record of an object, with all its properties."""
        params = {"limit": self.page_size, "archived": "true" if archived else "false",
                  "properties": _chunks(names)}
        yield from self.pages(f"{OBJECTS_PATH}/{self.object_path(table)}", params)

    def _query(self, table: str, names: list[str], filters: list[dict[str, Any]],
               ) -> dict[str, Any]:
        modified = OBJECTS[table]
        return {"filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
                "properties": names, "limit": self.search_page_size}

    def changed(self, table: str, names: list[str], since: int,
                tally: TableTally) -> Iterator[bytes]:
        """Records modified at or after ``since`` (epoch ms), oldest first, by search."""
        modified = OBJECTS[table]
        path = f"{OBJECTS_PATH}/{self.object_path(table)}/search"
        cutoff = int((time.time() - self.settle_s) * 1000)
        floor, operator = since, "GTE"
        seen: set[str] = set()
        while floor < cutoff:
            filters = [{"propertyName": modified, "operator": operator, "value": str(floor)},
                       {"propertyName": modified, "operator": "LT", "value": str(cutoff)}]
            body = self._query(table, names, filters)
            raw = next(iter(self.search.paginate(path, method="POST", json=body,
                                                 paginator=SinglePagePaginator())))
            page = _unread(raw[0], floor, seen)
            yield page.body
            if not page.more:
                return
            top, at_top = floor, set(seen)
            for record in page.kept:
                ms = _ms(record.get(CURSOR))
                if ms is not None and ms > top:
                    top, at_top = ms, set()
                if ms == top:
                    at_top.add(str(record.get("id")))
            if top > floor:
                floor, seen, operator = top, at_top, "GTE"
                continue
            # a whole page modified in one instant: read that instant by offset, then go on
            # strictly after it
            tally.notes.append(f"more than {self.search_page_size} records modified at "
                               f"{_stamp(floor)}: paged by offset")
            done = yield from self._instant(table, names, path, floor, at_top, tally)
            if not done:
                return
            seen, operator = set(), "GT"

    def _instant(self, table: str, names: list[str], path: str, instant: int,
                 seen: set[str], tally: TableTally) -> Generator[bytes, None, bool]:
        """Every record modified at one instant; past the window, the rest from a full list.

        Returns:
            True when the search could read them all (go on after the instant); False when
            the full list was read instead (it already holds everything newer).
        """
        filters = [{"propertyName": OBJECTS[table], "operator": "EQ", "value": str(instant)}]
        paginator = _WindowPaginator(self.search_page_size, self.search_window)
        for raw in self.search.paginate(path, method="POST", paginator=paginator,
                                        json=self._query(table, names, filters)):
            page = _unread(raw[0], instant, seen)
            seen.update(str(record.get("id")) for record in page.kept)
            yield page.body
        if not paginator.capped:
            return True
        tally.notes.append(f"more than {self.search_window} records modified at "
                           f"{_stamp(instant)}: read the full list instead of search")
        for body in self.listed(table, names):
            yield _unread(body, instant, seen).body
        return False


# ---- resources --------------------------------------------------------------------------------


def _items(pages: Iterator[bytes], contract: Contract, landing: Path, tally: TableTally,
           batch_pages: int = BATCH_PAGES) -> Iterator[Any]:
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
        yield from pages_to_items(chain([body], pages), batch, tally)



def _objects(portal: _Portal, table: str, landing: Path, tally: SourceTally,
             batch_pages: int) -> DltResource:
    @dlt.resource(name=table, primary_key="id", write_disposition="merge", columns=_NEWEST)
    def records(
        updated: dlt.sources.incremental[Any] = dlt.sources.incremental(
            CURSOR, initial_value=None, on_cursor_value_missing="include"),
    ) -> Iterator[Any]:
        contract, names = portal.contract(table)
        since = _ms(updated.start_value)
        if since is None:  # first load: no cursor yet
            pages = portal.listed(table, names)
        else:
            pages = portal.changed(table, names, since, tally.table(table))
        yield from _items(pages, contract, landing, tally.table(table), batch_pages)

    return records


def _archived(portal: _Portal, table: str, landing: Path, tally: SourceTally,
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


def _client(base_url: str, access_token: str, tally: SourceTally, limiter: RateLimiter | None,
            http: HttpSettings | None) -> RawPageClient:
    return RawPageClient(base_url=base_url.rstrip("/"), auth=bearer(access_token),
                         session=vendor_session(limiter, tally.calls, http))


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
    """
    tally = tally or SourceTally("hubspot")
    landing = Path(landing_dir) if landing_dir else Path(".") / ".landing"
    portal = _Portal(
        base_url, _client(base_url, access_token, tally, limiter, http),
        _client(base_url, access_token, tally, _SearchLimiter(limiter) if limiter else None,
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

    return [
        *(_objects(portal, table, landing, tally, batch_pages) for table in OBJECTS),
        *(_archived(portal, table, landing, tally, batch_pages) for table in OBJECTS),
        _reference(OWNERS, owners, landing, tally),
        _reference(DEAL_PIPELINES, pipelines, landing, tally),
        _reference(DEAL_STAGES, stages, landing, tally),
        _reference(PROPERTIES, properties, landing, tally),
    ]
