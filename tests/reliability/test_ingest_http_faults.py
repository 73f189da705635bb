"""The battery's tests 1 and 2: ingest_http_fault_storm and ingest_retry_exhaustion_is_loud.

Test 1 runs all three vendors through a storm: the sandbox answers 429 with ``Retry-After`` in
seconds and as an HTTP date (its rate limits turned low), random 500/502/503/504, drops
connections mid-response and stalls beyond the client's read timeout; between pslake and the
sandbox, the test relay (``tests/relay.py``) truncates responses, resets connections and stalls
them at the byte level. The run must complete with raw tables equal to the golden fault-free
load (key and content hash), no retry may come before the ``Retry-After`` it answers, and no
request may be tried more often than the configured maximum.

Test 2 makes one endpoint answer 503 forever (Harvest's expenses) and one 401 (NetSuite's
SuiteQL), through the relay, and runs the real ``pslake ingest``: it must exit non-zero with a
line per failed vendor naming the endpoint, try the 503 exactly the configured number of times
and the 401 once, keep each failed vendor's cursors where they were (in the destination's state
and the local one), and show no secret anywhere in its output.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from ingestion.http import HttpSettings
from ingestion.pipeline import format_summary, ingest
from sandbox.server.app import SandboxThread
from tests.ingestion.battery import (
    Golden,
    clean_env,
    compare,
    fingerprint,
    golden_load,
    harvest_call,
    netsuite_patch,
    pslake,
    secrets_of,
    total_retries,
)
from tests.relay import KINDS, Faults, Relay, Rule
from tests.reliability import record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The storm's client policy: a read timeout the stalls go beyond, retries enough for the storm,
# and a retry delay cap above every Retry-After the low limits give (at most 3 s).
STORM_HTTP = HttpSettings(timeout_s=3, max_attempts=12, backoff_factor=0.05, max_retry_delay_s=8)
STALL_MS = 4_500  # the sandbox's slow answers: beyond the 3 s read timeout


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)


@pytest.fixture(scope="module")
def golden(small_firm_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Golden:
    return golden_load(small_firm_template, tmp_path_factory.mktemp("golden"))


def _faults(server: SandboxThread, **settings: Any) -> None:
    reply = requests.put(f"{server.root}/_sandbox/faults", json=settings, timeout=10)
    assert reply.status_code == 200, reply.text


def _storm(server: SandboxThread, firm: Path, golden: Golden, seed: int, rate: float
           ) -> None:
    _faults(server, rate_limit=True, retry_after_format="mixed", seed=seed,
            error_rate=rate, reset_rate=rate / 2, slow_rate=rate / 6, slow_ms=STALL_MS,
            limits={"hubspot": {"requests": 6, "window_s": 1, "search_requests": 2},
                    "harvest": {"requests": 4, "window_s": 1}})
    server.state.stats.reset()
    server.state.faults.injected.clear()
    with Relay(server.port, Faults(rate=rate / 2, seed=seed, hold_s=30, first=KINDS)) as relay:
        relay.point(firm / "endpoints.json")
        result = ingest(data_dir=firm.parent, http=STORM_HTTP)
    by_server = dict(server.state.faults.injected)
    by_relay = {f"relay {kind}": n for kind, n in relay.injected.items()}
    injected = sum(by_server.values()) + sum(by_relay.values())
    comparison = compare(golden.prints,
                         fingerprint(firm.parent / "warehouse.duckdb", like=golden.prints))
    early = relay.early_retries()
    attempts = relay.attempts()
    worst_early = max(early, default=0.0)
    most_attempts = max(attempts.values(), default=0)
    survived = (not result.errors and comparison.lost == 0 and comparison.duplicates == 0
                and worst_early == 0 and most_attempts <= STORM_HTTP.max_attempts)
    record("ingest_http_fault_storm", seed=seed, injected=injected,
           survived=injected if survived else 0, lost=comparison.lost,
           duplicates=comparison.duplicates,
           extra_calls=len(relay.exchanges) - sum(golden.calls.values()),
           faults={**by_server, **by_relay}, rate=rate, retries=total_retries(result),
           retry_after_answers=len(early), worst_early_retry_s=round(worst_early, 3),
           max_attempts_per_request=most_attempts, max_attempts=STORM_HTTP.max_attempts)
    assert not result.errors, result.errors
    assert comparison.lost == 0 and comparison.duplicates == 0, comparison.problems()
    assert worst_early == 0, f"a retry came {worst_early:.3f} s before its Retry-After"
    assert most_attempts <= STORM_HTTP.max_attempts, attempts.most_common(3)
    # the storm really was one: every kind of fault hit (the sandbox's slow answers are rare,
    # as each costs a timeout; the relay's stalls always come), both Retry-After forms met
    assert {"rate_limit", "5xx", "reset"} <= set(by_server), by_server
    assert set(relay.injected) == set(KINDS), relay.injected
    forms = {e.retry_after.strip().isdigit() for e in relay.exchanges if e.retry_after}
    assert forms == {True, False}, "both Retry-After forms (seconds, HTTP date) must be met"
    assert all(run.tally.calls.retried for run in result.runs), format_summary(result)


@pytest.mark.parametrize("seed", [7])
def test_a_storm_of_http_faults_on_all_three_vendors_loads_the_same_data_as_a_clean_run(
        served_firm: SandboxThread, small_firm: Path, golden: Golden, seed: int) -> None:
    _storm(served_firm, small_firm, golden, seed, rate=0.12)


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(100, 115))
def test_many_seeds_of_http_fault_storms_load_the_same_data_as_a_clean_run(
        served_firm: SandboxThread, small_firm: Path, golden: Golden, seed: int) -> None:
    _storm(served_firm, small_firm, golden, seed, rate=0.08 + (seed % 4) * 0.04)


# ---- test 2 ---------------------------------------------------------------------------------

FOREVER_503 = Rule("/harvest/v2/expenses", 503,
                   b'{"status": 503, "message": "Service Unavailable (test relay)"}')
REFUSED_401 = Rule("/netsuite/services/rest/query/v1/suiteql", 401,
                   b'{"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2", '
                   b'"title": "Unauthorized", "status": 401, "o:errorDetails": [{"detail": '
                   b'"Invalid login attempt.", "o:errorCode": "INVALID_LOGIN"}]}')
EXHAUSTION_ATTEMPTS = 4


def _destination_cursors(warehouse: Path, vendor: str) -> dict[str, Any]:
    """Each resource's incremental ``last_value`` in the newest complete state the warehouse
    holds for the vendor's pipeline (what a run without its working folder would restore)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute(
            f"select s.state from raw_{vendor}._dlt_pipeline_state s join raw_{vendor}._dlt_loads "
            "l on l.load_id = s._dlt_load_id where l.status = 0 order by l.load_id desc limit 1"
        ).fetchone()
    assert row is not None
    state = json.loads(zlib.decompress(base64.b64decode(row[0])))
    return _cursors(state, vendor)


