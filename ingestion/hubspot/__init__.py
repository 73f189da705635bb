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
See ``README.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import dlt
import orjson
import pyarrow as pa
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
    ASSOCIATION_BATCH_SIZE,
    ASSOCIATION_COLUMNS,
    ASSOCIATION_PASS_DAYS,
    ASSOCIATION_VERSION,
    ASSOCIATION_WRITE_DISPOSITION,
    ASSOCIATIONS,
    ASSOCIATIONS_PATH,
    ASSOCIATIONS_TABLE,
    BATCH_PAGES,
    CURSOR,
    CUSTOM_OBJECT,
    DEAL_PIPELINES,
    DEAL_PIPELINES_PATH,
    DEAL_STAGES,
    MAX_PROPS_LENGTH,
    NO_ASSOCIATIONS,
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
from ingestion.pages import Contract, PageBatch, landing_folder
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
        self.listed_in_full: set[str] = set()  # objects this run lists whole (first loads)

    # ---- what the portal says about itself ------------------------------------------------

    def body(self, path: str) -> bytes:
        """One unpaged answer (schemas, properties, pipelines), fetched once per run."""
        with self._lock:
            if path not in self._bodies:
                page = next(iter(self.client.paginate(path, paginator=SinglePagePaginator(),
                                                      data_selector="results")))
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
        for page in self.client.paginate(path, params=params, paginator=paginator,
                                             data_selector="results"):
            yield page[0]

    def listed(self, table: str, names: list[str], archived: bool = False) -> Iterator[bytes]:
        """Every live (or every archived) record of an object, with all its properties."""
        params = {"limit": self.page_size, "archived": "true" if archived else "false",
                  "properties": _chunks(names)}
        yield from self.pages(f"{OBJECTS_PATH}/{self.object_path(table)}", params)

    def live_ids(self, table: str) -> Iterator[tuple[list[int], int]]:
        """The ids of every live record, a page at a time: ``(ids, records without an id)``."""
        params = {"limit": self.page_size, "archived": "false", "properties": "hs_object_id"}
        for body in self.pages(f"{OBJECTS_PATH}/{self.object_path(table)}", params):
            ids, missing = [], 0
            for record in orjson.loads(body).get("results") or []:
                key = str(record.get("id") or "")
                if key.isdigit():
                    ids.append(int(key))
                else:
                    missing += 1
            yield ids, missing

    def associations(self, table: str, to_table: str, inputs: list[dict[str, str]]) -> bytes:
        """One v4 batch read: the associations of ``inputs`` (``{id, after?}``) to ``to_table``."""
        path = (f"{ASSOCIATIONS_PATH}/{self.object_path(table)}/{self.object_path(to_table)}"
                "/batch/read")
        page = next(iter(self.client.paginate(path, method="POST", json={"inputs": inputs},
                                              data_selector="results",
                                              paginator=SinglePagePaginator())))
        body: bytes = page[0]
        return body

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
                                                 data_selector="results",
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
                                        data_selector="results",
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



def _objects(portal: _Portal, table: str, landing: Path, tally: SourceTally,
             batch_pages: int) -> DltResource:
    @dlt.resource(name=table, primary_key="id", write_disposition="merge", columns=_NEWEST)
    def records(
        updated: dlt.sources.incremental[Any] = dlt.sources.incremental(
            CURSOR, initial_value=None, on_cursor_value_missing="include"),
    ) -> Iterator[Any]:
        contract, names = portal.contract(table)
        since = _ms(updated.start_value)
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


# ---- associations -----------------------------------------------------------------------------

_Row = tuple[int, int, int | None, str | None, str | None]  # from, to, type id, category, label
_ASSOCIATION_SCHEMA = pa.schema([
    pa.field("from_type", pa.string()), pa.field("from_id", pa.int64()),
    pa.field("to_type", pa.string()), pa.field("to_id", pa.int64()),
    pa.field("type_id", pa.int64()), pa.field("category", pa.string()),
    pa.field("label", pa.string()), pa.field(ASSOCIATION_VERSION, pa.string(), nullable=False)])


