"""The ingest runner: the three vendor sources into ``DATA_DIR/warehouse.duckdb``.

One dlt pipeline per vendor (``pslake_<vendor>``, dataset ``raw_<vendor>``), all in one DuckDB
file, with dlt's working folder at ``DATA_DIR/dlt``. A run:

1. resolves every vendor's settings first (a wrong or missing setting fails before any work);
2. restores a vendor's cursors from the warehouse when dlt's working folder was lost (its
   ``_dlt_pipeline_state``, newest complete load), then finishes any package a killed run left
   behind (dlt's cursor advances at the end of extract, so a pending package must be loaded,
   never dropped);
3. extracts the vendors in parallel threads, one per vendor (the vendors' own rate limits are
   independent), and loads them one at a time (one writer on the DuckDB file);
4. reports per table: received, loaded, new, updated, quarantined, deletions marked, seconds;
   and per vendor the calls, retries by cause and time spent waiting for the rate limit.

A first SIGTERM or SIGINT stops new work and lets running load jobs finish, leaving the package
pending for the next run; a second stops the process (dlt's signal handling, installed for the
whole run from the main thread).

Loader format is always parquet with compression off: dlt's default for DuckDB
(``insert_values``) is ~50x slower and used 4 GiB on 100k rows. The big tables load with
``replace`` on their first load (a first load as ``merge`` is ~9x slower) and ``merge`` after.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dlt
import duckdb
import requests
from dlt.common.exceptions import SignalReceivedException
from dlt.common.runtime import signals
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from ingestion.crash import crash_point
from ingestion.crash import progress as crash_progress
from ingestion.http import HttpSettings
from ingestion.pages import QUARANTINE_TABLE
from ingestion.settings import (
    NEEDS_ACCOUNT,
    VENDORS,
    Vendor,
    VendorSettings,
    env_name,
    vendor_settings,
)
from ingestion.summary import SourceTally
from pslake import settings
from pslake.errors import PslakeError
from pslake.ratelimit import RateLimit, RateLimiter

Progress = Callable[[str], None]
WAREHOUSE_FILE = "warehouse.duckdb"
DLT_SUBDIR = "dlt"
LANDING_SUBDIR = "landing"
DELETION_WINDOW_DAYS = 60
DELETION_SCAN_HOURS = 24.0
TICK_S = 5.0

# dlt settings pslake always wants (environment names dlt reads; a user's own value wins)
# The load step's DuckDB: by default it may take 80% of the machine's memory for its buffers,
# and it keeps insertion order (more memory on big inserts, and raw tables have no order).
WAREHOUSE_CONFIG = {"memory_limit": "1GB", "preserve_insertion_order": False}
_DLT_ENV = {
    "DATA_WRITER__DISABLE_COMPRESSION": "true",
    "NORMALIZE__LOADER_FILE_FORMAT": "parquet",
    # Arrow items get the load id too (dicts always do): dbt staging reads only rows of complete
    # loads. Once on it must stay on: the column is NOT NULL in the raw tables.
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
}


@dataclass(frozen=True)
class SourceSpec:
    """How the runner builds and treats one vendor's source."""

    vendor: Vendor
    factory: str                    # "module:function"
    bulk: frozenset[str]            # big tables: replace on the first load, merge after
    vendor_limit: RateLimit         # the vendor's documented budget (used for real vendors)


SPECS: dict[Vendor, SourceSpec] = {
    "hubspot": SourceSpec("hubspot", "ingestion.hubspot:hubspot_source", frozenset(),
                          RateLimit(calls=100, window_s=10.0)),
    "harvest": SourceSpec("harvest", "ingestion.harvest:harvest_source",
                          frozenset({"time_entries", "expenses"}),
                          RateLimit(calls=100, window_s=15.0)),
    "netsuite": SourceSpec("netsuite", "ingestion.netsuite:netsuite_source",
                           frozenset({"timebill", "transaction", "transactionline"}),
                           RateLimit(concurrent=5)),
}


@dataclass
class VendorRun:
    """One vendor's part of a run."""

    vendor: Vendor
    settings: VendorSettings
    tally: SourceTally
    limiter: RateLimiter | None
    seconds: float = 0.0
    error: str | None = None


