"""Harvest v2 as a dlt source (``raw_harvest``), incremental on ``updated_at``.

Every resource follows Harvest's ``links.next`` with dlt's REST client, asks only for records
updated since the last load (``updated_since``) and merges on Harvest's ``id``. Pages are not
parsed in Python: their bytes are batched and parsed by DuckDB into Arrow (``ingestion.pages``),
checked against the table's contract, and yielded to dlt; records that break the contract go to
``raw_harvest.quarantine`` with the reason. The cursor is dlt's incremental state, which
advances only when the load completes.

Harvest forgets deleted records, so deletions are found by scanning ids: each run lists the ids
of the reference tables, and of time entries and expenses spent in the last
``deletion_window_days``, and any id the warehouse holds there that Harvest no longer returns is
recorded in ``raw_harvest.deleted_records``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dlt
import pendulum
from dlt.sources import DltResource

from ingestion.harvest.settings import BIG, EPOCH, PER_PAGE, REFERENCE, USER_AGENT
from ingestion.http import (
    HttpSettings,
    RateLimiter,
    RawPageClient,
    TailLinkPaginator,
    bearer,
    server_time,
    vendor_session,
)
from ingestion.pages import Contract, PageBatch, landing_folder, scan_ids
from ingestion.summary import SourceTally, pages_to_items

BATCH_PAGES = 50  # 100k time entries per DuckDB parse
DELETED = "deleted_records"
LAST_SCAN = "last_scan"  # in the deleted_records resource's state


def _client(base_url: str, access_token: str, account_id: str, tally: SourceTally,
            limiter: RateLimiter | None, http: HttpSettings | None) -> RawPageClient:
    return RawPageClient(
        base_url=f"{base_url.rstrip('/')}/v2",
        headers={"Harvest-Account-Id": account_id, "User-Agent": USER_AGENT},
        auth=bearer(access_token),
        paginator=TailLinkPaginator(),
        session=vendor_session(limiter, tally.calls, http),
    )


def _since(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(pendulum.instance(value).in_tz("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"))


def _resource(client: RawPageClient, contract: Contract, landing: Path, tally: SourceTally,
              batch_pages: int, cursor_lag_s: float) -> DltResource:
    name = contract.table

    @dlt.resource(name=name, primary_key="id", write_disposition="merge")
    def records(
        updated_at: dlt.sources.incremental[Any] = dlt.sources.incremental(
            "updated_at", initial_value=pendulum.parse(EPOCH),
            on_cursor_value_missing="include", lag=cursor_lag_s or None),
    ) -> Iterator[Any]:
        params = {"per_page": PER_PAGE, "updated_since": _since(updated_at.start_value)}
        with PageBatch(landing, contract, selector=name, max_pages=batch_pages) as batch:

            def pages() -> Iterator[bytes]:
                for page in client.paginate(name, params=params, data_selector=name):
                    if batch.until is None:  # the server's clock when the read began
                        batch.until = server_time(page.response, margin_s=1)
                    yield page[0]

            yield from pages_to_items(pages(), batch, tally.table(name))

    return records


def _id_pages(client: RawPageClient, name: str, window_from: str | None) -> Iterator[bytes]:
    params: dict[str, Any] = {"per_page": PER_PAGE}
    if window_from is not None:
        params["from"] = window_from
    for page in client.paginate(name, params=params, data_selector=name):
        yield page[0]


def _is_deleted(client: RawPageClient, name: str, record_id: int) -> bool:
    """Whether Harvest answers 404 for the record (any other answer: it still exists)."""
    response = client.get(f"{name}/{record_id}")
    if response.status_code not in (200, 404):
        response.raise_for_status()
    return response.status_code == 404


def _deletions(client: RawPageClient, known: Mapping[str, set[int]], landing: Path,
               window_from: str, tally: SourceTally) -> DltResource:
    """Ids the warehouse holds (in scope) that Harvest no longer lists: deleted in Harvest."""

    @dlt.resource(name=DELETED, primary_key=("resource", "id"), write_disposition="merge")
    def deleted() -> Iterator[list[dict[str, Any]]]:
        now = pendulum.now("UTC")
        complete = True
        for name, ids in known.items():
            if not ids:
                continue
            window = window_from if name in BIG else None
            seen, missing = scan_ids(_id_pages(client, name, window), landing, name)
            if missing:  # a record without its id could be any of them: mark nothing
                tally.table(name).notes.append(
                    f"deletion scan skipped: {missing} listed record(s) had no id")
                complete = False
                continue
            gone = sorted(ids - seen)
            if window is not None:  # out of the window is not gone: a date may have moved
                gone = [i for i in gone if _is_deleted(client, name, i)]
            tally.table(name).deleted += len(gone)
            if gone:
                yield [{"resource": name, "id": i, "detected_at": now} for i in gone]
        if complete:  # when the scan is next due is counted from here (see the runner)
            dlt.current.resource_state()[LAST_SCAN] = now.isoformat()

    return deleted


@dlt.source(name="harvest", max_table_nesting=0)
def harvest_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    account_id: str = dlt.config.value,
    landing_dir: str | None = None,
    tally: SourceTally | None = None,
    limiter: RateLimiter | None = None,
    known_ids: Mapping[str, set[int]] | None = None,
    deletion_from: str | None = None,
    batch_pages: int = BATCH_PAGES,
    http: HttpSettings | None = None,
    cursor_lag_s: float = 0.0,
) -> list[DltResource]:
    """The Harvest resources pslake reads.

    Args:
        base_url: ``https://api.harvestapp.com`` or the sandbox's ``/harvest`` URL.
        access_token: A personal access token or OAuth token.
        account_id: The Harvest account id (sent as ``Harvest-Account-Id``).
        landing_dir: Where raw pages wait for their batch (the pipeline's working folder).
        tally: Counts for the run summary.
        limiter: The client-side rate limit (Harvest allows 100 calls per 15 s).
        known_ids: Live ids the warehouse holds, per resource (for time entries and expenses,
            those spent on or after ``deletion_from``); ``None`` skips the deletion scan, and
            an empty mapping (a first or full load, which sees everything) only records that a
            scan took place.
        deletion_from: ISO date from which time entries and expenses are scanned for deletions.
        batch_pages: Pages per DuckDB parse.
        http: Timeout and retry settings.
        cursor_lag_s: Read again the changes of this many seconds before the cursor (dlt's
            incremental ``lag``), for a vendor that stamps some changes late (clocks of its
            servers apart, changes committed after their stamp); the merge keeps one copy. 0
            (the default) reads from the cursor (``SOURCES__HARVEST__CURSOR_LAG_S``).
    """
    tally = tally or SourceTally("harvest")
    landing = landing_folder(landing_dir)
    client = _client(base_url, access_token, account_id, tally, limiter, http)
    resources = [_resource(client, contract, landing, tally, batch_pages, cursor_lag_s)
                 for contract in (*REFERENCE.values(), *BIG.values())]
    if known_ids is not None:
        resources.append(_deletions(client, known_ids, landing, deletion_from or "1970-01-01",
                                    tally))
    return resources
