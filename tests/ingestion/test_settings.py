"""Vendor settings: dlt's names win, the sandbox is the fallback, and no secret is ever shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingestion.settings import VENDORS, env_name, vendor_settings
from pslake.errors import PslakeError

pytestmark = pytest.mark.unit

CANARY = "tok-CANARY-7f3a9c"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for vendor in VENDORS:
        for name in ("base_url", "access_token", "account_id"):
            monkeypatch.delenv(env_name(vendor, name), raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/ folder of the developer's leaks in


def _write_endpoints(data_dir: Path) -> None:
    folder = data_dir / "sandbox"
    folder.mkdir(parents=True)
    (folder / "endpoints.json").write_text(json.dumps({
        "hubspot": {"base_url": "http://127.0.0.1:9/hubspot", "access_token": "hs-sandbox"},
        "harvest": {"base_url": "http://127.0.0.1:9/harvest", "access_token": "hv-sandbox",
                    "account_id": "123456"},
        "netsuite": {"base_url": "http://127.0.0.1:9/netsuite", "access_token": "ns-sandbox",
                     "account_id": "1234567_SB1"},
    }))


def test_with_nothing_configured_the_sandbox_endpoints_are_used(tmp_path: Path):
    _write_endpoints(tmp_path)
    found = vendor_settings("harvest", tmp_path)
    assert (found.base_url, found.access_token, found.account_id, found.origin) == (
        "http://127.0.0.1:9/harvest", "hv-sandbox", "123456", "sandbox")


def test_dlt_environment_settings_win_over_the_sandbox(tmp_path: Path, monkeypatch):
    _write_endpoints(tmp_path)
    monkeypatch.setenv("SOURCES__HUBSPOT__BASE_URL", "https://api.hubapi.com/")
    monkeypatch.setenv("SOURCES__HUBSPOT__ACCESS_TOKEN", CANARY)
    found = vendor_settings("hubspot", tmp_path)
    assert (found.base_url, found.access_token, found.origin) == (
        "https://api.hubapi.com", CANARY, "config")
    assert CANARY not in repr(found)


def test_dlt_secrets_file_is_read(tmp_path: Path):
    # dlt reads .dlt/ once per process, from the working folder: run where the file is
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(
        '[sources.netsuite]\nbase_url = "https://1234567-sb1.suitetalk.api.netsuite.com"\n'
        f'access_token = "{CANARY}"\naccount_id = "1234567_SB1"\n')
    code = ("from ingestion.settings import vendor_settings; "
            "s = vendor_settings('netsuite'); print(s.origin, s.account_id, s.base_url)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "config", "1234567_SB1", "https://1234567-sb1.suitetalk.api.netsuite.com"]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"SOURCES__HARVEST__ACCESS_TOKEN": CANARY}, "SOURCES__HARVEST__BASE_URL"),
        ({"SOURCES__HARVEST__BASE_URL": "https://api.harvestapp.com",
          "SOURCES__HARVEST__ACCESS_TOKEN": CANARY}, "SOURCES__HARVEST__ACCOUNT_ID"),
    ],
    ids=["no-base-url", "no-account-id"],
)
def test_partial_configuration_names_what_to_set_without_the_secret(tmp_path, monkeypatch, env,
                                                                     missing):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(PslakeError, match=f"harvest: partly configured; also set .*{missing}") \
            as err:
        vendor_settings("harvest", tmp_path)
    assert CANARY not in str(err.value)


def test_nothing_configured_and_no_sandbox_says_both_ways_out(tmp_path: Path):
    with pytest.raises(PslakeError, match="hubspot: not configured and no sandbox") as err:
        vendor_settings("hubspot", tmp_path)
    assert "SOURCES__HUBSPOT__ACCESS_TOKEN" in str(err.value)
    assert "pslake sandbox serve" in str(err.value)
