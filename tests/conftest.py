"""Shared fixtures: a generated small firm, the sandbox serving it on a free port, and firms
ingested and built by dbt once per test run (small, medium)."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import pickle
import shutil
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pslake import transform
from pslake.transform import TransformResult
from sandbox.firm.generate import generate
from sandbox.server.app import SandboxThread

AS_OF = dt.date(2026, 11, 16)


@pytest.fixture(scope="session")
def small_firm_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small firm generated once per session; copy it before writing to it."""
    store = tmp_path_factory.mktemp("small-firm") / "sandbox"
    generate(store, size="small", seed=11, as_of=AS_OF)
    return store


@pytest.fixture
def small_firm(small_firm_template: Path, tmp_path: Path) -> Path:
    """A private copy of the small firm that a test may change."""
    store = tmp_path / "sandbox"
    shutil.copytree(small_firm_template, store)
    return store


@pytest.fixture
def served_firm(small_firm: Path) -> Iterator[SandboxThread]:
    """The sandbox serving a private copy of the small firm."""
    with SandboxThread(small_firm) as server:
        yield server


@dataclass(frozen=True)
class BuiltFirm:
    """A data folder holding a firm's store, its ingested warehouse and dbt's build."""

    data_dir: Path
    warehouse: Path
    firm: Path
    as_of: dt.date
    result: TransformResult

    @property
    def manifest(self) -> dict:
        return json.loads((self.result.target_path / "manifest.json").read_text())

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection (other workers may be reading the same file)."""
        return duckdb.connect(str(self.warehouse), read_only=True)

    def copy_to(self, data_dir: Path) -> Path:
        """A private copy of the warehouse in another data folder, for a test that writes."""
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.warehouse, data_dir / transform.WAREHOUSE_FILE)
        return data_dir


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ingest_from_sandbox(firm: Path, data_dir: Path, **kwargs: Any) -> None:
    """Serve a store on a free port and ingest it into ``data_dir`` (vendor settings cleared,
    so the sandbox's endpoints.json is used); fails on any vendor error."""
    from ingestion.pipeline import ingest
    from sandbox.server.app import SandboxThread

    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNTIME__LOG_LEVEL", "ERROR")
        for vendor in ("HUBSPOT", "HARVEST", "NETSUITE"):
            for name in ("BASE_URL", "ACCESS_TOKEN", "ACCOUNT_ID"):
                env.delenv(f"SOURCES__{vendor}__{name}", raising=False)
        with SandboxThread(firm):
            loaded = ingest(data_dir=data_dir, **kwargs)
    assert not loaded.errors, loaded.errors


def build_firm(data_dir: Path, size: str = "small", as_of: dt.date | None = AS_OF,
               ) -> BuiltFirm:
    """Generate a firm into ``data_dir/sandbox``, ingest it, and ``dbt build`` at its as-of."""
    from sandbox.firm.generate import generate

    firm = data_dir / "sandbox"
    generate(firm, size=size, as_of=as_of)
    firm_as_of = dt.date.fromisoformat(json.loads((firm / "firm.json").read_text())["as_of"])
    ingest_from_sandbox(firm, data_dir)
    result = transform.build(data_dir, as_of=firm_as_of)
    return BuiltFirm(data_dir=data_dir, warehouse=data_dir / transform.WAREHOUSE_FILE,
                          firm=firm, as_of=firm_as_of, result=result)


def _shared_build(tmp_path_factory: pytest.TempPathFactory, worker_id: str,
                  size: str) -> BuiltFirm:
    """One build of a firm per test run, shared by the xdist workers.

    The first worker to take the lock builds into a folder beside the workers' own temp
    folders; the others wait and read the same warehouse (read-only; a test that writes copies
    the warehouse or the store first).
    """
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # shared by the xdist workers of this run
    data_dir = root / f"dbt-{size}-warehouse"
    outcome = root / f"dbt-{size}-warehouse.pickle"
    with _exclusive(root / f"dbt-{size}-warehouse.lock"):
        if not outcome.exists():
            try:
                built: BuiltFirm | str = build_firm(data_dir, size=size)
            except Exception:
                built = traceback.format_exc()
            outcome.write_bytes(pickle.dumps(built))
        shared = pickle.loads(outcome.read_bytes())
    if isinstance(shared, str):
        pytest.fail(f"building the {size} warehouse failed:\n{shared}", pytrace=False)
    return shared


@pytest.fixture(scope="session")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> BuiltFirm:
    """The small firm (default seed, the suite's as-of date) ingested and built by dbt."""
    return _shared_build(tmp_path_factory, worker_id, "small")


@pytest.fixture(scope="session")
def medium_warehouse(tmp_path_factory: pytest.TempPathFactory, worker_id: str
                     ) -> BuiltFirm:
    """The medium firm, ingested and built by dbt (once per run; slow: ~3 minutes)."""
    return _shared_build(tmp_path_factory, worker_id, "medium")


def pytest_configure(config: pytest.Config) -> None:
    """One reliability-run id for the session (inherited by workers and subprocesses)."""
    from tests.reliability import run_id

    run_id()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    """The reliability battery's one-screen summary of what this run recorded."""
    from tests.reliability import lines, run_id, summary

    if hasattr(config, "workerinput"):  # an xdist worker: the controller prints it
        return
    for line in summary(lines(run=run_id())):
        terminalreporter.write_line(line)


@contextlib.contextmanager
def held_by_another_process(database: Path, read_only: bool = False) -> Iterator[int]:
    """Another process holding a DuckDB file open (its pid), for the one-line lock errors."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; "
         f"c = duckdb.connect(sys.argv[1], read_only={read_only}); "
         "print('open', flush=True); time.sleep(120)", str(database)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