@dataclass
class _AssociationPage:
    """One batch read's answer, per record id asked."""

    rows: dict[str, list[_Row]]
    more: dict[str, str]  # id -> ``after`` of its next page of associations
    none: set[str]  # ids HubSpot has no association of the type for
    failed: dict[str, str]  # id -> HubSpot's message


def _association_page(body: bytes, asked: Iterable[str]) -> _AssociationPage:
    """Parse a v4 batch read answer (200, or 207 with ``errors``).

    An id HubSpot answers ``NO_ASSOCIATIONS_FOUND`` for, or leaves out of a page without other
    errors, has none. Any other error fails its ids, or every unanswered id when the error names
    none: a failed record keeps its rows as they are.
    """
    page = orjson.loads(body)
    out = _AssociationPage({}, {}, set(), {})
    for result in page.get("results") or []:
        key = str((result.get("from") or {}).get("id"))
        rows = out.rows.setdefault(key, [])
        for target in result.get("to") or []:
            to_id = int(target["toObjectId"])
            for kind in target.get("associationTypes") or []:
                type_id = kind.get("typeId")
                rows.append((int(key), to_id, None if type_id is None else int(type_id),
                             kind.get("category"), kind.get("label")))
        after = ((result.get("paging") or {}).get("next") or {}).get("after")
        if after:
            out.more[key] = str(after)
    unattributed: str | None = None
    for error in page.get("errors") or []:
        context = error.get("context") or {}
        ids = [str(i) for i in context.get("fromObjectId") or context.get("ids") or []]
        message = str(error.get("message") or error.get("category") or "error")
        if ids and error.get("subCategory") == NO_ASSOCIATIONS:
            out.none.update(ids)
        elif ids:
            out.failed.update(dict.fromkeys(ids, message))
        else:
            unattributed = message
    for key in asked:
        if key not in out.rows and key not in out.none and key not in out.failed:
            if unattributed is None:
                out.none.add(key)
            else:
                out.failed[key] = unattributed
    return out


def _version(*values: Any) -> str:
    """The row version scd2 compares: a hash of the row's values (JSON keeps null apart)."""
    return hashlib.blake2b(orjson.dumps(values), digest_size=16).hexdigest()


def _association_table(table: str, to_table: str, rows: Iterable[_Row],
                       marked: Iterable[int | None]) -> pa.Table:
    """Rows for the merge: the associations read, and a marker (``to_id`` null) per id marked.

    A marker's ``from_id`` is a record read without associations, or null for the whole pair
    type (a full pass). Markers are not loaded; they scope the merge (settings.py).
    """
    columns: dict[str, list[Any]] = {name: [] for name in _ASSOCIATION_SCHEMA.names}
    values: tuple[Any, ...]
    for values in chain(rows, ((key, None, None, None, None) for key in marked)):
        from_id, to_id, type_id, category, label = values
        for name, value in (("from_type", table), ("from_id", from_id), ("to_type", to_table),
                            ("to_id", to_id), ("type_id", type_id), ("category", category),
                            ("label", label)):
            columns[name].append(value)
        columns[ASSOCIATION_VERSION].append(
            _version(table, from_id, to_table, to_id, type_id, category, label))
    return pa.Table.from_pydict(columns, schema=_ASSOCIATION_SCHEMA)


def _record_ids(item: Any) -> list[int]:
    """The ids of a batch of records (rows or quarantined rows) the object resource yielded."""
    if isinstance(item, pa.Table) and "id" in item.column_names:
        return [int(i) for i in item.column("id").to_pylist() if i is not None]
    return []


