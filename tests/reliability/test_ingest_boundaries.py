"""The battery's test 8, ingest_incremental_boundaries (shared/RELIABILITY.md).

Harvest's time entries, read incrementally with a configured cursor lag
(``SOURCES__HARVEST__CURSOR_LAG_S``), while the vendor's data moves under the reader:

- thousands of entries share one ``updated_at`` instant, more than a page holds, so the
  collision spans a page boundary (and sits at the cursor afterwards);
- entries change while a run pages through them (a test hook in the relay, before the second
  page is served): one the run has already read, one it has not;
- a change arrives late, stamped before the cursor (inside the lag), as a vendor whose servers'
  clocks differ can stamp it;
- the vendor's clock is ahead of ours, then behind (the relay moves its ``Date`` header), while
  entries change during the runs.

After the runs every entry's latest version must be in the warehouse (compared with the store,
entry by entry), once.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest

from ingestion.pipeline import ingest
from sandbox.server.app import SandboxThread
from tests.ingestion.battery import FAST, clean_env
from tests.relay import Relay, Request
from tests.reliability import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENTRIES = "/harvest/v2/time_entries"
LAG_S = 60
COLLIDING = 2_500  # more than a page (2,000)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Vendor:
    """Changes to Harvest's store, as the vendor's own users and clocks would make them."""

    def __init__(self, server: SandboxThread, firm: Path) -> None:
        self.server = server
        self.store = sqlite3.connect(firm / "harvest.sqlite", check_same_thread=False,
                                     isolation_level=None)

    def change(self, ids: list[int], note: str, stamp: dt.datetime) -> None:
        self.store.executemany("update time_entries set notes = ?, updated_at = ? where id = ?",
                               [(note, _stamp(stamp), i) for i in ids])
        self.server.state.wrote()

    def entries(self) -> dict[int, tuple[Any, str]]:
        return {i: (n, u) for i, n, u in self.store.execute(
            "select id, notes, updated_at from time_entries")}


class _DuringPaging:
    """The relay hook: before the second page of time entries, change two entries."""

    def __init__(self, vendor: _Vendor) -> None:
        self.vendor = vendor
        self.plan: list[tuple[int, str]] = []
        self.done = 0

    def __call__(self, request: Request) -> None:
        if request.path == ENTRIES and "cursor=" in request.target and self.plan:
            now = dt.datetime.now(dt.UTC)
            for entry_id, note in self.plan:
                self.vendor.change([entry_id], note, now)
                self.done += 1
            self.plan = []


def _loaded(data_dir: Path) -> tuple[dict[int, tuple[Any, str]], int]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select id, notes, strftime(updated_at at time zone 'UTC', '%Y-%m-%dT%H:%M:%SZ') "
            "from raw_harvest.time_entries").fetchall()
    return {i: (n, u) for i, n, u in rows}, len(rows)


def _newest(vendor: _Vendor) -> dt.datetime:
    """The latest change in the store."""
    stamp = max(u for _, u in vendor.entries().values())
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _cursor(data_dir: Path) -> dt.datetime:
    """The time entries' cursor: the latest ``updated_at`` loaded."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute("select max(updated_at) from raw_harvest.time_entries").fetchone()
    assert found is not None
    cursor: dt.datetime = found[0]
    return cursor


def _run(data_dir: Path) -> None:
    result = ingest(data_dir=data_dir, sources=["harvest"], http=FAST, deletion_scan_hours=24)
    assert not result.errors, result.errors