def _cursors(state: dict[str, Any], vendor: str) -> dict[str, Any]:
    resources = state.get("sources", {}).get(vendor, {}).get("resources", {})
    return {name: {field: cursor.get("last_value")
                   for field, cursor in r.get("incremental", {}).items()}
            for name, r in resources.items() if r.get("incremental")}


def _local_cursors(data_dir: Path, vendor: str) -> dict[str, Any]:
    state = json.loads((data_dir / "dlt" / f"pslake_{vendor}" / "state.json").read_text())
    return _cursors(state, vendor)


def test_endpoints_that_fail_forever_or_refuse_end_the_run_loudly_and_move_no_cursor(
        served_firm: SandboxThread, small_firm: Path) -> None:
    data = small_firm.parent
    vendors = ("harvest", "netsuite")
    args = ("ingest", *(a for v in vendors for a in ("--source", v)))
    retry_env = {"RUNTIME__REQUEST_MAX_ATTEMPTS": str(EXHAUSTION_ATTEMPTS),
                 "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05",
                 "RUNTIME__REQUEST_MAX_RETRY_DELAY": "0.5", "RUNTIME__REQUEST_TIMEOUT": "10"}
    with Relay(served_firm.port) as relay:
        relay.point(small_firm / "endpoints.json")
        first = pslake(data, *args, **retry_env)
        assert first.returncode == 0, first.stderr
        before = {v: (_destination_cursors(data / "warehouse.duckdb", v), _local_cursors(data, v))
                  for v in vendors}
        # changes a successful run would load, moving the cursors of their tables
        store = sqlite3.connect(small_firm / "harvest.sqlite")
        (expense,) = store.execute("select min(id) from expenses").fetchone()
        harvest_call(served_firm, "PATCH", f"expenses/{expense}", {"notes": "changed"})
        (customer,) = sqlite3.connect(small_firm / "netsuite.sqlite").execute(
            "select min(id) from customer").fetchone()
        netsuite_patch(served_firm, "customer", customer, {"companyName": "Renamed Holdings"})
        relay.exchanges.clear()
        with relay.only_rules(FOREVER_503, REFUSED_401):
            failed = pslake(data, *args, "--report", str(data / "report.json"), **retry_env)
        after = {v: (_destination_cursors(data / "warehouse.duckdb", v),
                     _local_cursors(data, v)) for v in vendors}
        tried = list(relay.exchanges)
        healed = pslake(data, *args, **retry_env)
    moved = {v: _destination_cursors(data / "warehouse.duckdb", v) for v in vendors}
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    tries_503 = sum(1 for e in tried if e.target.startswith(FOREVER_503.path_prefix))
    tries_401 = sum(1 for e in tried if e.target.startswith(REFUSED_401.path_prefix))
    keys_401 = {e.key for e in tried if e.target.startswith(REFUSED_401.path_prefix)}
    report = (data / "report.json").read_text()
    leaked = sum(text.count(secret) for secret in secrets_of(small_firm)
                 for text in (failed.stdout, failed.stderr, report))
    loud = (failed.returncode == 1 and len(errors) == 2 and leaked == 0 and before == after
            and tries_401 == 1 and tries_503 == EXHAUSTION_ATTEMPTS)
    record("ingest_retry_exhaustion_is_loud", injected=2, survived=2 if loud else 0,
           leaked=leaked, extra_calls=tries_503 - 1, attempts_before_giving_up=tries_503,
           max_attempts=EXHAUSTION_ATTEMPTS, terminal_errors_retried=tries_401 - len(keys_401),
           cursors_moved=int(before != after))
    assert failed.returncode == 1, failed.stderr
    base = {v: served_firm.endpoints[v]["base_url"] for v in vendors}
    assert errors == [
        f"error: harvest: {base['harvest'].rsplit(':', 1)[0]}:{relay.port}/harvest/v2/expenses "
        "answered HTTP 503 after retries (Service Unavailable)",
        f"error: netsuite: {base['netsuite'].rsplit(':', 1)[0]}:{relay.port}/netsuite/services/"
        "rest/query/v1/suiteql refused the credentials (HTTP 401); check "
        "SOURCES__NETSUITE__ACCESS_TOKEN and SOURCES__NETSUITE__ACCOUNT_ID (from the sandbox's "
        "endpoints.json: restart `pslake sandbox serve`)"], failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr
    assert tries_503 == EXHAUSTION_ATTEMPTS
    assert tries_401 == 1, "a 401 is terminal: it must not be retried"
    assert leaked == 0
    assert before == after, "a failed vendor's cursors must stay where they were"
    # the next run, with the endpoints back, loads the changes the failed run did not
    assert healed.returncode == 0, healed.stderr
    assert moved["harvest"]["expenses"] != before["harvest"][0]["expenses"]
    assert moved["netsuite"]["customer"] != before["netsuite"][0]["customer"]
    assert json.loads(report)["vendors"]["harvest"]["error"] in errors[0]
