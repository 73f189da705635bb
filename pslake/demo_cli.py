"""``pslake demo``: the whole product on a synthetic firm, the way a newcomer meets it.

Generate a firm (or reuse the one there), serve the three vendor emulators, ingest, transform,
plan and apply the reverse sync, publish the dashboard's snapshot and start the dashboard, each
step printed with its time, then the URL and a sign-in. A second run reuses what is there: the
firm, the loaded data (an incremental ingest finds nothing new), and the marts (the build is
skipped while the raw data and the as-of date are what the last build saw).

The demo talks to the sandbox only: vendor settings in the environment are set aside for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import typer

from pslake import settings
from pslake.cli import friendly, say
from pslake.errors import PslakeError
from sandbox import firm_info
from sandbox.firm.generate import DEFAULT_SEED, generate
from sandbox.store import FIRM_FILE

DEMO_USER = "demo"
PASSWORD_FILE = "demo-password"  # DATA_DIR/app/demo-password, readable by its owner only
STATE_FILE = "demo-state.json"   # DATA_DIR/demo-state.json: what the last build saw
VENDOR_SETTINGS = tuple(f"SOURCES__{vendor}__{name}"
                        for vendor in ("HUBSPOT", "HARVEST", "NETSUITE")
                        for name in ("BASE_URL", "ACCESS_TOKEN", "ACCOUNT_ID"))
STEPS = 7


@dataclass
class _Clock:
    """Numbers the demo's steps: a heading as one starts, its lines and time as it ends."""

    started: float
    step: int = 0

    @contextlib.contextmanager
    def run(self, name: str) -> Iterator[list[str]]:
        """Time one step; the lines the body appends are printed when it ends."""
        self.step += 1
        say(f"[{self.step}/{STEPS}] {name}")
        lines: list[str] = []
        t0 = time.monotonic()
        yield lines
        *first, last = lines or [""]
        for line in first:
            say(f"      {line}")
        say(f"      {last}  ({time.monotonic() - t0:.1f} s)")


@friendly
def demo(
    size: str = typer.Option("medium", help="Firm size to generate when none is there."),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed of the generated firm."),
    port: int = typer.Option(settings.SANDBOX_PORT, help="Sandbox port (0: any free port)."),
    app_port: int = typer.Option(8501, "--app-port", help="Dashboard port."),
    wait: bool = typer.Option(
        True, help="Keep the sandbox and the dashboard running until Ctrl-C (--no-wait: check "
                   "that the dashboard answers, then stop both and exit)."),
) -> None:
    """The demo: a synthetic firm through ingest, transform, sync and the dashboard.

    Reuses the firm, the loaded data and the built marts of an earlier run. The sandbox listens
    on localhost; the dashboard on http://127.0.0.1:APP_PORT with the printed sign-in.
    """
    from sandbox.server.app import SandboxThread

    data_dir = settings.data_dir().resolve()
    os.environ[settings.DATA_DIR_ENV] = str(data_dir)  # the steps and the dashboard read it
    ignored = [name for name in VENDOR_SETTINGS if os.environ.pop(name, None) is not None]
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")  # dlt's per-request info lines
    _check_port_free(app_port)
    clock = _Clock(time.monotonic())
    say(f"demo: the {size} firm, end to end, in {data_dir}")
    if ignored:
        say(f"      (the demo uses the sandbox; {', '.join(ignored)} set aside for it)")
    store = settings.sandbox_dir()
    with clock.run("firm") as out:
        out.append(_firm(store, size, seed))
    as_of = dt.date.fromisoformat(firm_info.load(store)["as_of"])
    with contextlib.ExitStack() as running:
        with clock.run("sandbox") as out:
            server = running.enter_context(SandboxThread(store, port=port))
            out.append(f"HubSpot, Harvest and NetSuite emulators on {server.root}")
        _pipeline(clock, data_dir, as_of)
        with clock.run("dashboard") as out:
            url = running.enter_context(_dashboard(data_dir, app_port))
            out.append(url)
            out.append(f"sign in as {DEMO_USER} / {_demo_password(data_dir)} "
                       "(sees every legal entity)")
        say(f"demo: ready in {time.monotonic() - clock.started:.1f} s")
        if wait:
            say("demo: the dashboard and the sandbox run until Ctrl-C")
            # SIGTERM (a supervisor, `kill`) stops the demo as Ctrl-C does, so the dashboard it
            # started in a session of its own is stopped too
            signal.signal(signal.SIGTERM, _interrupt)
            signal.signal(signal.SIGINT, _interrupt)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
            say("demo: stopped")


