"""Probe: how fast the sandbox serves Harvest time entries over HTTP.

Builds a synthetic ``harvest.sqlite`` with N time entries (default 500,000) and realistic
dimensions, creates the serving indexes, starts :class:`SandboxThread` and fetches every page of
``GET /harvest/v2/time_entries?per_page=2000`` by following ``links.next`` with ``requests``, the
way a sequential client does. Only the ``links`` object of each page is parsed (the client
measured here is the floor, not an ingestion pipeline). Prints records per second.

Usage::

    .venv/bin/python -m benchmarks.probe_harvest_serving [--entries N] [--dir DIR] [--keep]
        [--updated-since ISO] [--repeat K]

Without ``--dir`` the store goes to a temporary directory, removed at the end unless ``--keep``;
with ``--dir`` it is rebuilt unless it already holds the same number of entries.

Measured on the 2-core reference VM (2026-11-23; a noisy shared VM, so runs vary by ~20%):
500,000 synthetic entries (about 1.3 kB of JSON each) 75,000-92,000 records/s; 7.5M synthetic
entries 65,000-71,000 records/s; the generated enterprise firm (8.0M entries, about 1.2 kB each)
85,000 records/s. A client that also parses every page in full (``orjson.loads``, about 30 ms a
page here) gets about 35,000: it is then the client, not the server, that sets the pace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import requests

from sandbox import firm_info
from sandbox.server.app import SandboxThread
from sandbox.store import connect, create_indexes, create_schema, db_path, transaction

STAMP = "%Y-%m-%dT%H:%M:%SZ"
FIRST_NAMES = ("Ada", "Bram", "Chloe", "Dario", "Elif", "Farah", "Goran", "Hana", "Ivo", "Jun")
LAST_NAMES = ("Alvarez", "Bergstrom", "Castellano", "Dubois", "Eriksen", "Fontaine", "Gallagher")
TASKS = ("Design", "Development", "Project Management", "Testing", "Discovery", "Workshop",
         "Training", "Support", "Architecture", "Data Migration", "Internal", "Sales",
         "Holiday", "Sick Leave", "Travel")
NOTES = ("Sprint planning and backlog grooming", "Stakeholder workshop follow-up",
         "Implemented the invoice export and fixed the rounding issue", "Code review",
         "Migrated customer master data, second batch", "Weekly status call with the client",
         "", "Drafted the solution architecture document", "Regression testing of release 4.2")


def _stamp(base: dt.datetime, seconds: int) -> str:
    return (base + dt.timedelta(seconds=seconds)).strftime(STAMP)


def build_store(store_dir: Path, entries: int, seed: int = 7) -> None:
    """Write a synthetic Harvest store with ``entries`` time entries and its dimensions.

    Args:
        store_dir: Directory to create the store in (its harvest.sqlite is replaced).
        entries: How many time entries to generate.
        seed: Random seed.
    """
    rng = random.Random(seed)
    path = db_path(store_dir, "harvest")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    create_schema(store_dir)
    firm_info.save(store_dir, {"size": "probe", "seed": seed, "as_of": "2026-11-16",
                               "credentials": firm_info.new_credentials()})
    base = dt.datetime(2025, 11, 1, 8, 0, tzinfo=dt.UTC)
    n_users = max(20, entries // 750)
    n_clients = max(5, n_users // 12)
    n_projects = max(10, n_users // 2)
    con = connect(store_dir, "harvest", bulk=True)
    created = _stamp(base, -86400 * 30)
    with transaction(con):
        con.execute(
            "insert into company values (1, 'https://probe.harvestapp.com', 'probe.harvestapp.com',"
            " 'Probe Consulting', 1, 'Monday', 0, 'decimal', '%Y-%m-%d', 'business', '24h',"
            " 'USD', 144000, 1, 0, 0, 1, 1)"
        )
        con.executemany(
            "insert into clients values (?, ?, 1, ?, ?, ?, ?, ?)",
            [(5_000_000 + i, f"Client {i} Holdings", f"{i} Market Street", f"sk{i:08d}",
              rng.choice(("USD", "EUR", "GBP")), created, created) for i in range(n_clients)],
        )
        con.executemany(
            "insert into users (id, first_name, last_name, email, timezone, is_contractor,"
            " is_active, weekly_capacity, default_hourly_rate, cost_rate, roles, access_roles,"
            " avatar_url, created_at, updated_at) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(1_000_000 + i, rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), f"user{i}@probe.io",
              "Europe/Berlin", int(rng.random() < 0.1), 1, 144000, 150.0, 80.0,
              orjson.dumps(["Senior Consultant", "Data"]).decode(),
              '["administrator"]' if i == 0 else '["member"]', None, created, created)
             for i in range(n_users)],
        )
        con.executemany(
            "insert into tasks values (?, ?, ?, ?, 0, 1, ?, ?)",
            [(8_000_000 + i, name, int(i < 10), 150.0, created, created)
             for i, name in enumerate(TASKS)],
        )
        projects = []
        for i in range(n_projects):
            client = 5_000_000 + rng.randrange(n_clients)
            projects.append((14_000_000 + i, client, f"Engagement {i} - Platform rollout",
                             f"PRJ-{i:05d}", 1, 1, 0, "People", 160.0, None, "none", created,
                             created))
        con.executemany(
            "insert into projects (id, client_id, name, code, is_active, is_billable,"
            " is_fixed_fee, bill_by, hourly_rate, budget, budget_by, created_at, updated_at)"
            " values (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            projects,
        )
        task_assignments: dict[int, list[tuple[int, int, int]]] = {}
        user_assignments: dict[int, list[tuple[int, int]]] = {}
        ta_rows, ua_rows = [], []
        ta_id, ua_id = 150_000_000, 125_000_000
        for pid, *_ in projects:
            for t in rng.sample(range(len(TASKS)), 5):
                billable = int(t < 10)
                ta_rows.append((ta_id, pid, 8_000_000 + t, 1, billable, 160.0, None, created,
                                created))
                task_assignments.setdefault(pid, []).append((ta_id, 8_000_000 + t, billable))
                ta_id += 1
            for u in rng.sample(range(n_users), min(n_users, 8)):
                ua_rows.append((ua_id, pid, 1_000_000 + u, 1, 0, 0, 175.0, None, created,
                                created))
                user_assignments.setdefault(pid, []).append((ua_id, 1_000_000 + u))
                ua_id += 1
        con.executemany("insert into task_assignments values (?,?,?,?,?,?,?,?,?)", ta_rows)
        con.executemany("insert into user_assignments values (?,?,?,?,?,?,?,?,?,?)", ua_rows)
        client_of = {p[0]: p[1] for p in projects}
        project_ids = [p[0] for p in projects]

        def rows() -> Iterator[tuple[Any, ...]]:
            for i in range(entries):
                pid = rng.choice(project_ids)
                ua, uid = rng.choice(user_assignments[pid])
                ta, tid, billable = rng.choice(task_assignments[pid])
                hours = rng.choice((0.5, 1.0, 1.5, 2.0, 2.25, 3.0, 4.0, 6.5, 7.5, 8.0))
                offset = i * 4 + rng.randrange(4)
                day = (base + dt.timedelta(seconds=offset)).date().isoformat()
                stamp = _stamp(base, offset)
                posted = rng.random() < 0.8
                ext = (
                    orjson.dumps({
                        "id": str(3_000_000 + i), "group_id": "timebill",
                        "account_id": "1234567_SB1",
                        "permalink": f"https://1234567-sb1.app.netsuite.com/app/accounting/"
                                     f"transactions/timebill.nl?id={3_000_000 + i}",
                        "service": "netsuite.com", "service_icon_url": None,
                    }).decode() if posted else None
                )
                invoiced = billable and rng.random() < 0.5
                yield (2_000_000_000 + i, day, uid, client_of[pid], pid, tid, ua, ta, hours,
                       hours, hours, rng.choice(NOTES), int(posted), None, int(posted),
                       int(invoiced), None, None, None, 0, billable, 0,
                       175.0 if billable else None, 80.0, ext,
                       (40_000_000 + i // 50) if invoiced else None,
                       f"INV-{i // 50:06d}" if invoiced else None, stamp, stamp)

        con.executemany(
            "insert into time_entries values (" + ",".join("?" * 29) + ")", rows()
        )
    con.close()
    create_indexes(store_dir)


def _entries_in(store_dir: Path) -> int:
    path = db_path(store_dir, "harvest")
    if not path.exists():
        return -1
    con = sqlite3.connect(path)
    try:
        return int(con.execute("select count(*) from time_entries").fetchone()[0])
    except sqlite3.Error:
        return -1
    finally:
        con.close()


def fetch_all(base_url: str, token: str, account: str, params: dict[str, str]) -> int:
    """Follow ``links.next`` from the first page to the last; returns the pages fetched."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Harvest-Account-Id": account,
                            "User-Agent": "pslake-probe (probe@example.com)"})
    url: str | None = f"{base_url}/v2/time_entries"
    pages = 0
    first = True
    while url:
        resp = session.get(url, params=params if first else None, stream=True)
        first = False
        resp.raise_for_status()
        body = resp.raw.read()  # one read of Content-Length bytes (resp.content reads 10 kB chunks)
        # Parse only what a sequential follower needs: the page's tail (counts and links).
        tail = orjson.loads(b"{" + body[body.rindex(b'],"per_page":') + 2:])
        url = tail["links"]["next"]
        pages += 1
    return pages


