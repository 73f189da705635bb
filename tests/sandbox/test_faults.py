"""Request-level fault modes, the control endpoints, and what they count."""

from __future__ import annotations

import email.utils
import threading
import time
from typing import Any

import pytest
import requests

from sandbox.server.app import SandboxThread
from sandbox.server.faults import DEFAULT_LIMITS, FaultConfig

pytestmark = pytest.mark.integration


def _call(server: SandboxThread, vendor: str, timeout: float = 30) -> requests.Response:
    """One cheap, authenticated read of a vendor, as its client would make it."""
    e = server.endpoints[vendor]
    if vendor == "hubspot":
        return requests.get(f"{e['base_url']}/crm/v3/objects/companies", params={"limit": 1},
                            headers={"Authorization": f"Bearer {e['access_token']}"},
                            timeout=timeout)
    if vendor == "harvest":
        return requests.get(f"{e['base_url']}/v2/users", params={"per_page": 1}, timeout=timeout,
                            headers={"Authorization": f"Bearer {e['access_token']}",
                                     "Harvest-Account-Id": e["account_id"],
                                     "User-Agent": "pslake tests"})
    return requests.post(f"{e['base_url']}/services/rest/query/v1/suiteql", timeout=timeout,
                         params={"limit": 1},
                         headers={"Authorization": f"Bearer {e['access_token']}",
                                  "Prefer": "transient"},
                         json={"q": "SELECT id FROM subsidiary ORDER BY id"})


