"""The reconciliation scored against the sandbox's ground-truth manifest, and kept across runs
(the reliability battery's test 12, reconciliation_precision_recall).

The firm's generator injects known discrepancies and lists them (one row per exception type and
record); ``marts.rec_exceptions`` must report exactly those: recall and precision 100%.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pslake import transform
from sandbox.score import Score, score
from tests.conftest import BuiltFirm
from tests.reliability import record

pytestmark = pytest.mark.integration


def _record(size: str, result: Score) -> None:
    """The battery's figures (RELIABILITY.md test 12): per type found / expected / extra."""
    record("reconciliation_precision_recall", firm=size, injected=len(result.expected),
           survived=len(result.expected & result.found), extra_exceptions=len(result.extra),
           precision=result.precision, recall=result.recall,
           per_type={t: {"expected": n, "missing": m, "extra": e}
                     for t, (n, m, e) in sorted(result.per_type.items())})


def _found(warehouse: Path) -> set[tuple[str, str]]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return set(con.execute(
            "select exception_type, record_ref from marts.rec_exceptions").fetchall())


def test_small_firm_every_injected_discrepancy_is_found_and_nothing_else(
        small_warehouse: BuiltFirm) -> None:
    result = score(small_warehouse.firm, _found(small_warehouse.warehouse))
    _record("small", result)
    assert result.expected, "the small firm has no injected discrepancies to find"
    assert (result.recall, result.precision) == (1.0, 1.0), "\n".join(result.lines())
    # every type of DESIGN.md's list is injected, so each rule was exercised
    assert len(result.per_type) == 12


@pytest.mark.slow
def test_medium_firm_every_injected_discrepancy_is_found_and_nothing_else(
        medium_warehouse: BuiltFirm) -> None:
    assert medium_warehouse.result.success, medium_warehouse.result.failures
    result = score(medium_warehouse.firm, _found(medium_warehouse.warehouse))
    _record("medium", result)
    assert (result.recall, result.precision) == (1.0, 1.0), "\n".join(result.lines())


def test_an_exception_keeps_its_first_seen_time_across_runs(
        small_warehouse: BuiltFirm, tmp_path: Path) -> None:
    import duckdb

    data_dir = small_warehouse.copy_to(tmp_path / "data")
    query = "select exception_id, first_seen_at, last_seen_at from marts.rec_exceptions"
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        before = {row[0]: row[1:] for row in con.execute(query).fetchall()}
    rebuilt = transform.build(data_dir, as_of=small_warehouse.as_of,
                              select=["rec_exception_log", "rec_exceptions"])
    assert rebuilt.success, rebuilt.failures
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        after = {row[0]: row[1:] for row in con.execute(query).fetchall()}
    assert after.keys() == before.keys()
    for exception_id, (first_seen, last_seen) in after.items():
        assert first_seen == before[exception_id][0]
        assert last_seen > before[exception_id][1]
