"""The published snapshot: what it holds, and the app answering while `pslake transform` holds
the warehouse (DuckDB lets no other process open a file one process writes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pslake import snapshot
from tests.app.conftest import make_dashboard, signed_in
from tests.conftest import BuiltFirm

pytestmark = pytest.mark.integration


def test_a_snapshot_holds_the_marts_and_dimensions_and_not_the_intermediates(
        small_warehouse: BuiltFirm, tmp_path: Path) -> None:
    first = snapshot.publish(tmp_path, warehouse=small_warehouse.warehouse)
    with duckdb.connect(str(first.path), read_only=True) as con:
        tables = {f"{s}.{t}" for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables()").fetchall()}
        revenue = con.execute("select sum(recognised_revenue_reporting) "
                              "from marts.mart_exec_kpis_monthly").fetchone()
    with small_warehouse.connect() as con:
        assert con.execute("select sum(recognised_revenue_reporting) "
                           "from marts.mart_exec_kpis_monthly").fetchone() == revenue
    assert {"marts.rec_exceptions", "marts.mart_exec_kpis_monthly",
            "canonical.dim_clients"} <= tables
    assert not [t for t in tables if ".int_" in t or t.startswith("raw")]
    assert snapshot.current(tmp_path) == first
    later = [snapshot.publish(tmp_path, warehouse=small_warehouse.warehouse) for _ in range(4)]
    assert snapshot.current(tmp_path) == later[-1]
    assert len(list((tmp_path / "snapshots").glob("marts-*.duckdb"))) == snapshot.KEEP


def test_the_app_keeps_answering_while_transform_writes_the_warehouse(
        small_warehouse: BuiltFirm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = small_warehouse.copy_to(tmp_path / "data")
    make_dashboard(small_warehouse, data_dir)
    before = snapshot.current(data_dir)
    monkeypatch.setenv("PSLAKE_DATA_DIR", str(data_dir))
    expected = signed_in("ceo").metric[0].proto.help
    env = dict(os.environ, PSLAKE_DATA_DIR=str(data_dir), RUNTIME__LOG_LEVEL="ERROR")
    log = tmp_path / "transform.log"
    with log.open("wb") as out:  # a file, not a pipe: dbt's output would fill a pipe and block
        transform = subprocess.Popen(
            [sys.executable, "-m", "pslake", "transform", "--as-of",
             str(small_warehouse.as_of)], env=env, stdout=out, stderr=subprocess.STDOUT)
    answered_while_locked = 0
    try:
        while transform.poll() is None:
            try:
                duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True).close()
                locked = False
            except duckdb.IOException:
                locked = True
            started = time.monotonic()
            at = signed_in("ceo")
            assert not at.exception, [e.message for e in at.exception]
            if transform.poll() is None and snapshot.current(data_dir) == before:
                assert at.metric[0].proto.help == expected
                assert time.monotonic() - started < 30
                answered_while_locked += locked
    finally:
        transform.wait(timeout=600)
    output = log.read_text()
    assert transform.returncode == 0, output[-3000:]
    assert answered_while_locked >= 3, "the transform never held the warehouse while we read"
    after = snapshot.current(data_dir)
    assert after is not None and before is not None and after.path != before.path
    at = signed_in("ceo")
    assert not at.exception
    assert "publish:" in output