def _set(server: SandboxThread, **settings: Any) -> dict[str, Any]:
    r = requests.put(f"{server.root}/_sandbox/faults", json=settings, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_all_faults_are_off_by_default_and_limits_are_the_vendors_real_ones(served_firm):
    config = requests.get(f"{served_firm.root}/_sandbox/faults", timeout=10).json()
    assert config["rate_limit"] is False
    assert config["error_rate"] == config["reset_rate"] == config["malformed_rate"] == 0
    assert config["limits"]["hubspot"]["requests"] == 190
    assert config["limits"]["hubspot"]["window_s"] == 10
    assert config["limits"]["hubspot"]["search_requests"] == 5
    assert config["limits"]["harvest"] == {"requests": 100, "window_s": 15}
    assert config["limits"]["netsuite"]["concurrency"] == 15
    assert config["limits"] == DEFAULT_LIMITS
    for vendor in ("hubspot", "harvest", "netsuite"):
        assert _call(served_firm, vendor).status_code == 200


@pytest.mark.parametrize("vendor", ["hubspot", "harvest"])
def test_rate_limit_answers_429_with_retry_after_and_lets_through_after_the_wait(
        served_firm, vendor):
    _set(served_firm, rate_limit=True, limits={vendor: {"requests": 4, "window_s": 2}})
    statuses = [_call(served_firm, vendor) for _ in range(6)]
    assert [r.status_code for r in statuses] == [200] * 4 + [429] * 2
    throttled = statuses[-1]
    wait = int(throttled.headers["Retry-After"])
    assert 1 <= wait <= 2
    if vendor == "hubspot":
        body = throttled.json()
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
        assert "correlationId" in body
        assert statuses[0].headers["X-HubSpot-RateLimit-Max"] == "4"
    time.sleep(wait)
    assert _call(served_firm, vendor).status_code == 200
    stats = requests.get(f"{served_firm.root}/_sandbox/stats", timeout=10).json()
    assert stats["faults_injected"]["rate_limit"] == 2
    assert stats["vendors"][vendor]["statuses"]["429"] == 2


def test_hubspot_search_has_its_own_per_second_limit(served_firm):
    _set(served_firm, rate_limit=True, limits={"hubspot": {"search_requests": 2}})
    e = served_firm.endpoints["hubspot"]
    codes = [requests.post(f"{e['base_url']}/crm/v3/objects/companies/search", json={"limit": 1},
                           headers={"Authorization": f"Bearer {e['access_token']}"},
                           timeout=10).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert _call(served_firm, "hubspot").status_code == 200  # plain reads are not searches


def test_retry_after_can_be_an_http_date_in_the_future(served_firm):
    _set(served_firm, rate_limit=True, retry_after_format="http-date",
         limits={"harvest": {"requests": 1, "window_s": 5}})
    _call(served_firm, "harvest")
    throttled = _call(served_firm, "harvest")
    assert throttled.status_code == 429
    when = email.utils.parsedate_to_datetime(throttled.headers["Retry-After"])
    assert when.timestamp() > time.time()


def test_netsuite_rejects_requests_beyond_its_concurrency_limit(served_firm):
    # no slow mode: each request holds its slot for NetSuite's service time
    _set(served_firm, rate_limit=True, limits={"netsuite": {"concurrency": 2, "service_ms": 300}})
    results: list[requests.Response] = []
    threads = [threading.Thread(target=lambda: results.append(_call(served_firm, "netsuite")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) >= 2 and 429 in codes
    throttled = next(r for r in results if r.status_code == 429)
    assert throttled.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert "Retry-After" in throttled.headers


@pytest.mark.parametrize(
    ("vendor", "shape"),
    [
        ("hubspot", {"status", "message", "correlationId", "category"}),
        ("harvest", {"message"}),
        ("netsuite", {"type", "title", "status", "o:errorDetails"}),
    ],
    ids=["hubspot", "harvest", "netsuite"],
)
def test_injected_server_errors_come_in_each_vendors_shape(served_firm, vendor, shape):
    _set(served_firm, error_rate=1.0)
    response = _call(served_firm, vendor)
    assert response.status_code in (500, 502, 503, 504)
    assert shape <= set(response.json())


def test_faults_apply_only_to_the_vendors_named(served_firm):
    _set(served_firm, error_rate=1.0, vendors=["netsuite"])
    assert _call(served_firm, "harvest").status_code == 200
    assert _call(served_firm, "netsuite").status_code >= 500


def test_slow_mode_delays_responses(served_firm):
    _set(served_firm, slow_rate=1.0, slow_ms=400)
    started = time.monotonic()
    assert _call(served_firm, "harvest").status_code == 200
    assert time.monotonic() - started >= 0.4


def test_slow_mode_beyond_the_client_timeout_is_a_read_timeout(served_firm):
    _set(served_firm, slow_rate=1.0, slow_ms=1500)
    with pytest.raises(requests.exceptions.ReadTimeout):
        _call(served_firm, "hubspot", timeout=0.5)


@pytest.mark.parametrize("vendor", ["hubspot", "harvest", "netsuite"])
def test_reset_mode_drops_the_connection_mid_response(served_firm, vendor):
    _set(served_firm, reset_rate=1.0)
    cut = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    with pytest.raises(cut, match=r"Connection broken|Connection aborted|RemoteDisconnected"):
        _call(served_firm, vendor)
    _set(served_firm, reset_rate=0.0)
    assert _call(served_firm, vendor).status_code == 200  # the server itself is fine


def test_random_error_rate_fails_about_that_share_of_requests(served_firm):
    _set(served_firm, error_rate=0.3, seed=42)
    codes = [_call(served_firm, "harvest").status_code for _ in range(100)]
    failed = sum(code >= 500 for code in codes)
    assert 15 <= failed <= 45
    stats = requests.get(f"{served_firm.root}/_sandbox/stats", timeout=10).json()
    assert stats["faults_injected"]["5xx"] == failed


def test_stats_count_per_vendor_method_and_endpoint_and_reset(served_firm):
    for _ in range(3):
        _call(served_firm, "harvest")
    _call(served_firm, "netsuite")
    stats = requests.get(f"{served_firm.root}/_sandbox/stats", timeout=10).json()
    assert stats["vendors"]["harvest"]["endpoints"]["GET /v2/users"] == 3
    assert stats["vendors"]["netsuite"]["endpoints"][
        "POST /services/rest/query/v1/suiteql"] == 1
    assert stats["vendors"]["hubspot"]["total"] == 0
    assert requests.delete(f"{served_firm.root}/_sandbox/stats", timeout=10).status_code == 204
    stats = requests.get(f"{served_firm.root}/_sandbox/stats", timeout=10).json()
    assert all(v["total"] == 0 for v in stats["vendors"].values())


@pytest.mark.parametrize(
    "body",
    [{"error_rate": 3}, {"nonsense": True}, {"vendors": ["salesforce"]}, [1, 2]],
    ids=["rate-out-of-range", "unknown-setting", "unknown-vendor", "not-an-object"],
)
def test_bad_fault_settings_are_refused_and_change_nothing(served_firm, body):
    r = requests.put(f"{served_firm.root}/_sandbox/faults", json=body, timeout=10)
    assert r.status_code == 400 and r.json()["error"]
    assert requests.get(f"{served_firm.root}/_sandbox/faults", timeout=10).json()[
        "error_rate"] == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rate_limit,error_rate=0.05", {"rate_limit": True, "error_rate": 0.05}),
        ('{"reset_rate": 0.1, "drift": true}', {"reset_rate": 0.1, "drift": True}),
        ("slow_rate=0.2,slow_ms=3000,vendors=harvest+netsuite",
         {"slow_rate": 0.2, "slow_ms": 3000, "vendors": ["harvest", "netsuite"]}),
        ("", {"rate_limit": False, "error_rate": 0.0}),
        ("rate_limit=false,drift=on", {"rate_limit": False, "drift": True}),
    ],
    ids=["flags", "json", "vendors", "empty", "booleans"],
)
def test_fault_specs_parse_from_text_and_environment(monkeypatch, text, expected):
    monkeypatch.setenv("PSLAKE_SANDBOX_FAULTS", text)
    config = FaultConfig.from_env()
    for key, value in expected.items():
        assert getattr(config, key) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("error_rate=5%", "error_rate='5%' is not a number"),
        ('{"error_rate": true}', "error_rate must be a number"),
        ('{"limits": {"harvest": {"requests": "x"}}}', "limits.harvest.requests"),
        ('{"limits": {"sap": {"requests": 5}}}', "unknown vendor 'sap'"),
    ],
    ids=["percent", "bool-rate", "text-limit", "unknown-vendor"],
)
def test_bad_fault_specs_name_the_setting(text, message):
    with pytest.raises(ValueError, match=message):
        FaultConfig.parse(text)


def test_faults_given_at_start_are_in_force(small_firm):
    with SandboxThread(small_firm, FaultConfig.parse("error_rate=1")) as server:
        assert _call(server, "hubspot").status_code >= 500


@pytest.mark.parametrize("vendor", ["hubspot", "harvest", "netsuite"])
def test_a_wrong_token_is_refused_with_401_in_the_vendors_shape(served_firm, vendor):
    good = served_firm.endpoints[vendor]["access_token"]
    served_firm.endpoints[vendor]["access_token"] = "wrong-token"
    try:
        response = _call(served_firm, vendor)
    finally:
        served_firm.endpoints[vendor]["access_token"] = good
    assert response.status_code == 401
    assert "wrong-token" not in response.text
