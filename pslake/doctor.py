"""The checks behind ``pslake doctor``: configuration and connectivity, each with what to do.

Every check is a :class:`Check`: ok, warn or fail, what was looked at, what was found and, when
not ok, the setting or command that fixes it. The checks only read: the warehouse is opened
read-only, the sync journal in SQLite's read-only mode, and nothing is created. Each vendor
costs one cheap authenticated call, made with ingestion's own clients and a short timeout:

- HubSpot ``GET /crm/v3/objects/companies?limit=1``;
- Harvest ``GET /v2/users/me`` with the ``Harvest-Account-Id`` header;
- NetSuite SuiteQL ``SELECT id FROM subsidiary`` with ``limit=1``.

Vendor settings are resolved by :func:`ingestion.settings.vendor_settings`, the function
``pslake ingest`` uses, so both see the same thing. No token or password reaches a check's text:
URLs go through :func:`ingestion.pipeline.safe_url`, and every text is scrubbed of the tokens
configured or resolved.

Nothing here writes to the terminal; ``pslake/doctor_cli.py`` prints the checks.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import duckdb
import requests

from ingestion.http import HttpSettings, RawPageClient
from ingestion.pipeline import WAREHOUSE_FILE, explain, safe_url
from ingestion.settings import NEEDS_ACCOUNT, VENDORS, Vendor, VendorSettings, env_name
from ingestion.settings import vendor_settings as resolve_vendor
from pslake import settings
from pslake.errors import PslakeError

Status = Literal["ok", "warn", "fail"]
DEFAULT_TIMEOUT_S = 5.0
SANDBOX_ENDPOINTS = "endpoints.json"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MARTS_SCHEMA = "marts"
MIN_SECRET = 4  # shorter "tokens" are not scrubbed: replacing "x" everywhere garbles every line

# The vendors' public API roots, to tell a real vendor from a sandbox or a proxy.
REAL_HOSTS: dict[Vendor, str] = {
    "hubspot": "api.hubapi.com",
    "harvest": "api.harvestapp.com",
    "netsuite": ".suitetalk.api.netsuite.com",  # <account>.suitetalk.api.netsuite.com
}


@dataclass(frozen=True, slots=True)
class Check:
    """One finding.

    Attributes:
        status: ``ok``, ``warn`` (works, but something is missing or stale) or ``fail``.
        what: What was checked (``harvest connection``, ``warehouse``).
        detail: What was found, on one line.
        fix: The setting or command that fixes it (empty when ok, or already in ``detail``).
    """

    status: Status
    what: str
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Probe:
    """The one cheap authenticated call made to a vendor."""

    method: Literal["GET", "POST"]
    path: str
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None


def _probes() -> dict[Vendor, Probe]:
    from ingestion.hubspot.settings import OBJECTS_PATH
    from ingestion.netsuite.settings import SUITEQL_PATH

    return {
        "hubspot": Probe("GET", f"{OBJECTS_PATH}/companies", params={"limit": 1}),
        "harvest": Probe("GET", "users/me"),
        "netsuite": Probe("POST", SUITEQL_PATH, params={"limit": 1},
                          json={"q": "SELECT id FROM subsidiary"}),
    }


def render(check: Check) -> str:
    """One line: ``ok|warn|FAIL  <what>: <detail>[; <fix>]``."""
    mark = "FAIL" if check.status == "fail" else check.status
    fix = f"; {check.fix}" if check.fix and check.status != "ok" else ""
    return f"{mark:<4}  {check.what}: {check.detail}{fix}"


def summary(checks: Iterable[Check]) -> str:
    """``doctor: N ok, N warn, N failed``."""
    statuses = [c.status for c in checks]
    return (f"doctor: {statuses.count('ok')} ok, {statuses.count('warn')} warn, "
            f"{statuses.count('fail')} failed")


def run_checks(data_dir: Path | None = None, offline: bool = False,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Check]:
    """Every check, in order, as each is known.

    Args:
        data_dir: The data folder (``--data-dir`` / ``$PSLAKE_DATA_DIR`` / ``data``).
        offline: Skip the calls to the vendors (settings are still resolved).
        timeout_s: How long to wait for each vendor's answer.

    Yields:
        Checks: the data folder, each vendor's settings and connection, the warehouse and its
        datasets, the marts, the published snapshot, the dashboard users, the sync policy and
        journal. No check's text holds a token or a password.
    """
    root = settings.data_dir(data_dir)
    secrets = _configured_secrets()

    def clean(check: Check) -> Check:
        return replace(check, detail=_scrub(check.detail, secrets),
                       fix=_scrub(check.fix, secrets))

    yield clean(check_data_dir(root))
    resolved: dict[Vendor, VendorSettings] = {}
    for vendor in VENDORS:
        check, vs = check_vendor_settings(vendor, root)
        if vs is not None:
            resolved[vendor] = vs
            secrets.append(vs.access_token)
        if offline and vs is not None:
            check = replace(check, detail=f"{check.detail} (not called: --offline)")
        yield clean(check)
    if not offline and resolved:
        with ThreadPoolExecutor(max_workers=len(resolved),
                                thread_name_prefix="doctor") as pool:
            futures = [pool.submit(check_connection, vs, timeout_s) for vs in resolved.values()]
            for future in futures:
                yield clean(future.result())
    checks, newest = warehouse_checks(root)
    for check in checks:
        yield clean(check)
    yield clean(check_snapshot(root, newest))
    yield clean(check_users(root))
    yield clean(check_sync_policy())
    yield clean(check_sync_journal(root))


# ---- the data folder --------------------------------------------------------------------------


def check_data_dir(root: Path) -> Check:
    """The data folder exists and is writable, or can be created."""
    what = "data folder"
    fix = f"choose another with --data-dir or ${settings.DATA_DIR_ENV}"
    shown = str(root.resolve())
    if root.exists():
        if not root.is_dir():
            return Check("fail", what, f"{shown} is a file, not a folder", fix)
        try:
            with tempfile.TemporaryFile(dir=root):
                pass
        except OSError as exc:
            return Check("fail", what, f"{shown} is not writable ({exc.strerror or exc})",
                         f"give this user write access to it, or {fix}")
        return Check("ok", what, f"{shown} (writable)")
    parent = next(p for p in root.resolve().parents if p.exists())
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check("ok", what, f"{shown} does not exist yet (`pslake ingest` creates it)")
    return Check("fail", what, f"{shown} does not exist and cannot be created "
                 f"({parent} is not a writable folder)", fix)


# ---- the vendors --------------------------------------------------------------------------------


def _configured_secrets() -> list[str]:
    """The tokens set in the environment, to scrub even when a vendor's settings do not resolve."""
    names = [env_name(v, "access_token") for v in VENDORS]
    return [os.environ[n] for n in names if os.environ.get(n)]


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            text = text.replace(secret, "***")
    return text


