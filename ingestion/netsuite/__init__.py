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

This module holds the source and its resources; the client, ``SuiteQLPaginator`` and the
helpers that write and run SuiteQL are in ``ingestion.netsuite.client``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pendulum
from dlt.sources import DltResource

from ingestion.http import HttpSettings, RawPageClient
from ingestion.netsuite.client import (
    SuiteQLPaginator,
    latest_modification,
    make_client,
    query_pages,
    window_query,
)
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
    TABLES,
    TIME_OF_DAY,
    TIMESTAMP,
    WINDOW_ROWS,
    Table,
)
from ingestion.pages import Batch, Contract, PageBatch, landing_folder, session
from ingestion.summary import SourceTally, pages_to_items
from pslake.errors import PslakeError
from pslake.ratelimit import RateLimiter

logger = logging.getLogger(__name__)


class _KeysetBatch(PageBatch):
    """A page batch that remembers the largest key it has parsed (where a window ended)."""

    last_key: int | None = None

    def read(self) -> Batch:
        batch = super().read()
        if batch.max_key is not None and (self.last_key is None or batch.max_key > self.last_key):
            self.last_key = int(batch.max_key)
        return batch


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


def _empty(contract: Contract) -> Any:
    """A typed Arrow table without rows, so a table NetSuite has nothing in still exists."""
    columns = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in contract.columns.items())
    with session() as con:
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
        until = latest_modification(client, table)
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
                yield from pages_to_items(query_pages(client, table, q, paginator), batch, counts)
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
    client = make_client(base_url, access_token, tally, limiter, http)
    window_rows = min(window_rows, MAX_RESULTS)
    if not 1 <= page_size <= min(window_rows, 1000):
        raise PslakeError(f"netsuite: page_size {page_size} must be 1..1000 and at most "
                          f"window_rows ({window_rows})")
    return [_resource(client, table, date_format, landing, tally, batch_pages, page_size,
                      window_rows) for table in TABLES.values()]