class _AssociationReader:
    """Reads associations by v4 batch read, each record and pair type at most once a run."""

    def __init__(self, portal: _Portal, tally: TableTally, batch_size: int) -> None:
        self.portal = portal
        self.tally = tally
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._read: dict[tuple[str, str], set[int]] = {}

    def _claim(self, table: str, to_table: str, ids: Iterable[int]) -> list[int]:
        with self._lock:
            done = self._read.setdefault((table, to_table), set())
            fresh = [i for i in dict.fromkeys(ids) if i not in done]
            done.update(fresh)
            return fresh

    def _release(self, table: str, to_table: str, ids: Iterable[int]) -> None:
        with self._lock:
            self._read[(table, to_table)].difference_update(ids)

    def read(self, table: str, ids: Iterable[int]) -> Generator[pa.Table, None, bool]:
        """The associations of the records not read yet this run, per pair type.

        A record that HubSpot answered for gets its rows, or a marker when it has none (the
        merge then ends its live rows that were not read again).

        Returns:
            True when HubSpot answered for every record.
        """
        ids = list(ids)
        complete = True
        for to_table in ASSOCIATIONS[table]:
            fresh = self._claim(table, to_table, ids)
            for start in range(0, len(fresh), self.batch_size):
                chunk = fresh[start:start + self.batch_size]
                clock = time.monotonic()
                rows, failed = self._pair(table, to_table, [str(i) for i in chunk])
                answered = [i for i in chunk if str(i) not in failed]
                if len(answered) < len(chunk):
                    complete = False
                    self._release(table, to_table, (i for i in chunk if str(i) in failed))
                    key, message = next((str(i), failed[str(i)]) for i in chunk
                                        if str(i) in failed)
                    self.tally.notes.append(
                        f"{table}->{to_table}: no answer for {len(chunk) - len(answered)} "
                        f"records (e.g. {key}: {message}); their associations stay as they were")
                found = [row for i in answered for row in rows.get(str(i), [])]
                empty = [i for i in answered if not rows.get(str(i))]
                self.tally.received += len(found)
                self.tally.passed += len(found)
                self.tally.seconds += time.monotonic() - clock
                if found or empty:
                    yield _association_table(table, to_table, found, empty)
        return complete

    def _pair(self, table: str, to_table: str, keys: list[str]
              ) -> tuple[dict[str, list[_Row]], dict[str, str]]:
        """Every association of ``keys`` to ``to_table``, following each record's paging."""
        rows: dict[str, list[_Row]] = {}
        failed: dict[str, str] = {}
        pending: list[dict[str, str]] = [{"id": key} for key in keys]
        while pending:
            inputs, pending = pending[:self.batch_size], pending[self.batch_size:]
            page = _association_page(self.portal.associations(table, to_table, inputs),
                                     [i["id"] for i in inputs if "after" not in i])
            self.tally.pages += 1
            for key, found in page.rows.items():
                rows.setdefault(key, []).extend(found)
            failed.update(page.failed)
            pending.extend({"id": key, "after": after} for key, after in page.more.items()
                           if key not in failed)
        for key in failed:
            rows.pop(key, None)
        return rows, failed

    def full_pass(self, table: str) -> Generator[pa.Table, None, bool]:
        """The associations of every live record of ``table`` not read yet this run.

        When every record was answered for, a marker per pair type also ends the live rows of
        records no longer live or no longer associated (archived, deleted, or read earlier
        without this run seeing the change).

        Returns:
            True when the pass was complete.
        """
        complete = True
        chunk: list[int] = []
        listed = 0
        for ids, missing in self.portal.live_ids(table):
            listed += len(ids) + missing
            if missing:
                complete = False
                self.tally.notes.append(f"{table}: {missing} listed records without an id: "
                                        "full association pass incomplete")
            chunk.extend(ids)
            while len(chunk) >= self.batch_size:
                complete &= yield from self.read(table, chunk[:self.batch_size])
                chunk = chunk[self.batch_size:]
        complete &= yield from self.read(table, chunk)
        self.tally.notes.append(f"full association pass over {listed} {table}"
                                + ("" if complete else " (incomplete: nothing ended by type)"))
        if complete:
            for to_table in ASSOCIATIONS[table]:
                yield _association_table(table, to_table, [], [None])
        return complete


def _has_cursor(table: str) -> bool:
    """Whether an object's resource kept a cursor from an earlier run (dlt's resource state)."""
    resources = dlt.current.source_state().get("resources", {})
    cursors = resources.get(table, {}).get("incremental", {})
    return any(c.get("last_value") is not None for c in cursors.values())


def _associations_from(records: DltResource, table: str,
                       reader: _AssociationReader) -> DltResource:
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


def _association_pass(portal: _Portal, reader: _AssociationReader,
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

    records = {table: _objects(portal, table, landing, tally, batch_pages) for table in OBJECTS}
    reader = _AssociationReader(portal, tally.table(ASSOCIATIONS_TABLE), association_batch_size)
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
