"""NetSuite through SuiteQL as a dlt source (``raw_netsuite``), incremental on modification dates.

Every resource is one SuiteQL table read as ``SELECT t.*`` (a new custom field becomes a new
column) plus ``modified_at``: the table's modification date at full precision, from ``TO_CHAR``
(SuiteQL renders timestamps to the minute only). That column is dlt's incremental cursor: a run
asks for rows modified on or after the cursor's start value and merges them on NetSuite's key.
Pages are not parsed in Python: their bytes are batched and parsed by DuckDB into Arrow
(``ingestion.pages``), checked against the table's contract, and yielded to dlt; records that
break the contract go to ``raw_netsuite.quarantine`` with the reason.

Paging. SuiteQL answers 400 once ``offset + limit`` passes 100,000 rows, and serves deep offsets
ever more slowly, so a table keyed by one column is read in keyset windows of 10,000 rows: a
window is walked by offset, and the next one is a fresh ``... AND t.id > :last ORDER BY t.id``
from the last key of the window's last page (read from its tail bytes). A table whose key has
more than one column (``previoustransactionlink``) pages by offset in windows, the next window on
its first key column with ``>=``, so a group cut by a window is read again whole (the merge keeps
one copy).

Each run first asks for the table's latest modification and reads nothing modified after it.
A record changed while a long walk is under way is then left to the next run instead of being
skipped: without the bound, a later row read after the change would move the cursor past it.

Deletions come from NetSuite itself: ``deletedrecord`` (record type, record id, deletion date) is
loaded incrementally like any table, and is the mark that a raw row was deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import orjson
import pendulum
from dlt.sources import DltResource
from dlt.sources.helpers.rest_client.paginators import BasePaginator, SinglePagePaginator
from requests import HTTPError, Request, Response

from ingestion.http import HttpSettings, RateLimiter, RawPageClient, bearer, vendor_session
from ingestion.netsuite.settings import (
    BATCH_PAGES,
    CURSOR,
    DATE,
    DATE_FORMAT,
    EPOCH,
    ID,
    MAX_RESULTS,
    PAGE_SIZE,
    STAMP,
    STAMP_SQL,
    SUITEQL_PATH,
    TABLES,
    TIME_OF_DAY,
    TIMESTAMP,
    WINDOW_ROWS,
    Table,
)
from ingestion.pages import Batch, Contract, PageBatch, landing_folder
from ingestion.summary import SourceTally, pages_to_items
from pslake.errors import PslakeError

logger = logging.getLogger(__name__)


class SuiteQLPaginator(BasePaginator):
    """Paging of one SuiteQL query (POST): by offset within a window, by key between windows.

    Pages go by offset within a window of at most ``max_rows`` rows. With ``key`` and ``query``
    (a single-column key), the next window is a fresh query for keys past the last one on the
    window's last page (``query(last_key)``, offset 0), read from that page's tail bytes: no
    deep offsets, which SuiteQL serves ever more slowly and refuses past 100,000 rows, and one
    ``totalResults`` count per window rather than per page. Otherwise (or if the key cannot be
    found) the window ends, and ``capped`` tells whether rows remain.
    ``hasMore`` is read from the first bytes of the body, where NetSuite puts it before the
    ``items``, or from the bytes after the last ``]``; only an envelope shaped otherwise is
    parsed whole.
    """

    _HAS_MORE = re.compile(rb'"hasMore"\s*:\s*(true|false)')

    def __init__(self, limit: int = PAGE_SIZE, max_rows: int = WINDOW_ROWS,
                 head_bytes: int = 4096, key: str | None = None,
                 query: Callable[[int], str] | None = None) -> None:
        super().__init__()
        if not 1 <= limit <= max_rows:
            raise ValueError(f"netsuite: page size {limit} must be 1..{max_rows} (window rows)")
        self.limit = limit
        self.max_rows = max_rows
        self.offset = 0
        self.capped = False
        self.keyset_pages = 0
        self._head = head_bytes
        self._query = query
        self._key = (re.compile(rb'"' + key.encode() + rb'"\s*:\s*"?(-?\d+)')
                     if key and query else None)
        self._next_q: str | None = None

    def init_request(self, request: Request) -> None:
        """Ask for the first page of the window."""
        request.params = {"limit": self.limit, "offset": self.offset}

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Read ``hasMore`` and where the next page starts."""
        body = response.content
        more = self.has_more(body)
        window_full = self.offset + 2 * self.limit > self.max_rows
        if more and window_full and self._key is not None and self._query is not None:
            last = self.last_key(body)
            if last is not None:
                self._next_q = self._query(last)
                self.offset = 0
                self.keyset_pages += 1
                self.capped = False
                self._has_next_page = True
                return
        self.offset += self.limit
        self.capped = more and self.offset + self.limit > self.max_rows
        self._has_next_page = more and not self.capped

    def update_request(self, request: Request) -> None:
        """Ask for the next page: the next keys, or the next offset."""
        if self._next_q is not None:
            request.json = {"q": self._next_q}
            self._next_q = None
        request.params = {"limit": self.limit, "offset": self.offset}

    def last_key(self, body: bytes, tail_bytes: int = 16384) -> int | None:
        """The key of the page's last item (the query orders by it), from the tail bytes."""
        assert self._key is not None
        found = None
        for match in self._key.finditer(body, max(0, len(body) - tail_bytes)):
            found = match
        return int(found.group(1)) if found else None

    def has_more(self, body: bytes) -> bool:
        """``hasMore`` of a SuiteQL page, read without parsing the records."""
        head = body[:self._head]
        items = head.find(b'"items"')
        match = self._HAS_MORE.search(head, 0, items if items >= 0 else len(head))
        if match is None:
            match = self._HAS_MORE.search(body, body.rfind(b"]") + 1)
        if match is None:  # not where NetSuite puts it: read the whole envelope
            return bool(orjson.loads(body).get("hasMore"))
        return match.group(1) == b"true"


