"""NetSuite's HTTP side: the REST client, the SuiteQL paginator and the query helpers.

``make_client`` builds a run's client (bearer auth, ``Prefer: transient``, rate limit, retries).
``SuiteQLPaginator`` pages one SuiteQL POST by offset within a window and by key between windows.
``window_query`` writes the SuiteQL of one keyset window, ``query_pages`` runs a query and yields
its raw pages (a refused query becomes one line naming the table), and ``latest_modification``
asks for a table's latest modification before a run reads it. The dlt source and its resources
are in ``__init__.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from dlt.sources.helpers.rest_client.paginators import BasePaginator, SinglePagePaginator
from requests import HTTPError, Request, Response

from ingestion.http import HttpSettings, RawPageClient, bearer, vendor_session
from ingestion.netsuite.settings import (
    CURSOR,
    PAGE_SIZE,
    STAMP,
    STAMP_SQL,
    SUITEQL_PATH,
    WINDOW_ROWS,
    Table,
)
from ingestion.summary import SourceTally
from pslake.errors import PslakeError
from pslake.ratelimit import RateLimiter


def make_client(base_url: str, access_token: str, tally: SourceTally,
                limiter: RateLimiter | None, http: HttpSettings | None) -> RawPageClient:
    """The REST client of one run: bearer auth, transient queries, the rate limit and retries."""
    return RawPageClient(
        base_url=base_url.rstrip("/"),
        headers={"Prefer": "transient"},
        auth=bearer(access_token),
        session=vendor_session(limiter, tally.calls, http),
    )


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


def query_pages(client: RawPageClient, table: Table, q: str, paginator: BasePaginator,
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


def latest_modification(client: RawPageClient, table: Table) -> str | None:
    """The table's latest modification (``None`` when it is empty), read before the walk."""
    q = f"SELECT TO_CHAR(MAX(t.{table.modified}), '{STAMP_SQL}') AS latest FROM {table.name} t"
    body = next(query_pages(client, table, q, SinglePagePaginator(), {"limit": 1}))
    items = orjson.loads(body).get("items") or [{}]
    value = items[0].get("latest")
    # parsed and written back, so only a timestamp ever reaches the next query's text
    return None if value is None else dt.datetime.strptime(value, STAMP).strftime(STAMP)
