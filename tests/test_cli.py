"""The pslake command line as a user meets it: help, progress, readable errors (the demo:
tests/e2e/test_demo.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def pslake(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pslake", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_help_names_the_commands():
    result = pslake("--help")
    assert result.returncode == 0
    for word in ("sandbox", "demo"):
        assert word in result.stdout
    sandbox = pslake("sandbox", "--help")
    for word in ("generate", "serve", "info"):
        assert word in sandbox.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sandbox", "generate", "--size", "huge"], "unknown size 'huge'"),
        (["sandbox", "generate", "--rate", "nonsense=0.1"], "unknown discrepancy type"),
        (["sandbox", "generate", "--as-of", "yesterday"], "--as-of must be YYYY-MM-DD"),
        (["sandbox", "generate", "--as-of", "2999-01-01"], "in the future"),
        (["sandbox", "serve", "--faults", "error_rate=7"], "between 0 and 1"),
    ],
    ids=["bad-size", "bad-rate", "bad-date", "future-date", "bad-fault"],
)
def test_user_mistakes_end_in_one_line_without_traceback(
    tmp_path: Path, args: list[str], message: str
):
    store = tmp_path / "sandbox"
    store.mkdir()
    (store / "firm.json").write_text(json.dumps({"credentials": {}}))  # serve gets past loading
    result = pslake(*args, "--dir", str(store))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_serving_an_empty_folder_says_how_to_generate(tmp_path: Path):
    result = pslake("sandbox", "serve", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "pslake sandbox generate" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("cli") / "sandbox"
    result = pslake(
        "sandbox",
        "generate",
        "--size",
        "small",
        "--seed",
        "5",
        "--dir",
        str(store),
        "--as-of",
        "2026-11-16",
    )
    assert result.returncode == 0, result.stderr
    assert "time entries" in result.stdout  # progress lines
    assert "injected discrepancies" in result.stdout
    return store


def test_info_shows_what_the_store_holds(small_store: Path):
    result = pslake("sandbox", "info", "--dir", str(small_store))
    assert result.returncode == 0
    assert "small firm, seed 5" in result.stdout
    assert "time_entries" in result.stdout and "rate_mismatch" in result.stdout


def test_serve_writes_endpoints_and_prints_them_without_full_tokens(small_store: Path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pslake",
            "sandbox",
            "serve",
            "--dir",
            str(small_store),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoints_file = small_store / "endpoints.json"
        deadline = time.monotonic() + 30
        while not endpoints_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        endpoints = json.loads(endpoints_file.read_text())
        assert oct(endpoints_file.stat().st_mode & 0o777) == "0o600"
        assert set(endpoints) >= {"hubspot", "harvest", "netsuite"}
        assert endpoints["harvest"]["account_id"] and endpoints["netsuite"]["account_id"]
        assert endpoints["hubspot"]["base_url"].endswith("/hubspot")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
    assert endpoints["hubspot"]["base_url"] in out
    for vendor in ("hubspot", "harvest", "netsuite"):
        assert endpoints[vendor]["access_token"] not in out


def test_serve_on_a_port_in_use_says_so(small_store: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = pslake("sandbox", "serve", "--dir", str(small_store), "--port", str(port))
    assert result.returncode != 0
    assert "in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_data_dir_option_points_the_commands_at_another_folder(tmp_path: Path):
    result = pslake("--data-dir", str(tmp_path), "sandbox", "info")
    assert result.returncode == 2
    assert str(tmp_path / "sandbox") in result.stderr  # looked where it was told