class _KeysetBatch(PageBatch):
    """A page batch that remembers the largest key it has parsed (where a window ended)."""

    last_key: int | None = None

    def read(self) -> Batch:
        batch = super().read()
        if batch.max_key is not None and (self.last_key is None or batch.max_key > self.last_key):
            self.last_key = int(batch.max_key)
        return batch


def _client(base_url: str, access_token: str, tally: SourceTally, limiter: RateLimiter | None,
            http: HttpSettings | None) -> RawPageClient:
    return RawPageClient(
        base_url=base_url.rstrip("/"),
        headers={"Prefer": "transient"},
        auth=bearer(access_token),
        session=vendor_session(limiter, tally.calls, http),
    )


def contract(table: Table, date_format: str = DATE_FORMAT) -> Contract:
    """The contract of a table: keys as ids, dates and timestamps parsed in the account's format.

    Args:
        table: The table.
        date_format: The account's date format as ``strptime`` wants it.
    """
    columns = {**dict.fromkeys(table.key, ID), table.modified: TIMESTAMP, **table.columns,
               CURSOR: "TIMESTAMPTZ"}
    by_type = {DATE: date_format, TIMESTAMP: date_format + TIME_OF_DAY}
    formats = {c: by_type[t] for c, t in columns.items() if t in by_type}
    return Contract(table=table.name, primary_key=table.key, cursor=CURSOR, columns=columns,
                    formats={**formats, CURSOR: STAMP}, drop=("links",))


def _stamp(value: Any) -> str:
    """A cursor value as ``TO_TIMESTAMP`` reads it back (UTC, to the second)."""
    if isinstance(value, str):
        value = pendulum.parse(value)
    return str(pendulum.instance(value).in_tz("UTC").strftime(STAMP))


def _suiteql(stamp: str) -> str:
    return f"TO_TIMESTAMP('{stamp}', '{STAMP_SQL}')"


def window_query(table: Table, since: str, until: str, after: int | None) -> str:
    """The SuiteQL of one keyset window: rows modified in ``[since, until]`` keyed past ``after``.

    Args:
        table: The table.
        since: The cursor's start value (``YYYY-MM-DD HH:MM:SS``).
        until: The table's latest modification when the run began.
        after: The largest key read so far; ``None`` for the first window.
    """
    modified = f"t.{table.modified}"
    where = [f"{modified} >= {_suiteql(since)}", f"{modified} <= {_suiteql(until)}"]
    if after is not None:
        # a single-column key is unique: start past it; a composite key's first column is not,
        # so its last group is read again whole
        where.append(f"t.{table.key[0]} {'>' if len(table.key) == 1 else '>='} {int(after)}")
    order = ", ".join(f"t.{k}" for k in table.key)
    return (f"SELECT t.*, TO_CHAR({modified}, '{STAMP_SQL}') AS {CURSOR} "
            f"FROM {table.name} t WHERE {' AND '.join(where)} ORDER BY {order}")


def _pages(client: RawPageClient, table: Table, q: str, paginator: BasePaginator,
           params: dict[str, Any] | None = None) -> Iterator[bytes]:
    """The raw pages of one SuiteQL query.

    A query NetSuite refuses (400, 404) becomes one line naming the table and NetSuite's reason
    (a table or field the account lacks, say). Credentials, throttling and server errors pass
    through as they are, for the runner to explain.
    """
    try:
        for page in client.paginate(SUITEQL_PATH, method="POST", params=params, json={"q": q},
                                    paginator=paginator, data_selector="items"):
            yield page[0]
    except HTTPError as exc:
        response = exc.response
        if response is None or response.status_code not in (400, 404):
            raise
        raise PslakeError(f"netsuite: {response.status_code} from {response.url.split('?')[0]} "
                          f"reading {table.name}; {_reason(response)}") from exc


def _reason(response: Response) -> str:
    try:
        details = orjson.loads(response.content).get("o:errorDetails") or [{}]
        return str(details[0].get("detail") or response.reason)
    except (orjson.JSONDecodeError, AttributeError, IndexError):
        return str(response.reason)


