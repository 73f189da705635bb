"""The runner's one-line messages: no credentials in URLs, the setting to fix named."""

from __future__ import annotations

import pytest
import requests

from ingestion.pipeline import explain, safe_url
from ingestion.settings import VendorSettings

pytestmark = pytest.mark.unit


def test_safe_url_drops_credentials_and_keeps_the_rest():
    assert safe_url("https://bob:s3cret@api.example.com:8443/v2?x=1") == \
        "https://api.example.com:8443/v2?x=1"
    assert safe_url("http://127.0.0.1:8765/harvest") == "http://127.0.0.1:8765/harvest"


def _http_error(status: int, url: str) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.url = url
    response.reason = "Forbidden"
    return requests.HTTPError(response=response)


def test_a_refused_token_names_vendor_url_and_settings_but_no_secret():
    vs = VendorSettings("netsuite", "https://u:pw@1234.suitetalk.api.netsuite.com", "tok-123",
                        "1234", "config")
    wrapped = RuntimeError("extract failed")
    wrapped.__cause__ = _http_error(
        403, "https://u:pw@1234.suitetalk.api.netsuite.com/services/rest/query/v1/suiteql?limit=1")
    line = explain("netsuite", vs, wrapped)
    assert line == ("netsuite: https://1234.suitetalk.api.netsuite.com/services/rest/query/v1/"
                    "suiteql refused the credentials (HTTP 403); check "
                    "SOURCES__NETSUITE__ACCESS_TOKEN and SOURCES__NETSUITE__ACCOUNT_ID")
    assert "pw" not in line and "tok-123" not in line


def test_an_unknown_failure_is_still_one_line():
    vs = VendorSettings("hubspot", "https://api.hubapi.com", "t", None, "config")
    line = explain("hubspot", vs, RuntimeError("first line\nsecond line"))
    assert line == "hubspot: RuntimeError: first line (run with --verbose for the details)"
