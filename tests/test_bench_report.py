"""The benchmark report: the machine, a table per benchmark group, the reliability battery."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from benchmarks.harness import Figure, machine, write_report, write_results

pytestmark = pytest.mark.unit

STARTED = dt.datetime(2026, 11, 16, 9, 30, 5, tzinfo=dt.UTC)

FIGURES = [
    Figure("ingest small: full load, all three vendors", 123456.78, "records/s", group="ingestion"),
    Figure("  ingestion / limit", 31.25, "%", ">= 25 %", True, group="ingestion"),
    Figure("ingest small: full load peak memory", 2_500_000.0, "MiB", "< 1024 MiB", False,
           group="ingestion"),
    Figure("page render small: margin (median, cold)", 0.42, "s", "< 1 s", True, group="pages"),
    Figure("sync apply 100,000 changes", math.nan, "s", group="sync",
           detail={"skipped": "the small firm has 400 invoice mirrors, 12,500 needed"}),
]

RELIABILITY = [
    {"test": "test_harvest_resets", "seed": 1, "injected": 12, "survived": True, "bad_inputs": 0,
     "quarantined": 3, "lost": 0, "duplicates": 0, "extra_calls": 14},
    {"test": "test_harvest_resets", "seed": 2, "injected": 9, "survived": True, "bad_inputs": 1,
     "quarantined": 2, "lost": 0, "duplicates": 0, "extra_calls": 10},
    {"test": "test_sync_killed_mid_write", "seed": 1, "injected": 1, "survived": False,
     "bad_inputs": 0, "quarantined": 0, "lost": 2, "duplicates": 1, "extra_calls": 3},
]


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    lines = [json.dumps(record) for record in RELIABILITY]
    (folder / "reliability.jsonl").write_text("\n".join([*lines, "{truncated by a kil"]) + "\n")
    return folder


def test_report_has_machine_a_row_per_figure_and_reliability_totals(results: Path):
    info = machine()
    path = write_report("small", FIGURES, STARTED, results_dir=results, machine_info=info)
    text = path.read_text()

    assert path == results / "20261116T093005Z-small.md"
    assert text.startswith("# pslake benchmarks: small, 2026-11-16 09:30 UTC\n")
    # the machine section
    assert "## Machine" in text
    assert f"- CPU: {info['cpu']}" in text
    assert f"- Cores: {info['cores']}" in text
    assert f"- Python: {info['python']}" in text
    assert f"- OS: {info['os']}" in text
    assert f"duckdb {info['packages']['duckdb']}" in text
    # one table per group, one row per figure, values formatted as the printed table
    assert text.index("## ingestion") < text.index("## pages") < text.index("## sync")
    for row in [
        "| ingest small: full load, all three vendors | 123,456.8 | records/s |  |  |",
        "| ↳ ingestion / limit | 31.2 | % | >= 25 % | yes |",
        "| ingest small: full load peak memory | 2,500,000 | MiB | < 1024 MiB | **NO** |",
        "| page render small: margin (median, cold) | 0.42 | s | < 1 s | yes |",
        "| sync apply 100,000 changes | n/a | s |  |  |",
    ]:
        assert row in text.splitlines()
    assert "- sync apply 100,000 changes: skipped (the small firm has 400" in text
    # the reliability battery: per test and totals; the torn last line is left out, and said so
    assert "## Reliability battery" in text
    assert "| test_harvest_resets | 2 | 21 | 2 | 0 | 0 |" in text
    assert "| test_sync_killed_mid_write | 1 | 1 | 0 | 2 | 1 |" in text
    assert "| **total** | 3 | 22 | 2 | 2 | 1 |" in text
    assert "Also: 1 bad inputs, 5 quarantined, 27 extra calls." in text
    assert "1 line(s) of the file could not be read" in text


def test_latest_report_is_a_copy_of_the_newest_run(results: Path):
    info = machine()
    first = write_report("small", FIGURES[:1], STARTED, results_dir=results, machine_info=info)
    later = STARTED + dt.timedelta(hours=1)
    second = write_report("small", FIGURES[3:4], later, results_dir=results, machine_info=info)
    assert first != second and first.exists()
    assert (results / "latest-small.md").read_text() == second.read_text()
    assert not (results / "latest-medium.md").exists()


def test_report_without_reliability_file_has_no_battery_section(tmp_path: Path):
    path = write_report("medium", FIGURES, STARTED, results_dir=tmp_path)
    assert "## Reliability battery" not in path.read_text()
    assert "## Machine" in path.read_text()


def test_json_record_keeps_group_machine_and_failures(tmp_path: Path):
    path = write_results("small", FIGURES, STARTED, tmp_path, failures={"serving": "boom"})
    record = json.loads(path.read_text())
    assert path.name == "20261116T093005Z-small.json"
    assert record["figures"][1]["group"] == "ingestion"
    assert record["failures"] == {"serving": "boom"}
    assert record["machine"]["packages"]["dlt"]