def _latest(client: RawPageClient, table: Table) -> str | None:
    """The table's latest modification (``None`` when it is empty), read before the walk."""
    q = f"SELECT TO_CHAR(MAX(t.{table.modified}), '{STAMP_SQL}') AS latest FROM {table.name} t"
    body = next(_pages(client, table, q, SinglePagePaginator(), {"limit": 1}))
    items = orjson.loads(body).get("items") or [{}]
    value = items[0].get("latest")
    # parsed and written back, so only a timestamp ever reaches the next query's text
    return None if value is None else dt.datetime.strptime(value, STAMP).strftime(STAMP)


def _empty(contract: Contract) -> Any:
    """A typed Arrow table without rows, so a table NetSuite has nothing in still exists."""
    columns = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in contract.columns.items())
    with duckdb.connect() as con:
        return con.sql(f"SELECT {columns} LIMIT 0").to_arrow_table()


def _resource(client: RawPageClient, table: Table, date_format: str, landing: Path,
              tally: SourceTally, batch_pages: int, page_size: int,
              window_rows: int) -> DltResource:
    rules = contract(table, date_format)

    @dlt.resource(name=table.name, primary_key=list(table.key), write_disposition="merge")
    def records(
        modified_at: dlt.sources.incremental[Any] = dlt.sources.incremental(
            CURSOR, initial_value=pendulum.parse(EPOCH), on_cursor_value_missing="include"),
    ) -> Iterator[Any]:
        counts = tally.table(table.name)
        since = _stamp(modified_at.start_value)
        until = _latest(client, table)
        first_load = since == EPOCH
        if until is None or until < since:
            if first_load:
                yield _empty(rules)
            return
        after: int | None = None
        windows = 0
        batch = _KeysetBatch(landing, rules, selector="items", max_pages=batch_pages)
        with batch:
            while True:
                windows += 1
                paginator = SuiteQLPaginator(
                    page_size, window_rows, key=table.key[0] if len(table.key) == 1 else None,
                    query=lambda last: window_query(table, since, until, last))
                q = window_query(table, since, until, after)
                yield from pages_to_items(_pages(client, table, q, paginator), batch, counts)
                if not paginator.capped:
                    break
                after = _next_window(table, batch.last_key, after, window_rows)
        if first_load and counts.received == 0:
            yield _empty(rules)
        logger.debug("netsuite: %s read in %d window(s) since %s", table.name, windows, since)

    return records


def _next_window(table: Table, last_key: int | None, after: int | None, window_rows: int) -> int:
    """Where the next window starts; raises when the last one made no progress."""
    if last_key is None or (after is not None and last_key <= after):
        raise PslakeError(
            f"netsuite: {table.name} keyset paging made no progress past "
            f"{table.key[0]} {after} (more than {window_rows:,} rows share it, or the records "
            "came without their key); raise the source's window_rows (at most 100,000)")
    return last_key


@dlt.source(name="netsuite", max_table_nesting=0)
def netsuite_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    account_id: str = dlt.config.value,
    landing_dir: str | None = None,
    tally: SourceTally | None = None,
    limiter: RateLimiter | None = None,
    http: HttpSettings | None = None,
    batch_pages: int = BATCH_PAGES,
    date_format: str = DATE_FORMAT,
    page_size: int = PAGE_SIZE,
    window_rows: int = WINDOW_ROWS,
) -> list[DltResource]:
    """The NetSuite tables pslake reads, one resource each (``settings.RESOURCES``).

    Args:
        base_url: The REST root, ``https://<account>.suitetalk.api.netsuite.com`` or the
            sandbox's ``/netsuite`` URL; queries go to ``/services/rest/query/v1/suiteql``.
        access_token: An OAuth 2.0 access token.
        account_id: The account id; the host of ``base_url`` already names the account, so
            it is taken for uniformity with the other sources and not sent.
        landing_dir: Where raw pages wait for their batch (the pipeline's working folder).
        tally: Counts for the run summary.
        limiter: The client-side limit (NetSuite allows a number of concurrent requests).
        http: Timeout and retry settings.
        batch_pages: Pages per DuckDB parse.
        date_format: The account's date format, as ``strptime`` wants it; timestamps add
            ``%I:%M %p``.
        page_size: Rows per SuiteQL page (1..1000).
        window_rows: Rows walked by offset before the next keyset window (at most 100,000).
    """
    tally = tally or SourceTally("netsuite")
    landing = landing_folder(landing_dir)
    client = _client(base_url, access_token, tally, limiter, http)
    window_rows = min(window_rows, MAX_RESULTS)
    if not 1 <= page_size <= min(window_rows, 1000):
        raise PslakeError(f"netsuite: page_size {page_size} must be 1..1000 and at most "
                          f"window_rows ({window_rows})")
    return [_resource(client, table, date_format, landing, tally, batch_pages, page_size,
                      window_rows) for table in TABLES.values()]
