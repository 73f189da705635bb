"""The demo path a newcomer takes (`pslake demo`), end to end on the small firm.

One data folder, three runs of the real command: the first generates, ingests, builds, syncs,
publishes and starts the dashboard; the second picks up what the sync wrote to the CRM; the third
finds nothing new and skips the build. Then the dashboard's headline numbers are read through
Streamlit's AppTest with the printed sign-in and compared with the marts, and the CRM's copy of
every ERP invoice is compared with the ERP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import streamlit as st

from app.state import connect
from pslake import snapshot
from sandbox import store
from tests.app.conftest import signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEP = re.compile(r"^\[(\d)/7\] (\w+)$")
SIGN_IN = re.compile(r"sign in as (\S+) / (\S+) ")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _demo(data_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    # HubSpot's search lags writes, so ingestion leaves changes younger than 60 s to the next
    # run; runs seconds apart would see the sync's writes late, and a run might build or skip
    # depending on the machine's speed. The emulator's search does not lag.
    env["SOURCES__HUBSPOT__SEARCH_SETTLE_S"] = "0"
    result = subprocess.run(
        [sys.executable, "-m", "pslake", "--data-dir", str(data_dir), "demo", "--size", "small",
         "--no-wait", "--port", "0", "--app-port", str(_free_port())],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    data_dir = tmp_path_factory.mktemp("demo")
    return data_dir, [_demo(data_dir) for _ in range(3)]


def test_each_run_prints_the_seven_steps_with_their_times_then_the_url_and_a_sign_in(
        demo_runs: tuple[Path, list[str]]) -> None:
    _, outputs = demo_runs
    for out in outputs:
        lines = out.splitlines()
        steps = [m.groups() for m in map(STEP.match, lines) if m]
        assert steps == [(str(i), name) for i, name in enumerate(
            ["firm", "sandbox", "ingest", "transform", "sync", "publish", "dashboard"], 1)]
        assert all(re.search(r"\(\d+\.\d s\)$", line) for line in lines
                   if line.startswith("      ") and line.endswith(" s)")), out
        assert re.search(r"^      http://127\.0\.0\.1:\d+$", out, re.M), out
        assert SIGN_IN.search(out), out
        assert re.search(r"^demo: ready in \d+\.\d s$", out, re.M), out


def test_a_rerun_reuses_the_firm_and_skips_the_build_when_nothing_is_new(
        demo_runs: tuple[Path, list[str]]) -> None:
    _, (first, second, third) = demo_runs
    assert "generated the small firm" in first
    assert "reusing the small firm" in second and "reusing the small firm" in third
    # the second run ingests what the first run's sync wrote to the CRM, so it builds again
    assert "tests passed" in second
    assert "skipped: the raw data and the as-of date are as the last build saw them" in third
    ingest = third.split("[3/7] ingest\n")[1].splitlines()[0]
    assert re.match(r"^      [\d,]+ records read, 0 new, 0 quarantined", ingest), ingest
    assert SIGN_IN.search(first).groups() == SIGN_IN.search(third).groups()  # same sign-in


def test_the_dashboard_headline_numbers_equal_the_marts(
        demo_runs: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, outputs = demo_runs
    user, password = SIGN_IN.search(outputs[-1]).groups()
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("PSLAKE_APP_USERS", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = signed_in(user, password)
    assert not at.exception, [e.message for e in at.exception]
    month = at.selectbox(key="filter_month").value
    published = snapshot.current(data_dir)
    assert published is not None
    with connect(str(published.path)) as con:  # as the app opens it (one config per file)
        revenue, wip, ar, exceptions = con.execute(
            "select recognised_revenue_reporting, wip_amount_reporting, ar_balance_reporting, "
            "open_exception_count from marts.mart_exec_kpis_monthly "
            "where is_all_entities and month_start_date = ?", [month]).fetchall()[0]
    exact = {m.label: m.proto.help or m.value for m in at.metric}  # money: exact on hover
    assert exact["Revenue recognised"] == f"USD {revenue:,.2f}"
    assert exact["WIP"] == f"USD {wip:,.2f}"
    assert exact["AR"] == f"USD {ar:,.2f}"
    shown = {m.label: m.value for m in at.metric}
    assert int(shown["Open exceptions"].replace(",", "")) == exceptions
    st.cache_data.clear()
    st.cache_resource.clear()


def test_after_the_sync_the_crm_holds_every_erp_invoices_status_and_paid_amount(
        demo_runs: tuple[Path, list[str]]) -> None:
    data_dir, _ = demo_runs
    # the CRM as it is now (the sandbox's HubSpot store), not the warehouse's copy of it: the
    # next ingest reads the sync's writes only once HubSpot's search has settled (60 s)
    with store.connect(data_dir / "sandbox", "hubspot") as crm:
        mirrors = {
            props["netsuite_invoice_id"]: (props.get("invoice_status"),
                                           Decimal(props.get("amount_paid") or "0"))
            for props in (json.loads(text) for text, in crm.execute(
                "select properties from objects "
                "where object_type = 'erp_invoices' and not archived"))}
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        erp = {invoice: (status, paid) for invoice, status, paid in con.execute(
            "select erp_invoice_id, invoice_status, amount_paid from canonical.fct_invoices "
            "where document_type = 'invoice'").fetchall()}
        held = {key for key, in con.execute(
            "select record_key from staging.stg_pslake__sync_changes "
            "where crm_object = 'erp_invoices' and decision = 'hold'").fetchall()}
    assert len(erp) > 50
    differing = {invoice: (expected, mirrors.get(invoice)) for invoice, expected in erp.items()
                 if mirrors.get(invoice) != expected}
    assert set(differing) == held, differing  # only what waits for approval


def test_sigterm_to_the_whole_process_group_stops_the_demo_and_its_dashboard(
        demo_runs: tuple[Path, list[str]]) -> None:
    """As `timeout` or a supervisor stops it: SIGTERM to the demo's process group, twice. The
    demo stops its dashboard (in a session of its own, which the group signal does not reach)
    and the sandbox, says so, and exits 0; the second signal does not cut the stop short."""
    data_dir, _ = demo_runs
    app_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pslake", "--data-dir", str(data_dir), "demo", "--size", "small",
         "--port", "0", "--app-port", str(app_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("demo: the dashboard and the sandbox run until Ctrl-C"):
                break
        assert seen and seen[-1].startswith("demo: the dashboard"), "".join(seen)
        with socket.create_connection(("127.0.0.1", app_port), timeout=5):
            pass  # the dashboard is up
        os.killpg(proc.pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, "".join(seen) + out + err
    assert out.strip().endswith("demo: stopped"), out + err
    assert "interrupted" not in out + err
    with pytest.raises(OSError):  # nothing listens on the dashboard's port any more
        socket.create_connection(("127.0.0.1", app_port), timeout=2).close()