def _interrupt(signum: int, frame: object) -> None:
    # the first signal stops the demo; more of them (`timeout` or a supervisor signalling the
    # whole process group as well as this process, a second Ctrl-C) must not cut the stop short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _pipeline(clock: _Clock, data_dir: Path, as_of: dt.date) -> None:
    """Ingest, transform (unless nothing changed), sync plan and apply, publish."""
    from ingestion.pipeline import ingest
    from pslake.snapshot import publish
    from pslake.transform import build, warehouse_path
    from reverse_sync.runner import Sync

    with clock.run("ingest") as out:
        loaded = ingest(data_dir=data_dir)
        if loaded.errors:
            raise PslakeError("demo: ingest failed: " + "; ".join(loaded.errors))
        tables = [t for run in loaded.runs for t in run.tally.tables.values()]
        out.append(f"{sum(t.received for t in tables):,} records read, "
                   f"{sum(t.new for t in tables):,} new, "
                   f"{sum(t.quarantined for t in tables):,} quarantined, from 3 vendors")
    warehouse = warehouse_path(data_dir)
    state = {"raw_fingerprint": raw_fingerprint(warehouse), "as_of": as_of.isoformat()}
    with clock.run("transform") as out:
        if _last_build(data_dir) == state and _has_marts(warehouse):
            out.append("skipped: the raw data and the as-of date are as the last build saw them")
        else:
            say(f"      dbt build at {as_of}")
            with _quiet_dbt():
                result = build(data_dir, as_of=as_of)
            for failure in result.failures:
                out.append(f"failed: {failure.resource_type} {failure.name}: {failure.message}")
            if not result.success:
                raise PslakeError(f"demo: transform failed ({result.failed} node(s)); details "
                                  f"in {result.log_path / 'dbt.log'}")
            out.insert(0, f"{result.models.passed} models, {result.tests.passed} tests passed "
                          f"(as of {as_of})")
            stale = [f"{v.source}.{v.table}" for v in result.freshness if v.status != "pass"]
            if stale:
                out.append(f"freshness: {len(stale)} source table(s) not fresh by the clock "
                           "(the firm's history ends at its as-of date)")
            (data_dir / STATE_FILE).write_text(json.dumps(state) + "\n")
    with clock.run("sync") as out, Sync() as sync:
        planned, applied = sync.apply(None)
        counts = planned.counts() if planned is not None else {}
        written = applied.outcome
        out.append(f"plan: {len(planned.changes) if planned else 0:,} change(s), "
                   f"{counts.get('planned', 0):,} to apply, "
                   f"{counts.get('held', 0):,} held for approval; apply: "
                   f"{written['written']:,} written in {applied.write_calls} call(s), "
                   f"{written['failed'] + written['given_up']:,} failed")
    with clock.run("publish") as out:
        snapshot = publish(data_dir)
        out.append(f"{snapshot.tables} tables to {snapshot.path}")


def _firm(store: Path, size: str, seed: int) -> str:
    """Reuse the firm in the store when it has this size and seed, else generate it."""
    existing = firm_info.load(store) if (store / FIRM_FILE).exists() else None
    if existing and existing.get("size") == size and existing.get("seed") == seed:
        return f"reusing the {size} firm (seed {seed}, as of {existing['as_of']})"
    if existing:
        raise PslakeError(
            f"demo: {store} holds a {existing.get('size')} firm (seed {existing.get('seed')}), "
            f"not the {size} one asked for; use another --data-dir, or pass --size "
            f"{existing.get('size')} --seed {existing.get('seed')}")
    generate(store, size=size, seed=seed)
    info = firm_info.load(store)
    return (f"generated the {size} firm (seed {seed}, as of {info['as_of']}, "
            f"{info['counts']['harvest.time_entries']:,} time entries)")