@dataclass
class IngestResult:
    """What ``ingest`` did."""

    warehouse: Path
    runs: list[VendorRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[str]:
        """One line per vendor that failed."""
        return [r.error for r in self.runs if r.error]


def warehouse_path(data_dir: Path | None = None) -> Path:
    """``DATA_DIR/warehouse.duckdb``."""
    return settings.data_dir(data_dir) / WAREHOUSE_FILE


def _pipeline(vendor: Vendor, data_dir: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=f"pslake_{vendor}",
        destination=dlt.destinations.duckdb(DuckDbCredentials(
            str(data_dir / WAREHOUSE_FILE), global_config=WAREHOUSE_CONFIG)),
        dataset_name=f"raw_{vendor}",
        pipelines_dir=str(data_dir / DLT_SUBDIR),
        progress=crash_progress(),  # dlt's null collector unless a crash point is armed
    )


def _limiter(spec: SourceSpec, vs: VendorSettings) -> RateLimiter | None:
    """The vendor's budget for real vendors; the sandbox enforces its own only as a fault."""
    calls: Any = dlt.config.get(f"sources.{spec.vendor}.rate_limit_calls")
    window: Any = dlt.config.get(f"sources.{spec.vendor}.rate_limit_window_s")
    concurrent: Any = dlt.config.get(f"sources.{spec.vendor}.rate_limit_concurrent")
    if calls or concurrent:
        return RateLimiter(RateLimit(int(calls) if calls else None,
                                     float(window or 1.0),
                                     int(concurrent) if concurrent else None))
    if vs.origin == "config":
        return RateLimiter(spec.vendor_limit)
    return None


def _resource_state(pipeline: dlt.Pipeline, vendor: str, resource: str) -> dict[str, Any]:
    """A resource's dlt state as the pipeline last committed it (empty before its first run)."""
    sources = pipeline.state.get("sources", {})
    state: dict[str, Any] = sources.get(vendor, {}).get("resources", {}).get(resource, {})
    return state


def _incremental_done(pipeline: dlt.Pipeline, vendor: str, table: str) -> bool:
    """Whether a resource already has a cursor (so this is not its first load)."""
    cursors = _resource_state(pipeline, vendor, table).get("incremental", {})
    return any(c.get("last_value") is not None for c in cursors.values())


def open_warehouse(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse, or say in one line that another process holds it."""
    try:
        return duckdb.connect(str(warehouse))
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        holder = re.search(r"PID (\d+)", str(exc))
        raise PslakeError(
            f"the warehouse {warehouse} is in use by another process"
            + (f" (pid {holder.group(1)})" if holder else "")
            + "; wait for it to finish (a running `pslake ingest`, `transform` or a SQL client)"
        ) from None


def drop_replayed_rows(warehouse: Path, dataset: str, load_ids: Sequence[str]) -> int:
    """Remove the second copy of rows a resumed load package wrote twice; returns how many.

    dlt marks a load job done only after its rows are in, so a process killed between the two
    leaves the job to be run again by the next run: a table that is not merged on a key (the
    first, replacing load of a big table; the quarantine) then holds those rows twice, with the
    same load id and the same content. Exactly such copies are removed; rows of other loads are
    not touched.
    """
    if not load_ids or not warehouse.exists():
        return 0
    removed = 0
    con = open_warehouse(warehouse)
    try:
        tables: dict[str, list[str]] = {}
        for table, column in con.execute(
                "select table_name, column_name from information_schema.columns "
                "where table_schema = ? and table_name not like '\\_dlt%' escape '\\' "
                "order by table_name, ordinal_position", [dataset]).fetchall():
            tables.setdefault(table, []).append(column)
        for table, columns in tables.items():
            if "_dlt_load_id" not in columns:
                continue
            every = ", ".join(f'"{c}"' for c in columns)
            removed += con.execute(
                f'delete from "{dataset}"."{table}" where rowid in (select rowid from ('
                f"select rowid, row_number() over (partition by {every} order by rowid) as copy "
                f'from "{dataset}"."{table}" where list_contains(?, _dlt_load_id)) '
                "where copy > 1)", [list(load_ids)]).fetchall()[0][0]
    finally:
        con.close()
    return removed


def _table_counts(warehouse: Path, dataset: str) -> dict[str, int]:
    if not warehouse.exists():
        return {}
    con = open_warehouse(warehouse)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'", [dataset]).fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{dataset}"."{t}"').fetchall()[0][0]
                for t in tables}
    finally:
        con.close()


def _known_harvest_ids(warehouse: Path, since: dt.date) -> dict[str, set[int]]:
    """Live Harvest ids the warehouse holds, for the deletion scan."""
    from ingestion.harvest.settings import BIG, REFERENCE

    if not warehouse.exists():
        return {}
    con = open_warehouse(warehouse)
    try:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'raw_harvest'").fetchall()}
        known: dict[str, set[int]] = {}
        for name in (*REFERENCE, *BIG):
            if name not in present:
                continue
            where = f"WHERE spent_date >= DATE '{since.isoformat()}'" if name in BIG else ""
            if "deleted_records" in present:
                where += (" AND " if where else "WHERE ") + (
                    "id NOT IN (SELECT id FROM raw_harvest.deleted_records "
                    f"WHERE resource = '{name}')")
            known[name] = {r[0] for r in con.execute(
                f"SELECT id FROM raw_harvest.{name} {where}").fetchall()}
        return known
    finally:
        con.close()


def safe_url(url: str) -> str:
    """A URL without any ``user:password@`` part, fit for messages and reports."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def explain(vendor: Vendor, vs: VendorSettings, exc: BaseException) -> str:
    """One actionable line for a failed vendor: which source, which URL, what to set."""
    cause: BaseException | None = exc
    root: BaseException = exc
    while cause is not None:
        if isinstance(cause, SignalReceivedException):
            return (f"{vendor}: stopped by signal {cause.signal_code}; running load jobs were "
                    "finished, and the next run completes what was left")
        if isinstance(cause, requests.HTTPError) and cause.response is not None:
            status = cause.response.status_code
            url = safe_url(cause.response.url.split("?")[0])
            if status in (401, 403):
                return (f"{vendor}: {url} refused the credentials (HTTP {status}); check "
                        f"{env_name(vendor, 'access_token')}"
                        + (f" and {env_name(vendor, 'account_id')}" if vendor != "hubspot"
                           else "")
                        + (" (from the sandbox's endpoints.json: restart `pslake sandbox "
                           "serve`)" if vs.origin == "sandbox" else ""))
            return f"{vendor}: {url} answered HTTP {status} after retries ({cause.response.reason})"
        if isinstance(cause, requests.ConnectionError | requests.Timeout):
            hint = ("is `pslake sandbox serve` running?" if vs.origin == "sandbox"
                    else f"check {env_name(vendor, 'base_url')}")
            return (f"{vendor}: cannot reach {safe_url(vs.base_url)} ({type(cause).__name__}); "
                    f"{hint}")
        if isinstance(cause, PslakeError):  # our own words: say which vendor if they do not
            line = str(cause)
            return line if line.startswith(vendor) else f"{vendor}: {line}"
        root = cause
        cause = cause.__cause__ or cause.__context__
    line = (str(root).strip().splitlines() or [""])[0][:300]
    return f"{vendor}: {type(root).__name__}: {line} (run with --verbose for the details)"


def _source(spec: SourceSpec, vs: VendorSettings, run: VendorRun, data_dir: Path,
            full_refresh: bool, pipeline: dlt.Pipeline, http: HttpSettings | None,
            deletion_window_days: int, deletion_scan_hours: float) -> Any:
    module, function = spec.factory.split(":")
    factory = getattr(importlib.import_module(module), function)
    kwargs: dict[str, Any] = {
        "base_url": vs.base_url, "access_token": vs.access_token,
        "landing_dir": str(data_dir / DLT_SUBDIR / LANDING_SUBDIR / spec.vendor),
        "tally": run.tally, "limiter": run.limiter, "http": http,
    }
    if spec.vendor in NEEDS_ACCOUNT:
        kwargs["account_id"] = vs.account_id
    if spec.vendor == "harvest":
        from ingestion.harvest import DELETED, LAST_SCAN

        last: str | None = _resource_state(pipeline, "harvest", DELETED).get(LAST_SCAN)
        first = full_refresh or not any(_incremental_done(pipeline, "harvest", name)
                                         for name in spec.bulk)
        age_s = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(last)).total_seconds() \
            if last else None
        due = first or age_s is None or age_s >= deletion_scan_hours * 3600
        if due:
            since = dt.date.today() - dt.timedelta(days=deletion_window_days)
            kwargs["known_ids"] = ({} if first else
                                   _known_harvest_ids(data_dir / WAREHOUSE_FILE, since))
            kwargs["deletion_from"] = since.isoformat()
        else:
            run.tally.notes.append(
                f"deletion scan: last {str(last)[:16]}, next after {deletion_scan_hours:g} h "
                f"(SOURCES__HARVEST__DELETION_SCAN_HOURS)")
    source = factory(**kwargs)
    for name in spec.bulk:
        if name in source.resources and (full_refresh or not _incremental_done(
                pipeline, spec.vendor, name)):
            source.resources[name].apply_hints(write_disposition="replace")
    return source


def ingest(
    data_dir: Path | None = None,
    sources: Iterable[Vendor] = VENDORS,
    full_refresh: bool = False,
    progress: Progress | None = None,
    http: HttpSettings | None = None,
    deletion_window_days: int = DELETION_WINDOW_DAYS,
    deletion_scan_hours: float | None = None,
    parallel: bool = True,
) -> IngestResult:
    """Load the chosen vendors into the warehouse.

    Args:
        data_dir: The data folder (``--data-dir`` / ``$PSLAKE_DATA_DIR`` / ``data``).
        sources: Vendors to load (default all three).
        full_refresh: Drop each source's tables and cursors and reload from scratch.
        progress: Called with a line of progress now and then.
        http: Timeout and retry policy (dlt's retry helper does the retrying).
        deletion_window_days: How far back Harvest time entries and expenses are scanned for
            deletions (Harvest keeps no record of them).
        deletion_scan_hours: How often that scan runs (default: the setting
            ``SOURCES__HARVEST__DELETION_SCAN_HOURS``, else 24); 0 scans on every run.
        parallel: Extract the vendors in parallel threads.

    Returns:
        Per vendor: the tally, errors (one line each), seconds.

    Raises:
        PslakeError: A vendor's settings are missing or partial (before any work).
    """
    say = progress or (lambda _line: None)
    root = settings.data_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    for key, value in _DLT_ENV.items():
        os.environ.setdefault(key, value)
    chosen = list(dict.fromkeys(sources))
    configured: Any = dlt.config.get("sources.harvest.deletion_scan_hours")
    scan_hours = float(deletion_scan_hours if deletion_scan_hours is not None else
                       configured if configured not in (None, "") else DELETION_SCAN_HOURS)
    resolved = {v: vendor_settings(v, root) for v in chosen}
    result = IngestResult(warehouse=root / WAREHOUSE_FILE)
    load_lock = threading.Lock()
    started = time.monotonic()

    runs = []
    for vendor in chosen:
        vs = resolved[vendor]
        run = VendorRun(vendor, vs, SourceTally(vendor), _limiter(SPECS[vendor], vs))
        runs.append(run)
    result.runs = runs
    before = {r.vendor: _table_counts(result.warehouse, f"raw_{r.vendor}") for r in runs}
    pipelines = {r.vendor: _pipeline(r.vendor, root) for r in runs}

    def one(run: VendorRun) -> None:
        spec = SPECS[run.vendor]
        pipeline = pipelines[run.vendor]
        t0 = time.monotonic()
        if signals.was_signal_received():
            run.error = f"{run.vendor}: not started, the run was stopped by a signal"
            return
        try:
            if not pipeline.has_pending_data:
                # a lost working folder gets its cursors back from the warehouse's newest
                # complete state, and a lost warehouse drops the local cursors (a full load
                # follows). Not with a pending package: its state is newer than the
                # warehouse's, and dlt would drop it when the dataset does not exist yet.
                with load_lock:
                    pipeline.sync_destination()
            if pipeline.has_pending_data:  # a killed run's package first: its cursor moved
                say(f"{run.vendor}: finishing the load a previous run left pending")
                with load_lock:
                    pipeline.normalize()
                    resumed = pipeline.list_normalized_load_packages()
                    pipeline.load().raise_on_failed_jobs()
                    replayed = drop_replayed_rows(result.warehouse, f"raw_{run.vendor}",
                                                  resumed)
                    if replayed:
                        run.tally.notes.append(
                            f"{replayed:,} row(s) a killed load had written before it was "
                            "stopped were written again on resuming it: removed")
                    before[run.vendor] = _table_counts(result.warehouse, f"raw_{run.vendor}")
            # raw pages a killed run left in the landing folder are never read again
            shutil.rmtree(root / DLT_SUBDIR / LANDING_SUBDIR / run.vendor, ignore_errors=True)
            source = _source(spec, run.settings, run, root, full_refresh, pipeline, http,
                             deletion_window_days, scan_hours)
            say(f"{run.vendor}: extracting from {safe_url(run.settings.base_url)}"
                + (" (full refresh)" if full_refresh else ""))
            pipeline.extract(source, refresh="drop_sources" if full_refresh else None,
                             loader_file_format="parquet")
            crash_point("after_extract")
            with load_lock:
                normalized = pipeline.normalize()
                pipeline.load().raise_on_failed_jobs()
                while pipeline.has_pending_data:  # dlt may leave a retryable job pending
                    pipeline.normalize()
                    pipeline.load().raise_on_failed_jobs()
            counts = normalized.row_counts
            after = _table_counts(result.warehouse, f"raw_{run.vendor}")
            _fill(run, counts, before[run.vendor], after, full_refresh)
        except Exception as exc:  # one vendor failing must not hide the others' results
            run.error = _scrub(explain(run.vendor, run.settings, exc),
                               [run.settings.access_token])
        finally:
            run.seconds = time.monotonic() - t0
            say(f"{run.vendor}: {'failed' if run.error else 'done'} in {run.seconds:.1f} s")

    _warm_imports()
    stop = threading.Event()
    ticker = threading.Thread(target=_tick, args=(runs, say, stop), daemon=True)
    ticker.start()
    try:
        # SIGTERM/SIGINT (from the main thread, for every vendor's thread): the first stops new
        # work, lets running load jobs finish and leaves the package pending for the next run;
        # a second one stops the process at once (dlt's two-stage handling)
        with signals.intercepted_signals():
            if parallel and len(runs) > 1:
                with ThreadPoolExecutor(max_workers=len(runs),
                                        thread_name_prefix="ingest") as pool:
                    list(pool.map(one, runs))
            else:
                for run in runs:
                    one(run)
    finally:
        stop.set()
        ticker.join()
    result.seconds = time.monotonic() - started
    return result


def _warm_imports() -> None:
    """Import what dlt imports lazily, before threads race to import it half-way."""
    import pyarrow  # noqa: F401

    try:
        import pandas  # noqa: F401
    except ImportError:  # dlt works without it
        pass
    import dlt.common.libs.pyarrow
    import dlt.extract.incremental.transform  # noqa: F401


def _tick(runs: list[VendorRun], say: Progress, stop: threading.Event) -> None:
    while not stop.wait(TICK_S):
        parts = []
        for r in runs:
            received = sum(t.received for t in list(r.tally.tables.values()))
            parts.append(f"{r.vendor} {received:,} records / {r.tally.calls.calls:,} calls")
        say("  ... " + "; ".join(parts))


def _fill(run: VendorRun, counts: Mapping[str, int], before: Mapping[str, int],
          after: Mapping[str, int], full_refresh: bool) -> None:
    """Complete the tally from the warehouse, and check nothing went missing."""
    tables = run.tally.tables
    for name in (*tables, *(t for t in counts if not t.startswith("_dlt"))):
        tally = run.tally.table(name)
        tally.loaded = counts.get(name, 0)
        grown = after.get(name, 0) - (0 if full_refresh else before.get(name, 0))
        tally.new = min(max(grown, 0), tally.loaded)
        tally.updated = max(tally.loaded - tally.new, 0)
        if tally.received != tally.passed + tally.quarantined + tally.deferred:
            raise PslakeError(f"{run.vendor}.{name}: {tally.received} records received but "
                              f"{tally.passed} passed + {tally.quarantined} quarantined + "
                              f"{tally.deferred} deferred")
        if tally.deferred:
            tally.notes.append(f"{tally.deferred} record(s) changed during the run: next run")
    run.tally.tables.pop(QUARANTINE_TABLE, None)
    quarantined = sum(t.quarantined for t in run.tally.tables.values())
    reached = counts.get(QUARANTINE_TABLE, 0)
    # rows in = loaded + quarantined. dlt's incremental drops a record it saw at the cursor
    # boundary on the previous run, a quarantined one too: that one is in the table already.
    seen_before = 0 if full_refresh else before.get(QUARANTINE_TABLE, 0)
    if reached > quarantined or quarantined - reached > seen_before:
        raise PslakeError(f"{run.vendor}: {quarantined} records quarantined but "
                          f"{reached} reached raw_{run.vendor}.quarantine")
    if reached < quarantined:
        run.tally.notes.append(
            f"{quarantined - reached} quarantined record(s) were quarantined by an earlier run "
            "already (seen again at the incremental cursor's boundary)")


def as_dict(result: IngestResult) -> dict[str, Any]:
    """The result as plain data (``pslake ingest --report``), without any secret."""
    return {
        "warehouse": str(result.warehouse),
        "seconds": round(result.seconds, 3),
        "vendors": {
            run.vendor: {
                "base_url": safe_url(run.settings.base_url),
                "seconds": round(run.seconds, 3),
                "error": run.error,
                "calls": run.tally.calls.calls,
                "bytes": run.tally.calls.bytes,
                "retries": dict(run.tally.calls.retries),
                "rate_limit_wait_s": round(run.limiter.waited_s, 3) if run.limiter else 0.0,
                "notes": run.tally.notes,
                "tables": {name: {k: v for k, v in vars(t).items() if k != "table"}
                           for name, t in sorted(run.tally.tables.items())},
            }
            for run in result.runs
        },
    }


def format_summary(result: IngestResult) -> list[str]:
    """The per-table summary ``pslake ingest`` prints."""
    head = (f"{'table':<44} {'received':>10} {'loaded':>10} {'new':>9} {'updated':>9} "
            f"{'quarant.':>8} {'deleted':>8} {'seconds':>8}")
    lines = [head, "-" * len(head)]
    for run in result.runs:
        if run.error:
            continue
        for name in sorted(run.tally.tables):
            t = run.tally.tables[name]
            lines.append(f"{'raw_' + run.vendor + '.' + name:<44} {t.received:>10,} "
                         f"{t.loaded:>10,} {t.new:>9,} {t.updated:>9,} {t.quarantined:>8,} "
                         f"{t.deleted:>8,} {t.seconds:>8.1f}")
            lines.extend(f"{'':<4}note: {n}" for n in t.notes)
    lines.append("")
    for run in result.runs:
        calls = run.tally.calls
        retries = ", ".join(f"{k} x{v}" for k, v in sorted(calls.retries.items())) or "none"
        waited = run.limiter.waited_s if run.limiter else 0.0
        status = f"FAILED: {run.error}" if run.error else f"{run.seconds:.1f} s"
        lines.append(f"{run.vendor}: {calls.calls:,} calls, {calls.bytes / 1e6:,.1f} MB, "
                     f"retries: {retries}, rate-limit wait {waited:.1f} s"
                     + (f" ({run.limiter.limit.describe()})" if run.limiter else "")
                     + f"; {status}")
        lines.extend(f"{'':<4}note: {n}" for n in run.tally.notes)
    lines.append(f"warehouse: {result.warehouse} ({result.seconds:.1f} s)")
    return lines
