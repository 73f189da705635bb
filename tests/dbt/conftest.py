"""dbt fixtures: the small firm generated, served, ingested and built once per test run.

Under pytest-xdist the workers share one build: the first worker to take the lock builds into a
folder beside the workers' own temp folders, the others wait and read the same warehouse
(read-only; a test that writes copies the warehouse first).
"""

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
from tests.conftest import AS_OF

PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "macros", "tests/generic")


@dataclass(frozen=True)
class SmallWarehouse:
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
               ) -> SmallWarehouse:
    """Generate a firm into ``data_dir/sandbox``, ingest it, and ``dbt build`` at its as-of."""
    from sandbox.firm.generate import generate

    firm = data_dir / "sandbox"
    generate(firm, size=size, as_of=as_of)
    firm_as_of = dt.date.fromisoformat(json.loads((firm / "firm.json").read_text())["as_of"])
    ingest_from_sandbox(firm, data_dir)
    result = transform.build(data_dir, as_of=firm_as_of)
    return SmallWarehouse(data_dir=data_dir, warehouse=data_dir / transform.WAREHOUSE_FILE,
                          firm=firm, as_of=firm_as_of, result=result)


@pytest.fixture(scope="session")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SmallWarehouse:
    """The small firm (default seed, the suite's as-of date) ingested and built by dbt."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # shared by the xdist workers of this run
    data_dir = root / "dbt-small-warehouse"
    outcome = root / "dbt-small-warehouse.pickle"
    with _exclusive(root / "dbt-small-warehouse.lock"):
        if not outcome.exists():
            try:
                built: SmallWarehouse | str = build_firm(data_dir)
            except Exception:
                built = traceback.format_exc()
            outcome.write_bytes(pickle.dumps(built))
        shared = pickle.loads(outcome.read_bytes())
    if isinstance(shared, str):
        pytest.fail(f"building the small warehouse failed:\n{shared}", pytrace=False)
    return shared


def empty_project(folder: Path) -> Path:
    """A throw-away dbt project in ``folder/dbt_project``: our profile, macros, generic tests, and
    no models (a test adds the ones it needs)."""
    project = folder / "dbt_project"
    (project / "models").mkdir(parents=True)
    for name in PROJECT_FILES:
        source = transform.project_dir() / name
        if source.is_dir():
            shutil.copytree(source, project / name)
        else:
            shutil.copy2(source, project / name)
    return project


@pytest.fixture
def probe_project(tmp_path: Path) -> Path:
    """An empty throw-away dbt project for one test."""
    return empty_project(tmp_path)
