"""The battery's test 23, secrets_and_pii_never_leak (shared/RELIABILITY.md).

The product runs on a copy of the small firm's warehouse and store, each command a real `pslake`
process at DEBUG level: ingest, transform (the freshness check, integration health and a sync
model), sync apply, publish, then failing runs (a canary token for each vendor: 401s
from ingest, the sync and doctor; the sandbox answering 500s and resets). The secrets are the
sandbox's own tokens, the canary tokens, a dashboard user's canary password and a canary cookie
secret; the PII canaries are people's e-mail addresses. Then every artifact is searched:

- for the secrets: every command's output and every file under the data folder (logs, dlt's
  working folder and traces, dbt's target and logs, the sync journal, the users and secrets
  files except where a secret must be kept), every text column of every table of the warehouse
  and of the dashboard's snapshot (raw data included), and every page of the dashboard as
  rendered;
- for the PII: the outputs, the logs, dbt's target and the sync journal (the raw data, dlt's
  load packages and the marts hold people by design).

Nothing may be found.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import requests
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.auth import save_user
from app.state import connect
from sandbox.server.app import SandboxThread
from tests.conftest import BuiltFirm
from tests.reliability import record

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CANARY_TOKEN = "CANARY-TOKEN-7f3a9c1e55d24b0b"
CANARY_PASSWORD = "CANARY-PASSWORD-9d1b44e0a2"
CANARY_COOKIE = "CANARY-COOKIE-SECRET-3c8e0f71b6"
ENTRYPOINT = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"
PAGES = ["overview", "utilization", "margin", "wip", "reconciliation", "reverse_sync",
         "integration_health"]
VENDORS = ("hubspot", "harvest", "netsuite")
# where a secret must be kept: the vendor side, and the files that hold it for pslake to use
KEEPERS = ("sandbox", "app/secrets.toml")


def _pslake(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    run = subprocess.run([sys.executable, "-m", "pslake", "--verbose", "--data-dir",
                          str(data_dir), *args], capture_output=True, text=True, timeout=600,
                         env={**base, "PSLAKE_ACTOR": "ops", **(env or {})})
    return f"$ pslake {' '.join(args)} (exit {run.returncode})\n{run.stdout}\n{run.stderr}"


def _canary_env(endpoints: dict[str, dict[str, str]], vendor: str) -> dict[str, str]:
    entry = endpoints[vendor]
    env = {f"SOURCES__{vendor.upper()}__BASE_URL": entry["base_url"],
           f"SOURCES__{vendor.upper()}__ACCESS_TOKEN": CANARY_TOKEN}
    if "account_id" in entry:
        env[f"SOURCES__{vendor.upper()}__ACCOUNT_ID"] = entry["account_id"]
    return env


def _rendered_pages(data_dir: Path) -> str:
    """The text of every element of every dashboard page, signed in with the canary password."""
    os.environ["PSLAKE_DATA_DIR"] = str(data_dir)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60).run()
    at.text_input(key="auth_username").input("ceo")
    at.text_input(key="auth_password").input(CANARY_PASSWORD)
    at.button[0].click().run()
    texts = []
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.message for e in at.exception]
        for kind in ("markdown", "caption", "metric", "info", "warning", "error", "title",
                     "header", "subheader", "text"):
            for element in getattr(at, kind):
                texts.append(str(element.value))
                texts.append(str(getattr(element.proto, "help", "")))
        texts += [frame.value.to_csv() for frame in at.dataframe]
    st.cache_data.clear()
    st.cache_resource.clear()
    return "\n".join(texts)


def _text_hits(con: duckdb.DuckDBPyConnection, needles: list[str]) -> list[str]:
    """Tables of a DuckDB file whose text columns hold a needle, with the count of rows."""
    hits = []
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'JSON')").fetchall():
        columns.setdefault((schema, table), []).append(column)
    for (schema, table), names in columns.items():
        test = " or ".join(f'contains(cast("{n}" as varchar), ?)' for n in names for _ in needles)
        params = [needle for _ in names for needle in needles]
        found = con.execute(f'select count(*) from "{schema}"."{table}" where {test}',
                            params).fetchall()[0][0]
        if found:
            hits.append(f"{schema}.{table}: {found} row(s)")
    return hits


def test_no_secret_or_pii_appears_in_any_output_artifact_table_or_page(
        small_warehouse: BuiltFirm, tmp_path: Path) -> None:
    data_dir = small_warehouse.copy_to(tmp_path / "data")
    store = data_dir / "sandbox"
    shutil.copytree(small_warehouse.firm, store)  # the sync writes to this CRM
    as_of = small_warehouse.as_of.isoformat()
    with sqlite3.connect(store / "harvest.sqlite") as harvest:
        emails = [e for e, in harvest.execute("select email from users order by id limit 5")]
    users = data_dir / "app" / "users.toml"
    save_user(users, "ceo", CANARY_PASSWORD, ["*"])
    (data_dir / "app" / "secrets.toml").write_text(
        f'[auth]\nredirect_uri = "http://127.0.0.1:1/oauth2callback"\n'
        f'cookie_secret = "{CANARY_COOKIE}"\n')
    outputs = []
    with SandboxThread(store) as server:
        endpoints = server.endpoints
        outputs.append(_pslake(data_dir, "ingest"))
        outputs.append(_pslake(data_dir, "transform", "--as-of", as_of,
                               "--select", "stg_pslake__source_freshness",
                               "--select", "mart_integration_health",
                               "--select", "sync_hubspot__companies"))
        outputs.append(_pslake(data_dir, "sync", "apply"))
        for vendor in VENDORS:  # a wrong token: 401s, and the messages about them
            outputs.append(_pslake(data_dir, "ingest", "--source", vendor,
                                   env=_canary_env(endpoints, vendor)))
            outputs.append(_pslake(data_dir, "doctor", env=_canary_env(endpoints, vendor)))
        outputs.append(_pslake(data_dir, "sync", "plan", env=_canary_env(endpoints, "hubspot")))
        faults = requests.put(f"{server.root}/_sandbox/faults", timeout=10, json={
            "error_rate": 0.2, "reset_rate": 0.05, "seed": 3})
        assert faults.status_code == 200, faults.text
        outputs.append(_pslake(data_dir, "ingest", "--source", "hubspot"))
        outputs.append(_pslake(data_dir, "sync", "apply"))
    assert "transform: " in outputs[1] and "(exit 0)" in outputs[1], outputs[1][-2000:]
    pages = _rendered_pages(data_dir)

    secrets = [endpoints[v]["access_token"] for v in VENDORS]
    secrets += [CANARY_TOKEN, CANARY_PASSWORD, CANARY_COOKIE]
    text = "\n".join(outputs)
    hits = [f"command output: {s[:12]}…" for s in secrets if s in text]
    hits += [f"dashboard page: {s[:12]}…" for s in secrets if s in pages]
    hits += [f"command output (PII): {e}" for e in emails if e in text]
    scanned_files = scanned_bytes = 0
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(data_dir).as_posix()
        if relative.startswith(KEEPERS):
            continue
        content = path.read_bytes()
        scanned_files += 1
        scanned_bytes += len(content)
        hits += [f"{relative}: {s[:12]}…" for s in secrets if s.encode() in content]
        if relative.startswith(("logs/", "dbt/", "reverse_sync/")):
            hits += [f"{relative} (PII): {e}" for e in emails if e.encode() in content]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        hits += [f"warehouse.duckdb {hit}" for hit in _text_hits(con, secrets)]
    for database in (data_dir / "snapshots").glob("*.duckdb"):
        with connect(str(database)) as con:  # as the app opens it (one config per file)
            hits += [f"{database.name} {hit}" for hit in _text_hits(con, secrets)]
    assert "scrypt" in users.read_text()  # the password is kept as a hash only
    record("secrets_and_pii_never_leak", injected=len(secrets) + len(emails),
           survived=len(secrets) + len(emails) - len({h.rsplit(': ', 1)[-1] for h in hits}),
           bad_inputs=len(VENDORS) * 2 + 1, leaked=len(hits),
           artifacts_scanned=scanned_files + len(outputs) + 1, bytes_scanned=scanned_bytes)
    assert not hits, hits
    assert all("401" in out or "refused" in out or "credentials" in out
               for out in outputs[3:9]), "the canary runs did not fail on their credentials"