def main() -> None:
    """Build (or reuse) the store, serve it and print the measured throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--updated-since", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = parser.parse_args()
    store_dir = args.dir or Path(tempfile.mkdtemp(prefix="probe_harvest_"))
    store_dir.mkdir(parents=True, exist_ok=True)
    try:
        _probe(args, store_dir)
    finally:
        if args.dir is None and not args.keep:
            shutil.rmtree(store_dir, ignore_errors=True)


def _probe(args: argparse.Namespace, store_dir: Path) -> None:
    if _entries_in(store_dir) != args.entries:
        t0 = time.perf_counter()
        build_store(store_dir, args.entries)
        print(f"built {args.entries:,} time entries in {time.perf_counter() - t0:.1f} s "
              f"({store_dir})")
    params = {"per_page": "2000"}
    if args.updated_since:
        params["updated_since"] = args.updated_since
    with SandboxThread(store_dir) as server:
        ep = server.endpoints["harvest"]
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            served_before = server.state.stats.records_served["harvest"]
            pages = fetch_all(ep["base_url"], ep["access_token"], ep["account_id"], params)
            wall = time.perf_counter() - t0
            served = server.state.stats.records_served["harvest"] - served_before
            print(f"{served:,} records in {pages:,} pages, {wall:.2f} s: "
                  f"{served / wall:,.0f} records/s")


if __name__ == "__main__":
    main()
