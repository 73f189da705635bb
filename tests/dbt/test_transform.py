"""`pslake transform` and `pslake.transform.build` on the small firm, and their one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys

import duckdb
import pytest
from typer.testing import CliRunner

from pslake import settings, transform
from pslake.cli import app
from pslake.errors import PslakeError
from pslake.transform_cli import AS_OF_ENV, resolve_as_of
from tests.conftest import BuiltFirm, held_by_another_process

SUMMARY = re.compile(r"^transform: (\d+) models, (\d+) tests passed, (\d+) failed"
                     r"(, \d+ warned)?(, \d+ skipped)? in [\d.]+ s \(as of \d{4}-\d{2}-\d{2}\)$")


@pytest.mark.integration
def test_build_on_the_small_firm_succeeds_with_its_artifacts_in_the_data_folder(
        small_warehouse: BuiltFirm):
    result = small_warehouse.result
    assert result.success, result.failures
    assert result.failed == 0 and result.failures == []
    dbt_folder = small_warehouse.data_dir / "dbt"
    assert result.target_path == (dbt_folder / "target").resolve()
    assert (dbt_folder / "target" / "manifest.json").is_file()
    assert (dbt_folder / "logs" / "dbt.log").is_file()
    run = json.loads((result.target_path / "run_results.json").read_text())
    assert run["args"]["vars"]["as_of"] == small_warehouse.as_of.isoformat()
    assert len(run["results"]) == result.models.total + result.tests.total + result.seeds.total


def _complete_rows(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    """Rows of a raw table that belong to complete loads (0 when dlt never created it)."""
    columns = {r[0] for r in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ?", [schema, table]).fetchall()}
    if not columns:
        return 0
    where = (f" where _dlt_load_id in (select load_id from {schema}._dlt_loads where status = 0)"
             if "_dlt_load_id" in columns else "")
    return con.execute(f'select count(*) from {schema}."{table}"{where}').fetchone()[0]


@pytest.mark.integration
def test_staging_models_are_views_with_as_many_rows_as_their_raw_tables(
        small_warehouse: BuiltFirm):
    manifest = small_warehouse.manifest
    staging = {node["name"]: node for node in manifest["nodes"].values()
               if node["resource_type"] == "model" and node["fqn"][1] == "staging"}
    if not staging:
        pytest.skip("no staging models yet")
    mismatches = []
    with small_warehouse.connect() as con:
        views = {r[0] for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'staging' and table_type = 'VIEW'").fetchall()}
        assert views == set(staging), "staging models that are not views in schema staging"
        for name, node in sorted(staging.items()):
            sources = [manifest["sources"][s] for s in node["depends_on"]["nodes"]
                       if s.startswith("source.")]
            assert len(sources) == 1, f"{name} reads {len(sources)} sources, not one"
            raw = _complete_rows(con, sources[0]["schema"], sources[0]["identifier"])
            staged = con.execute(f"select count(*) from staging.{name}").fetchone()[0]
            if staged != raw:
                mismatches.append(f"{name}: {staged} rows, raw {sources[0]['schema']}."
                                  f"{sources[0]['identifier']}: {raw}")
    assert not mismatches, "\n".join(mismatches)


def test_transform_without_a_warehouse_is_one_line_saying_to_ingest(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path))  # restored after the test
    out = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "empty"), "transform"])
    assert out.exit_code == 2
    assert out.stderr.strip().splitlines() == [
        f"error: transform: no warehouse at {(tmp_path / 'empty' / 'warehouse.duckdb')}; "
        f"run `pslake ingest` first (or point --data-dir / ${settings.DATA_DIR_ENV} at the data "
        "folder)"]
    assert "Traceback" not in out.output
    assert not (tmp_path / "empty" / "warehouse.duckdb").exists()


def test_a_warehouse_held_by_another_process_is_one_line(tmp_path):
    warehouse = tmp_path / transform.WAREHOUSE_FILE
    duckdb.connect(str(warehouse)).close()
    with held_by_another_process(warehouse):
        with pytest.raises(PslakeError, match=r"^transform: the warehouse \S+ is in use by "
                                              r"another process \(pid \d+\); wait for it"):
            transform.build(tmp_path)


def test_a_project_dbt_cannot_parse_is_one_line_naming_the_file(probe_project, tmp_path):
    (probe_project / "models" / "broken.yml").write_text("version: 2\nmodels:\n  - name: [\n")
    duckdb.connect(str(tmp_path / transform.WAREHOUSE_FILE)).close()
    with pytest.raises(PslakeError) as raised:
        transform.build(tmp_path, project=probe_project)
    message = str(raised.value)
    assert message.startswith("transform: dbt cannot parse the project: ")
    assert "broken.yml" in message and "\n" not in message


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        ("2026-11-16", "2026-01-01", dt.date(2026, 11, 16)),  # the flag wins over the setting
        (None, "2026-01-01", dt.date(2026, 1, 1)),            # else the setting
        (None, None, None),                                   # else today in UTC
    ],
    ids=["flag", "env", "today"],
)
def test_as_of_comes_from_the_flag_then_the_setting_then_today(monkeypatch, flag, env, expected):
    if env is None:
        monkeypatch.delenv(AS_OF_ENV, raising=False)
    else:
        monkeypatch.setenv(AS_OF_ENV, env)
    before = dt.datetime.now(dt.UTC).date()
    found = resolve_as_of(flag)
    after = dt.datetime.now(dt.UTC).date()
    assert found == expected if expected else found in {before, after}  # midnight may pass


@pytest.mark.parametrize(("flag", "env", "message"), [
    ("16/11/2026", None, "--as-of must be YYYY-MM-DD, got '16/11/2026'"),
    (None, "yesterday", f"{AS_OF_ENV} must be YYYY-MM-DD, got 'yesterday'"),
], ids=["flag", "env"])
def test_a_bad_as_of_names_where_it_came_from(monkeypatch, flag, env, message):
    monkeypatch.setenv(AS_OF_ENV, env or "")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        resolve_as_of(flag)


@pytest.mark.e2e
def test_transform_select_staging_prints_the_summary_line(small_warehouse, tmp_path):
    data_dir = small_warehouse.copy_to(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "pslake", "--data-dir", str(data_dir), "transform",
         "--select", "staging", "--as-of", small_warehouse.as_of.isoformat()],
        capture_output=True, text=True, timeout=300, env={**os.environ})
    assert result.returncode == 0, result.stdout + result.stderr
    *_, summary, published = result.stdout.strip().splitlines()
    assert published.startswith("publish: "), published  # the dashboard's snapshot, after it
    match = SUMMARY.match(summary)
    assert match, summary
    staging = [n for n in small_warehouse.manifest["nodes"].values()
               if n["resource_type"] == "model" and n["fqn"][1] == "staging"]
    assert int(match.group(1)) == len(staging)
    assert match.group(3) == "0"
    assert (data_dir / "dbt" / "target" / "run_results.json").is_file()


@pytest.mark.integration
def test_each_source_pipeline_is_checked_fresh_right_after_its_load(small_warehouse: BuiltFirm):
    verdicts = {(v.source, v.table): v for v in small_warehouse.result.freshness}
    declared = {(s["source_name"], s["name"]) for s in small_warehouse.manifest["sources"].values()
                if (s.get("freshness") or {}).get("error_after", {}).get("count")}
    assert set(verdicts) == declared
    for vendor in ("hubspot", "harvest", "netsuite"):
        ledger = verdicts[(vendor, "_dlt_loads")]
        assert ledger.status == "pass", ledger  # loaded minutes before the build
        assert ledger.age_seconds is not None and 0 <= ledger.age_seconds < 3600
    with small_warehouse.connect() as con:
        exported = con.execute("select count(*) from staging.stg_pslake__source_freshness "
                               "where freshness_status is not null").fetchone()[0]
    assert exported == len(verdicts)


@pytest.mark.integration
def test_a_pipeline_without_a_load_for_seven_hours_errors_in_integration_health(
        small_warehouse: BuiltFirm, tmp_path):
    data_dir = small_warehouse.copy_to(tmp_path / "data")
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE)) as con:
        con.execute("update raw_harvest._dlt_loads set inserted_at = inserted_at - interval 7 hour")
    result = transform.build(data_dir, as_of=small_warehouse.as_of,
                             select=["stg_pslake__source_freshness", "mart_integration_health"])
    assert result.success, result.failures
    ledgers = {v.source: v for v in result.freshness if v.table == "_dlt_loads"}
    assert ledgers["harvest"].status == "error"  # error_after: 6 hours
    assert ledgers["harvest"].age_seconds is not None and ledgers["harvest"].age_seconds > 7 * 3600
    assert ledgers["hubspot"].status == ledgers["netsuite"].status == "pass"
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        health = dict(con.execute(
            "select system_role, source_freshness_status from marts.mart_integration_health"
        ).fetchall())
        stale = con.execute(
            "select stale_source_table_count from marts.mart_integration_health "
            "where system_role = 'psa'").fetchone()[0]
    assert health["psa"] == "error"
    expected_stale = sum(1 for v in result.freshness if v.source == "harvest"
                         and v.status != "pass")
    assert stale == expected_stale >= 1