def _since(relay: Relay, after: int) -> dt.datetime:
    """The ``updated_since`` of the first time entries request after exchange ``after``."""
    target = next(e.target for e in relay.exchanges[after:] if e.target.startswith(ENTRIES))
    value = parse_qs(urlsplit(target).query)["updated_since"][0]
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _boundaries(server: SandboxThread, firm: Path, seed: int, colliding_n: int, skew_s: float,
                late_s: float) -> None:
    rng = random.Random(seed)
    data = firm.parent
    vendor = _Vendor(server, firm)
    hook = _DuringPaging(vendor)
    ids = sorted(vendor.entries())
    with Relay(server.port, on_request=hook) as relay:
        relay.point(firm / "endpoints.json")
        _run(data)

        # many entries at one instant, across a page boundary; two more change mid-paging
        colliding = ids[-colliding_n:]
        instant = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
        vendor.change(colliding, "collided", instant)
        watched = [colliding[-1], colliding[0]]
        hook.plan = [(watched[0], "changed after its page was read"),
                     (watched[1], "changed before its page was read")]
        _run(data)

        # a late change: stamped before the cursor, inside the lag; the next run also reads
        # what changed during the run above
        late = rng.choice(ids[:-colliding_n])
        cursor = _cursor(data)
        vendor.change([late], "arrived late", cursor - dt.timedelta(seconds=late_s))
        before = len(relay.exchanges)
        _run(data)
        lag_applied = _since(relay, before) <= cursor - dt.timedelta(seconds=LAG_S - 1)

        # the vendor's clock ahead of ours, then behind, with changes during the runs
        skews = (skew_s, -skew_s)
        for n, skew in enumerate(skews):
            relay.date_skew_s = skew
            # the collision again (more than a page, so the hook runs), and a few changes more
            now = dt.datetime.now(dt.UTC)
            vendor.change(colliding, f"collided again {n}", now - dt.timedelta(seconds=2))
            vendor.change(rng.sample(colliding, 10), f"skew {skew:+}", now)
            watched += [colliding[-2 - n], colliding[1 + n]]
            hook.plan = [(watched[-2], f"mid-paging under skew {skew:+}"),
                         (watched[-1], f"mid-paging under skew {skew:+} (unread)")]
            _run(data)
        relay.date_skew_s = 0
        # settle: a run that starts 2 s after the last change defers none of them
        time.sleep(max(0.0, (_newest(vendor) + dt.timedelta(seconds=2.1)
                             - dt.datetime.now(dt.UTC)).total_seconds()))
        _run(data)

    expected, (rows, count) = vendor.entries(), _loaded(data)
    lost = sum(1 for i, version in expected.items() if rows.get(i) != version)
    duplicates = count - len(rows)
    extra = len(set(rows) - set(expected))
    late_captured = int(rows.get(late) == expected[late])
    paging_captured = sum(1 for i in watched if rows.get(i) == expected[i])
    record("ingest_incremental_boundaries", seed=seed, injected=4,
           survived=4 if not (lost or duplicates or extra) else 0,
           lost=lost, duplicates=duplicates + extra, boundary_collisions=colliding_n,
           changes_during_paging=hook.done, changes_during_paging_captured=paging_captured,
           late_arrivals=1, late_arrivals_captured=late_captured, late_by_s=late_s,
           clock_skews_s=list(skews), cursor_lag_s=LAG_S, lag_applied=int(lag_applied))
    assert lag_applied, "the run did not ask for the cursor's lag window"
    assert lost == 0, [(i, rows.get(i), v) for i, v in expected.items() if rows.get(i) != v][:5]
    assert duplicates == 0 and extra == 0
    assert hook.done == len(watched) == paging_captured
    assert late_captured == 1


@pytest.fixture
def _lagged(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)
    monkeypatch.setenv("SOURCES__HARVEST__CURSOR_LAG_S", str(LAG_S))


@pytest.mark.usefixtures("_lagged")
def test_every_latest_version_is_loaded_once_across_page_boundaries_late_changes_and_skew(
        served_firm: SandboxThread, small_firm: Path) -> None:
    _boundaries(served_firm, small_firm, seed=3, colliding_n=COLLIDING, skew_s=LAG_S / 2,
                late_s=LAG_S / 2)


@pytest.mark.soak
@pytest.mark.usefixtures("_lagged")
@pytest.mark.parametrize("seed", range(100, 110))
def test_many_seeds_of_boundaries_late_changes_and_skew_lose_no_version(
        served_firm: SandboxThread, small_firm: Path, seed: int) -> None:
    rng = random.Random(seed)
    _boundaries(served_firm, small_firm, seed, colliding_n=rng.randint(2_001, 6_000),
                skew_s=rng.uniform(1, LAG_S - 10), late_s=rng.uniform(1, LAG_S - 5))
