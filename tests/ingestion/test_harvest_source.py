"""The Harvest source alone (no runner): a full load equals the store; a rerun loads nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dlt
import duckdb
import pytest

from ingestion.harvest import harvest_source
from ingestion.harvest.settings import RESOURCES
from sandbox.server.app import SandboxThread

pytestmark = pytest.mark.integration


def _pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name="pslake_test_harvest",
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="raw_harvest",
        pipelines_dir=str(tmp_path / "dlt"),
    )


def _source(server: SandboxThread) -> dlt.sources.DltSource:
    e = server.endpoints["harvest"]
    return harvest_source(base_url=e["base_url"], access_token=e["access_token"],
                          account_id=e["account_id"])


def test_full_load_reproduces_every_table_then_a_rerun_loads_nothing(
        served_firm: SandboxThread, small_firm: Path, tmp_path: Path):
    pipeline = _pipeline(tmp_path)
    info = pipeline.run(_source(served_firm), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    store = sqlite3.connect(small_firm / "harvest.sqlite")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as warehouse:
        for name in RESOURCES:
            expected = store.execute(f"select count(*), sum(id) from {name}").fetchone()
            loaded = warehouse.execute(
                f"select count(*), sum(id) from raw_harvest.{name}").fetchone()
            assert loaded == expected, name
    served_firm.state.stats.reset()
    again = pipeline.run(_source(served_firm), loader_file_format="parquet")
    again.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts
    assert all(counts.get(name, 0) == 0 for name in RESOURCES)
    calls = served_firm.state.stats.requests["harvest"]
    assert sum(calls.values()) == len(RESOURCES)  # one page each, nothing new
