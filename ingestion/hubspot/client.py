"""HubSpot's HTTP side: the REST client, the paginators and the readers of raw pages.

``make_client`` builds a run's client (bearer auth, rate limit, retries) and ``SearchLimiter``
the search endpoint's own budget. ``Portal`` is one run's view of the portal: its schemas and
property definitions (read once), the list, search and v4 association calls, and the
incremental search that pages past the 10,000-result window (``_WindowPaginator``, ``_unread``).
``AssociationReader`` reads associations by v4 batch read and turns each answer into the Arrow
rows the associations merge takes. The dlt source and its resources are in ``__init__.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
import pyarrow as pa
from dlt.sources.helpers.rest_client.paginators import (
    JSONResponseCursorPaginator,
    SinglePagePaginator,
)
from requests import Response

from ingestion.http import HttpSettings, RawPageClient, bearer, vendor_session
from ingestion.hubspot.settings import (
    ASSOCIATION_VERSION,
    ASSOCIATIONS,
    ASSOCIATIONS_PATH,
    CURSOR,
    CUSTOM_OBJECT,
    MAX_PROPS_LENGTH,
    NO_ASSOCIATIONS,
    OBJECTS,
    OBJECTS_PATH,
    PROPERTIES_PATH,
    PROPERTY_TYPES,
    RECORD_COLUMNS,
    SCHEMAS_PATH,
    SEARCH_CALLS_PER_S,
)
from ingestion.pages import Contract
from ingestion.summary import SourceTally, TableTally
from pslake.errors import PslakeError
from pslake.ratelimit import RateLimit, RateLimiter

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


def epoch_ms(value: Any) -> int | None:
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


def make_client(base_url: str, access_token: str, tally: SourceTally,
                limiter: RateLimiter | None, http: HttpSettings | None) -> RawPageClient:
    """The REST client of one run: bearer auth, the rate limit and retries, calls counted."""
    return RawPageClient(base_url=base_url.rstrip("/"), auth=bearer(access_token),
                         session=vendor_session(limiter, tally.calls, http))


class SearchLimiter(RateLimiter):
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
        ms = epoch_ms(record.get(CURSOR))
        if ms is None or ms > floor or (ms == floor and str(record.get("id")) not in seen):
            kept.append(record)
    more = bool((page.get("paging") or {}).get("next"))
    if len(kept) == len(records):
        return _Page(body, kept, more)
    return _Page(orjson.dumps({"results": kept}), kept, more)


class Portal:
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
                ms = epoch_ms(record.get(CURSOR))
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



class AssociationReader:
    """Reads associations by v4 batch read, each record and pair type at most once a run."""

    def __init__(self, portal: Portal, tally: TableTally, batch_size: int) -> None:
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