def _where(vs: VendorSettings, root: Path) -> str:
    """Where a vendor's settings point, in words."""
    url = safe_url(vs.base_url)
    if vs.origin == "sandbox":
        endpoints = settings.sandbox_dir(root) / SANDBOX_ENDPOINTS
        return f"the sandbox at {url} (from {endpoints})"
    host = (urlsplit(vs.base_url).hostname or "").lower()
    real = REAL_HOSTS[vs.vendor]
    kind = ("the vendor's API" if host == real or (real.startswith(".") and host.endswith(real))
            else "not the vendor's own API host")
    source = (env_name(vs.vendor, "base_url") if os.environ.get(env_name(vs.vendor, "base_url"))
              else ".dlt/config.toml or .dlt/secrets.toml")
    return f"{url} ({kind}; from {source})"


def check_vendor_settings(vendor: Vendor, root: Path) -> tuple[Check, VendorSettings | None]:
    """A vendor's settings resolve as ``pslake ingest`` resolves them, and where they point."""
    what = f"{vendor} settings"
    try:
        vs = resolve_vendor(vendor, root)
    except PslakeError as exc:
        return Check("fail", what, _unprefixed(str(exc), vendor)), None
    except OSError as exc:  # the sandbox's endpoints.json: a file for a folder, not ours to read
        return Check("fail", what, f"cannot read {exc.filename}: {exc.strerror or exc}",
                     f"fix the data folder, or set {env_name(vendor, 'base_url')} and "
                     f"{env_name(vendor, 'access_token')}"), None
    except Exception as exc:  # dlt's config providers: a broken .dlt/*.toml, say
        line = (str(exc).strip().splitlines() or [""])[0][:300]
        return Check("fail", what, f"{type(exc).__name__}: {line}",
                     "check .dlt/config.toml and .dlt/secrets.toml"), None
    detail = _where(vs, root)
    if vendor in NEEDS_ACCOUNT:
        detail += f", account {vs.account_id}"
    parts = urlsplit(vs.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Check("fail", what, f"base URL {safe_url(vs.base_url)!r} is not an http(s) URL",
                     f"set {env_name(vendor, 'base_url')}"), None
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        return Check("warn", what, f"{detail}: the token would travel unencrypted",
                     f"use https in {env_name(vendor, 'base_url')}"), vs
    return Check("ok", what, detail), vs


def _unprefixed(message: str, vendor: str) -> str:
    prefix = f"{vendor}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _client(vs: VendorSettings, timeout_s: float) -> RawPageClient:
    """Ingestion's own client for the vendor, without retries and with a short timeout."""
    from ingestion.summary import SourceTally

    http = HttpSettings(timeout_s=timeout_s, max_attempts=1)
    tally = SourceTally(vs.vendor)
    if vs.vendor == "hubspot":
        from ingestion.hubspot.client import make_client as hubspot_client

        return hubspot_client(vs.base_url, vs.access_token, tally, None, http)
    if vs.vendor == "netsuite":
        from ingestion.netsuite.client import make_client as netsuite_client

        return netsuite_client(vs.base_url, vs.access_token, tally, None, http)
    # Harvest's source builds its client privately; these are the same three parts
    from ingestion.harvest.settings import USER_AGENT
    from ingestion.http import bearer, vendor_session

    return RawPageClient(
        base_url=f"{vs.base_url.rstrip('/')}/v2",
        headers={"Harvest-Account-Id": vs.account_id or "", "User-Agent": USER_AGENT},
        auth=bearer(vs.access_token),
        session=vendor_session(None, tally.calls, http),
    )


def check_connection(vs: VendorSettings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """One cheap authenticated call to the vendor: ok with its latency, or what went wrong."""
    vendor = vs.vendor
    what = f"{vendor} connection"
    probe = _probes()[vendor]
    client = _client(vs, timeout_s)
    full = f"{client.base_url.rstrip('/')}/{probe.path.lstrip('/')}"
    url = safe_url(full)
    called = f"{probe.method} {full[len(vs.base_url.rstrip('/')):]}"  # GET /v2/users/me
    hint = ("is the sandbox running? start it with `pslake sandbox serve`"
            if vs.origin == "sandbox" else f"check {env_name(vendor, 'base_url')}")
    started = time.monotonic()
    try:
        response = client.request(probe.path, method=probe.method, params=probe.params,
                                  json=probe.json)
    except requests.Timeout as exc:
        if isinstance(exc, requests.ConnectionError):  # ConnectTimeout is both
            return Check("fail", what, f"unreachable: no connection to {url} within "
                         f"{timeout_s:g} s ({type(exc).__name__})", hint)
        return Check("fail", what, f"no answer from {url} within {timeout_s:g} s "
                     f"({type(exc).__name__})", hint)
    except requests.ConnectionError as exc:
        return Check("fail", what, f"unreachable: {url} ({type(exc).__name__})", hint)
    except requests.RequestException as exc:
        return Check("fail", what, f"{url}: {type(exc).__name__}", hint)
    except Exception as exc:  # one vendor's surprise must not hide the other checks
        line = (str(exc).strip().splitlines() or [""])[0][:200]
        return Check("fail", what, f"{url}: {type(exc).__name__}: {line}",
                     "run `pslake -v doctor` for the details")
    ms = (time.monotonic() - started) * 1000
    status = response.status_code
    if 200 <= status < 300:
        return Check("ok", what, f"{called} answered {status} in {ms:.0f} ms")
    if status in (401, 403):
        try:
            response.raise_for_status()
        except requests.HTTPError as exc:  # ingestion's own words for a refused token
            return Check("fail", what, _unprefixed(explain(vendor, vs, exc), vendor))
    if status == 429:
        return Check("warn", what, f"{url} is rate-limiting (HTTP 429); the credentials were "
                     "not checked", "run `pslake doctor` again in a minute")
    if status == 404:
        return Check("fail", what, f"{url} answered HTTP 404 ({response.reason})",
                     f"{env_name(vendor, 'base_url')} should be the API root "
                     + ("(https://ACCOUNT.suitetalk.api.netsuite.com)" if vendor == "netsuite"
                        else f"(https://{REAL_HOSTS[vendor]})"))
    return Check("fail", what, f"{url} answered HTTP {status} ({response.reason})", hint)


# ---- the warehouse ------------------------------------------------------------------------------


def _ago(seconds: float) -> str:
    """An age in the unit a reader wants: ``40 s``, ``12 min``, ``3.5 h``, ``4 days``."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def _utc(moment: dt.datetime) -> dt.datetime:
    """A time as UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _when(moment: dt.datetime, now: dt.datetime | None = None) -> str:
    """``2026-11-16 09:30 UTC (3.5 h ago)``."""
    moment = _utc(moment)
    now = now or dt.datetime.now(dt.UTC)
    stamp = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} ({_ago((now - moment).total_seconds())} ago)"


_LOCK = re.compile(r"held in (?P<program>.*?) \(PID (?P<pid>\d+)\)(?: by user (?P<user>\S+?))?\.?"
                   r"(?:\s|$)")


def _open_read_only(warehouse: Path) -> duckdb.DuckDBPyConnection | Check:
    """The warehouse, read-only; or a failed check saying why it cannot be opened."""
    what = "warehouse"
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" not in text.lower():
            return Check("fail", what, f"{warehouse} cannot be opened: {text.splitlines()[0]}")
        holder = _LOCK.search(text)
        by = ""
        if holder:
            by = f" (pid {holder['pid']}, {holder['program']}"
            by += f", user {holder['user']})" if holder["user"] else ")"
        return Check("fail", what, f"{warehouse} is in use by another process{by}",
                     "wait for it to finish (a running `pslake ingest`, `transform` or a SQL "
                     "client), or stop it")
    except duckdb.Error as exc:
        return Check("fail", what, f"{warehouse} is not a DuckDB file this version can read "
                     f"({(str(exc).splitlines() or [''])[0][:200]})",
                     "move it aside and run `pslake ingest --full-refresh`")


def warehouse_checks(root: Path, now: dt.datetime | None = None,
                     ) -> tuple[list[Check], dt.datetime | None]:
    """The warehouse: present, openable, which raw datasets have rows, whether marts exist.

    Returns:
        The checks, and the newest complete load of any raw dataset (None if there is none).
    """
    warehouse = root / WAREHOUSE_FILE
    if not warehouse.exists():
        return [Check("warn", "warehouse", f"none at {warehouse}",
                      "run `pslake ingest` to load the vendors into it")], None
    opened = _open_read_only(warehouse)
    if isinstance(opened, Check):
        return [opened], None
    con = opened
    try:
        return _read_warehouse(con, warehouse, now)
    except duckdb.Error as exc:
        line = (str(exc).strip().splitlines() or [""])[0][:200]
        return [Check("fail", "warehouse", f"{warehouse} cannot be read: {line}",
                      "if it persists, move it aside and run `pslake ingest --full-refresh`")], None
    finally:
        con.close()


def _read_warehouse(con: duckdb.DuckDBPyConnection, warehouse: Path, now: dt.datetime | None,
                    ) -> tuple[list[Check], dt.datetime | None]:
    """The warehouse checks past opening it: its size, each raw dataset, the marts."""
    size_mb = warehouse.stat().st_size / 1e6
    checks = [Check("ok", "warehouse", f"{warehouse} ({size_mb:,.1f} MB, opened read-only)")]
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = current_database()").fetchall()
    by_schema: dict[str, set[str]] = {}
    for schema, table in tables:
        by_schema.setdefault(schema, set()).add(table)
    newest: dt.datetime | None = None
    for vendor in VENDORS:
        check, loaded = _dataset(con, vendor, by_schema.get(f"raw_{vendor}", set()), now)
        checks.append(check)
        if loaded is not None and (newest is None or loaded > newest):
            newest = loaded
    marts = sorted(t for t in by_schema.get(MARTS_SCHEMA, set()) if not t.startswith("int_"))
    if marts:
        checks.append(Check("ok", "marts", f"{len(marts)} tables in schema {MARTS_SCHEMA}"))
    else:
        checks.append(Check("warn", "marts", f"no {MARTS_SCHEMA} schema yet",
                            "run `pslake transform` to build them"))
    return checks, newest


def newest_load(con: duckdb.DuckDBPyConnection, dataset: str) -> dt.datetime | None:
    """The newest complete load of a dataset (``_dlt_loads`` status 0), or None."""
    row = con.execute(f'select max(inserted_at) from "{dataset}"._dlt_loads '
                      "where status = 0").fetchone()
    value = row[0] if row else None
    return value if isinstance(value, dt.datetime) else None


def _dataset(con: duckdb.DuckDBPyConnection, vendor: Vendor, tables: set[str],
             now: dt.datetime | None) -> tuple[Check, dt.datetime | None]:
    dataset = f"raw_{vendor}"
    data = sorted(t for t in tables if not t.startswith("_dlt"))
    rows = sum(int(con.execute(f'select count(*) from "{dataset}"."{t}"').fetchall()[0][0])
               for t in data)
    loaded = newest_load(con, dataset) if "_dlt_loads" in tables else None
    fix = f"run `pslake ingest --source {vendor}`"
    if not rows:
        return Check("warn", dataset, "no rows yet", fix), loaded
    detail = f"{len(data)} tables, {rows:,} rows"
    if loaded is None:
        return Check("warn", dataset, f"{detail}, but no complete load recorded in _dlt_loads",
                     fix), None
    return Check("ok", dataset, f"{detail}; newest complete load {_when(loaded, now)}"), loaded


# ---- what the dashboard reads ----------------------------------------------------------------


def check_snapshot(root: Path, newest_load: dt.datetime | None = None,
                   now: dt.datetime | None = None) -> Check:
    """The snapshot the dashboard reads: published, when, how old, and older than the data?

    Args:
        root: The data folder.
        newest_load: The warehouse's newest complete load; a snapshot published before it
            shows the dashboard older data than the warehouse holds.
        now: The time ages are measured to (default: now).
    """
    from pslake.snapshot import current, snapshot_dir

    what = "snapshot"
    try:
        snapshot = current(root)
    except PslakeError as exc:
        return Check("fail", what, str(exc))
    if snapshot is None:
        return Check("warn", what, f"nothing published in {snapshot_dir(root)}",
                     "run `pslake transform` (it publishes) or `pslake publish`")
    detail = (f"published {_when(snapshot.published_at, now)}, {snapshot.tables} tables "
              f"({snapshot.path.name})")
    if newest_load is not None and snapshot.published_at < _utc(newest_load):
        return Check("warn", what, f"{detail}: older than the newest load "
                     f"({_when(newest_load, now)})", "run `pslake transform` (it publishes)")
    return Check("ok", what, detail)


def check_users(root: Path) -> Check:
    """The dashboard users file: present and how many users it names; the idle limit."""
    from app.auth import USERS_ENV, idle_limit_s, load_users, users_file

    what = "dashboard users"
    path = users_file(root)
    add = 'add one with `pslake app user add NAME --entity "*"`'
    try:
        users = load_users(path)
        idle_s = idle_limit_s()
    except PslakeError as exc:
        return Check("fail", what, str(exc))
    except (OSError, ValueError) as exc:  # unreadable, or not UTF-8
        return Check("fail", what, f"{path} is not readable ({exc})",
                     f"fix its permissions, or set ${USERS_ENV} to another file")
    if not users:
        found = "no users in" if path.exists() else "no users file at"
        return Check("warn", what, f"{found} {path}: nobody can sign in", add)
    sso = sum(1 for u in users.values() if u.sso)
    idle = f"idle sign-out after {idle_s / 60:g} min" if idle_s else "no idle sign-out"
    return Check("ok", what, f"{len(users)} user(s) in {path}"
                 + (f" ({sso} through the identity provider)" if sso else "") + f"; {idle}")


# ---- the reverse sync ---------------------------------------------------------------------------


def check_sync_policy() -> Check:
    """The reverse sync's policy file loads (``$PSLAKE_SYNC_POLICY``, else the shipped one)."""
    from reverse_sync.policy import DEFAULT_POLICY, POLICY_ENV, load_policy

    what = "sync policy"
    configured = os.environ.get(POLICY_ENV)
    try:
        policy = load_policy()
    except PslakeError as exc:
        return Check("fail", what, str(exc),
                     f"fix the file, or unset ${POLICY_ENV} to use the shipped one"
                     if configured else "reinstall pslake (the shipped policy is damaged)")
    source = configured or str(DEFAULT_POLICY)
    return Check("ok", what, f"{source} (batches of {policy.batch_size}, "
                 f"{policy.calls_per_window} calls / {policy.window_s:g} s)")


def check_sync_journal(root: Path) -> Check:
    """The reverse sync's journal is readable: runs, open intents, dead letters."""
    from reverse_sync.journal import STATE_FILE, sync_dir

    what = "sync journal"
    path = sync_dir(root) / STATE_FILE
    if not path.exists():
        return Check("ok", what, f"none yet at {path} (the first `pslake sync plan` writes it)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            runs = db.execute("select count(*) from runs").fetchone()[0]
            last = db.execute("select run_id, status from runs "
                              "order by started_at desc, run_id desc limit 1").fetchone()
            pending = db.execute(
                "select count(*) from batches where state = 'pending'").fetchone()[0]
            letters, given_up = db.execute(
                "select count(*), coalesce(sum(state = 'given_up'), 0) from dead_letters "
                "where state != 'resolved'").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return Check("fail", what, f"{path} is not a readable sync journal ({exc})",
                     "restore it from a backup: it is the reverse sync's memory of what it "
                     "wrote, do not delete it")
    detail = (f"{path}: {runs} run(s)" + (f", last {last[0]} ({last[1]})" if last else "")
              + f", {pending} open write intent(s), {letters} dead letter(s)")
    if pending:
        return Check("warn", what, f"{detail}: a sync was killed mid-write",
                     "the next `pslake sync plan` or `apply` settles them")
    if given_up:
        return Check("warn", what, f"{detail}, {given_up} given up",
                     "see `pslake sync status`")
    return Check("ok", what, detail)
