"""Our generic tests (dbt_project/tests/generic/) fail on exactly the rows they should.

A throw-away project holds one model with known bad rows and one test per case; `dbt build`
runs them against an empty DuckDB file and each test's failing-row count is compared.
"""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from pslake import transform
from pslake.errors import PslakeError
from tests.dbt.conftest import empty_project

pytestmark = pytest.mark.integration

# id, day_from, day_to, hours, code: rows 3 and 4 share (id, code); row 5 has a null code
PROBE_SQL = """select * from (
    values
    (1, 1, 2, 0.0, 'a'),
    (2, 5, 4, 8.0, 'a'),
    (3, 1, 1, -1.0, 'b'),
    (3, 2, 3, 25.0, 'b'),
    (4, 3, null, null, null)
) as probe_rows (probe_id, day_from, day_to, hours, code)
"""

# test name -> (the test as written in YAML: where it hangs, its name, its arguments), failures
CASES: dict[str, tuple[str | None, str, dict, int]] = {
    # model-level predicate: row 2 ends before it starts; row 5's null result passes
    "days_in_order": (None, "expression_is_true", {"expression": "day_to >= day_from"}, 1),
    # column-level: the expression is appended to the column; row 3 is negative
    "hours_not_negative": ("hours", "expression_is_true", {"expression": ">= 0"}, 1),
    # duplicate (3, 'b') and the null code of row 5
    "grain_probe_id_code": (None, "unique_combination_of_columns",
                            {"combination_of_columns": ["probe_id", "code"]}, 2),
    # the same key with nulls allowed: only the duplicate
    "grain_nulls_allowed": (None, "unique_combination_of_columns",
                            {"combination_of_columns": ["probe_id", "code"],
                             "allow_nulls": True}, 1),
    # a grain that holds
    "grain_probe_id_day_from": (None, "unique_combination_of_columns",
                                {"combination_of_columns": ["probe_id", "day_from"]}, 0),
    # inclusive bounds: -1 and 25 are out, 0 is in, null passes
    "hours_in_a_day": ("hours", "accepted_range", {"min_value": 0, "max_value": 24}, 2),
    # strict bounds: 0 is out too
    "hours_strictly_positive": ("hours", "accepted_range",
                                {"min_value": 0, "inclusive": False}, 2),
    # only an upper bound
    "hours_at_most_8": ("hours", "accepted_range", {"max_value": 8}, 1),
}


@pytest.fixture(scope="module")
def generic_results(tmp_path_factory):
    probe_project = empty_project(tmp_path_factory.mktemp("generic-project"))
    data_dir = tmp_path_factory.mktemp("generic")
    duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE)).close()
    (probe_project / "models" / "probe.sql").write_text(PROBE_SQL)
    columns: dict[str, list] = {}
    model_tests: list = []
    for name, (column, test, arguments, _) in CASES.items():
        entry = {test: {"name": name, "arguments": arguments}}
        (columns.setdefault(column, []) if column else model_tests).append(entry)
    model = {"name": "probe", "data_tests": model_tests,
             "columns": [{"name": c, "data_tests": t} for c, t in columns.items()]}
    (probe_project / "models" / "probe.yml").write_text(
        json.dumps({"version": 2, "models": [model]}, indent=2))  # JSON is YAML
    return data_dir, transform.build(data_dir, project=probe_project)


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_generic_test_fails_on_exactly_the_bad_rows(generic_results, name):
    expected = CASES[name][3]
    failures = {f.name: f.message for f in generic_results[1].failures}
    if expected == 0:
        assert name not in failures
    else:
        assert re.match(rf"Got {expected} results?, configured to fail if != 0", failures[name])


def test_every_case_ran_and_the_warehouse_is_released_after_the_build(generic_results):
    data_dir, result = generic_results
    assert result.models.passed == 1
    assert result.tests.total == len(CASES)
    assert result.tests.errored == 0
    # dbt-duckdb keeps its connection open after a run unless pslake closes it
    with duckdb.connect(str(data_dir / transform.WAREHOUSE_FILE), read_only=True) as con:
        assert con.execute("select count(*) from main.probe").fetchone() == (5,)


@pytest.mark.parametrize(("test", "arguments", "message"), [
    ("accepted_range", {}, "give min_value, max_value or both"),
    ("unique_combination_of_columns", {"combination_of_columns": "probe_id"},
     "combination_of_columns must be a non-empty list"),
], ids=["range-without-bounds", "combination-not-a-list"])
def test_a_misconfigured_generic_test_stops_the_parse_saying_what_to_give(
        probe_project, tmp_path, test, arguments, message):
    duckdb.connect(str(tmp_path / transform.WAREHOUSE_FILE)).close()
    (probe_project / "models" / "probe.sql").write_text(PROBE_SQL)
    column = [{"name": "hours", "data_tests": [{test: {"arguments": arguments}}]}] \
        if test == "accepted_range" else []
    tests = [] if column else [{test: {"arguments": arguments}}]
    (probe_project / "models" / "probe.yml").write_text(json.dumps(
        {"version": 2, "models": [{"name": "probe", "data_tests": tests, "columns": column}]}))
    with pytest.raises(PslakeError, match=f"^transform: dbt cannot parse the project: .*{message}"):
        transform.build(tmp_path, project=probe_project)