def raw_fingerprint(warehouse: Path) -> str:
    """A digest of the content of the vendors' raw datasets (``raw_hubspot`` and the others).

    dlt's own ``_dlt`` columns and tables are left out, and so are pslake's own exports (the sync
    journal, the freshness verdicts), which every run rewrites. Reference lists that dlt
    replaces on every run keep their digest when their content does not change, so an ingest
    that found nothing new leaves it as it was.
    """
    from ingestion.settings import VENDORS

    datasets = [f"raw_{vendor}" for vendor in VENDORS]
    digest = hashlib.sha256()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in con.execute(
                "select table_schema, table_name, column_name from information_schema.columns "
                "where list_contains(?, table_schema) "
                "and table_name not like '\\_dlt%' escape '\\' "
                "and column_name not like '\\_dlt%' escape '\\' "
                "order by 1, 2, ordinal_position", [datasets]).fetchall():
            columns.setdefault((schema, table), []).append(column)
        for (schema, table), names in columns.items():
            quoted = ", ".join(f'"{name}"' for name in names)
            count, total = con.execute(
                f'select count(*), coalesce(sum(hash({quoted})), 0) from "{schema}"."{table}"'
            ).fetchall()[0]
            digest.update(f"{schema}.{table}:{count}:{total};".encode())
    return digest.hexdigest()


def _last_build(data_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def _has_marts(warehouse: Path) -> bool:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.execute("select count(*) from information_schema.tables "
                            "where table_schema = 'marts'").fetchall()[0][0]
    return bool(found)


@contextlib.contextmanager
def _quiet_dbt() -> Iterator[None]:
    """Keep dbt's per-node lines off the demo's output (its errors still show)."""
    before = os.environ.get("DBT_QUIET")
    os.environ["DBT_QUIET"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DBT_QUIET", None)
        else:
            os.environ["DBT_QUIET"] = before


def _demo_password(data_dir: Path) -> str:
    """The demo user's password: made once, kept for the owner only, its hash in the users file."""
    from app.auth import load_users, save_user, users_file

    secret = data_dir / "app" / PASSWORD_FILE
    users = users_file()
    if secret.exists() and DEMO_USER in load_users(users):
        return secret.read_text().strip()
    secret.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(9)
    secret.touch(mode=0o600)
    secret.write_text(password + "\n")
    save_user(users, DEMO_USER, password, ["*"], "Demo executive")
    return password


def _check_port_free(port: int) -> None:
    import socket

    with socket.socket() as probe:
        # as the dashboard's server binds: a port whose last connections linger is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise PslakeError(f"demo: port {port} is in use (a dashboard already running?); "
                              "stop it or pass --app-port") from None


@contextlib.contextmanager
def _dashboard(data_dir: Path, port: int) -> Iterator[str]:
    """Start ``pslake app`` on the port, wait until it answers, and stop it on the way out."""
    from pslake.app_cli import streamlit_command

    _demo_password(data_dir)  # the users file the dashboard checks at start
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    with open(logs / "dashboard.log", "ab") as log:
        # its own session: a Ctrl-C at the terminal reaches the demo, which stops it in order
        process = subprocess.Popen(streamlit_command(port, "127.0.0.1"), stdout=log,
                                   stderr=subprocess.STDOUT, env=dict(os.environ),
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise PslakeError(f"demo: the dashboard stopped at start (exit "
                                  f"{process.returncode}); see {logs / 'dashboard.log'}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise PslakeError(f"demo: the dashboard did not answer on {url} within 90 s; "
                                  f"see {logs / 'dashboard.log'}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
