"""``pslake doctor`` against a served small firm, a built warehouse, and broken settings."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.auth import save_user
from pslake import settings
from pslake.cli import app
from pslake.doctor import check_users
from pslake.snapshot import publish
from reverse_sync.journal import STATE_FILE, Journal, sync_dir
from sandbox.server.app import SandboxThread

pytestmark = pytest.mark.integration

CANARY = "canary-7f3e1d-never-print-me"
VENDORS = ("hubspot", "harvest", "netsuite")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No vendor settings (so the sandbox's endpoints.json is used), no users or policy file.

    The data folder variable is set here so that monkeypatch restores it after the CLI's
    ``--data-dir`` callback has written it.
    """
    for vendor in VENDORS:
        for name in ("BASE_URL", "ACCESS_TOKEN", "ACCOUNT_ID"):
            monkeypatch.delenv(f"SOURCES__{vendor.upper()}__{name}", raising=False)
    monkeypatch.delenv("PSLAKE_APP_USERS", raising=False)
    monkeypatch.delenv("PSLAKE_APP_IDLE_MINUTES", raising=False)
    monkeypatch.delenv("PSLAKE_SYNC_POLICY", raising=False)
    monkeypatch.setenv(settings.DATA_DIR_ENV, "unset-by-the-test")
    return monkeypatch


def doctor(data_dir: Path, *args: str) -> tuple[int, list[str]]:
    """Run `pslake --data-dir DATA_DIR doctor ARGS`: the exit code and the printed lines."""
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), "doctor", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output.splitlines()


def line(lines: list[str], what: str) -> str:
    """The one line of a check (its text after the six-character status column)."""
    found = [text for text in lines if text[6:].startswith(f"{what}:")]
    assert len(found) == 1, f"expected one line for {what!r} in:\n" + "\n".join(lines)
    return found[0]


def closed_port() -> int:
    """A localhost port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure(env: pytest.MonkeyPatch, vendor: str, entry: dict[str, str], **changed: str
              ) -> None:
    """Set a vendor's settings as environment variables: the sandbox's values, some changed
    (an empty value leaves that setting unset)."""
    values = {"base_url": entry["base_url"], "access_token": entry["access_token"],
              "account_id": entry.get("account_id", ""), **changed}
    for name, value in values.items():
        if value:
            env.setenv(f"SOURCES__{vendor.upper()}__{name.upper()}", value)


def test_served_sandbox_vendors_are_ok_with_their_latency(
    served_firm: SandboxThread, clean_env: pytest.MonkeyPatch, tmp_path: Path
):
    code, lines = doctor(tmp_path)  # served_firm serves tmp_path/sandbox
    for vendor in VENDORS:
        settings_line = line(lines, f"{vendor} settings")
        assert settings_line.startswith("ok    "), settings_line
        assert f"the sandbox at {served_firm.root}/{vendor}" in settings_line
        assert "endpoints.json" in settings_line
        assert line(lines, f"{vendor} connection").startswith("ok    ")
        assert line(lines, f"{vendor} connection").endswith(" ms")
    # a fresh folder: nothing loaded yet is a warning, not a failure
    assert line(lines, "warehouse").startswith("warn  ")
    assert "run `pslake ingest`" in line(lines, "warehouse")
    assert 'pslake app user add NAME --entity "*"' in line(lines, "dashboard users")
    assert code == 0
    assert lines[-1].startswith("doctor: ") and lines[-1].endswith(" warn, 0 failed")


@pytest.mark.parametrize(
    ("vendor", "changed", "what", "status", "names"),
    [
        # a wrong token: the vendor answers 401, and the line names the token's setting
        ("hubspot", {"access_token": CANARY}, "hubspot connection", "FAIL",
         "SOURCES__HUBSPOT__ACCESS_TOKEN"),
        ("harvest", {"access_token": CANARY}, "harvest connection", "FAIL",
         "SOURCES__HARVEST__ACCESS_TOKEN"),
        ("netsuite", {"access_token": CANARY}, "netsuite connection", "FAIL",
         "SOURCES__NETSUITE__ACCESS_TOKEN"),
        # a wrong Harvest account id: 403, and the line names the account's setting too
        ("harvest", {"account_id": "999"}, "harvest connection", "FAIL",
         "SOURCES__HARVEST__ACCOUNT_ID"),
        # only the token set: ingestion's resolution says what else to set
        ("harvest", {"base_url": "", "account_id": "", "access_token": CANARY},
         "harvest settings", "FAIL", "SOURCES__HARVEST__BASE_URL"),
        # a password inside the base URL is stripped from what is shown; the call still works
        ("hubspot", {"base_url": "http://pslake:" + CANARY + "@{host}/hubspot"},
         "hubspot settings", "ok", "http://{host}/hubspot"),
    ],
    ids=["hubspot-token", "harvest-token", "netsuite-token", "harvest-account",
         "harvest-token-only", "password-in-url"],
)
def test_wrong_settings_name_source_and_setting_without_leaking_secret(
    served_firm: SandboxThread, clean_env: pytest.MonkeyPatch, tmp_path: Path,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    vendor: str, changed: dict[str, str], what: str, status: str, names: str,
):
    caplog.set_level(logging.DEBUG)
    host = served_firm.root.removeprefix("http://")
    configure(clean_env, vendor, served_firm.endpoints[vendor],
              **{k: v.format(host=host) for k, v in changed.items()})
    code, lines = doctor(tmp_path)
    assert line(lines, what).startswith(f"{status:<4}  "), line(lines, what)
    assert names.format(host=host) in line(lines, what)
    assert code == (1 if status == "FAIL" else 0)
    captured = capfd.readouterr()
    for text in ("\n".join(lines), captured.out, captured.err, caplog.text):
        assert CANARY not in text


def test_unreachable_vendor_fails_as_unreachable_and_offline_skips_the_call(
    served_firm: SandboxThread, clean_env: pytest.MonkeyPatch, tmp_path: Path
):
    port = closed_port()
    configure(clean_env, "harvest", served_firm.endpoints["harvest"],
              base_url=f"http://127.0.0.1:{port}")
    code, lines = doctor(tmp_path, "--timeout", "2")
    harvest = line(lines, "harvest connection")
    assert harvest.startswith("FAIL  harvest connection: unreachable: ")
    assert f"http://127.0.0.1:{port}/v2/users/me" in harvest
    assert "check SOURCES__HARVEST__BASE_URL" in harvest
    assert line(lines, "hubspot connection").startswith("ok    ")
    assert code == 1

    code, lines = doctor(tmp_path, "--offline")
    assert not [text for text in lines if " connection: " in text]
    assert "(not called: --offline)" in line(lines, "harvest settings")
    assert code == 0


def test_healthy_data_folder_is_all_ok_with_datasets_and_load_times(
    small_warehouse, served_firm: SandboxThread, clean_env: pytest.MonkeyPatch, tmp_path: Path
):
    small_warehouse.copy_to(tmp_path)
    publish(tmp_path)
    save_user(tmp_path / "app" / "users.toml", "alice", "a long passphrase", ["*"])
    Journal(sync_dir(tmp_path)).close()

    code, lines = doctor(tmp_path)

    assert [text for text in lines[:-1] if not text.startswith("ok    ")] == []
    assert lines[-1] == f"doctor: {len(lines) - 1} ok, 0 warn, 0 failed"
    assert code == 0
    assert "opened read-only" in line(lines, "warehouse")
    for dataset in ("raw_hubspot", "raw_harvest", "raw_netsuite"):
        assert " rows; newest complete load 20" in line(lines, dataset)
    assert "tables in schema marts" in line(lines, "marts")
    assert "published " in line(lines, "snapshot")
    assert "1 user(s)" in line(lines, "dashboard users")
    assert line(lines, "dashboard users").endswith("; idle sign-out after 60 min")
    assert "0 run(s), 0 open write intent(s), 0 dead letter(s)" in line(lines, "sync journal")


def test_an_idle_limit_that_is_not_minutes_fails_the_users_check_naming_it(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
):
    save_user(tmp_path / "app" / "users.toml", "alice", "a long passphrase", ["*"])
    clean_env.setenv("PSLAKE_APP_IDLE_MINUTES", "an hour")
    check = check_users(tmp_path)
    assert (check.status, check.what) == ("fail", "dashboard users")
    assert "PSLAKE_APP_IDLE_MINUTES must be a number of minutes" in check.detail
    clean_env.setenv("PSLAKE_APP_IDLE_MINUTES", "0")
    assert check_users(tmp_path).detail.endswith("; no idle sign-out")


def test_warehouse_held_by_another_process_names_its_pid(
    small_warehouse, clean_env: pytest.MonkeyPatch, tmp_path: Path
):
    warehouse = small_warehouse.copy_to(tmp_path) / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(60)", str(warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        code, lines = doctor(tmp_path, "--offline")
    finally:
        holder.kill()
        holder.wait()
    held = line(lines, "warehouse")
    assert held.startswith("FAIL  ")
    assert f"in use by another process (pid {holder.pid}" in held
    assert "pslake ingest" in held
    assert code == 1


def test_data_folder_that_is_a_file_fails(clean_env: pytest.MonkeyPatch, tmp_path: Path):
    data = tmp_path / "data"
    data.write_text("not a folder")
    code, lines = doctor(data, "--offline")
    assert line(lines, "data folder").startswith("FAIL  data folder: ")
    assert "is a file, not a folder; choose another with --data-dir" in line(lines, "data folder")
    assert code == 1


def test_bad_policy_file_fails_with_the_loaders_message(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
):
    policy = tmp_path / "policy.toml"
    policy.write_text("batch_size = 500\n")
    clean_env.setenv("PSLAKE_SYNC_POLICY", str(policy))
    code, lines = doctor(tmp_path, "--offline")
    assert line(lines, "sync policy") == (
        f"FAIL  sync policy: {policy}: batch_size must be 1..100 (HubSpot's batch limit); "
        "fix the file, or unset $PSLAKE_SYNC_POLICY to use the shipped one")
    assert code == 1


def test_damaged_journal_fails_and_says_not_to_delete_it(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
):
    journal = sync_dir(tmp_path) / STATE_FILE
    journal.parent.mkdir(parents=True)
    journal.write_bytes(b"not a database at all" * 100)
    code, lines = doctor(tmp_path, "--offline")
    assert line(lines, "sync journal").startswith("FAIL  ")
    assert "do not delete it" in line(lines, "sync journal")
    assert code == 1
