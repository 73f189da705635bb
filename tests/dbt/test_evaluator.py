"""The project evaluator (STYLE rule 16): structure rules checked on dbt's parsed manifest.

After `dbt parse`, every rule below reads `target/manifest.json` and lists what breaks it. A
deliberate exception is one row of `dbt_project/evaluator_exceptions.csv` (rule, node, why) with
the reason filled in. The checker itself is tested on a throw-away project that breaks each rule.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pslake import transform
from tests.dbt.conftest import empty_project

EXCEPTIONS_FILE = transform.project_dir() / "evaluator_exceptions.csv"
MAX_JOINS = 6
# Allowed model names per folder under models/ (a pattern may use `*`): the closest folder with
# an entry applies, so an `intermediate/` folder nested under the layer it serves (STYLE rule 9)
# holds `int_` models.
PREFIXES = {
    "staging": r"stg_[a-z0-9]+__[a-z0-9_]+",
    "canonical": r"(dim|fct|map)_[a-z0-9_]+",
    "*/intermediate": r"int_[a-z0-9_]+",
    "marts/delivery": r"mart_[a-z0-9_]+",
    "marts/finance": r"mart_[a-z0-9_]+",
    "marts/reconciliation": r"rec_[a-z0-9_]+",
    "marts/sync": r"sync_[a-z0-9_]+",
}
# Schema-qualified names in model SQL: the raw datasets and our layers' schemas.
HARD_CODED = re.compile(r"""(?<![\w.])["`]?(raw_[a-z0-9_]+|staging|canonical|marts|reference)"""
                        r"""["`]?\.["`]?[a-z_]""", re.IGNORECASE)
COMMENTS = re.compile(r"\{#.*?#\}|/\*.*?\*/|--[^\n]*", re.DOTALL)
JOIN = re.compile(r"\bjoin\b", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Violation:
    """One node breaking one rule. ``node`` is how an exception names it."""

    rule: str
    node: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.node}: {self.detail}"


class Project:
    """The parts of a dbt manifest the rules read."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        self.models = {uid: n for uid, n in manifest["nodes"].items()
                       if n["resource_type"] == "model" and n["package_name"] == _package(
                           manifest)}
        self.tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]

    def folder(self, node: dict[str, Any]) -> str:
        """The model's folder under ``models/`` (``staging/harvest``)."""
        return str(Path(node["original_file_path"]).parent.relative_to("models"))

    def marts(self) -> Iterator[dict[str, Any]]:
        """Models under ``models/marts/``, less the intermediate steps they are built from."""
        for node in self.models.values():
            parts = Path(self.folder(node)).parts
            if parts[:1] == ("marts",) and "intermediate" not in parts:
                yield node


def _package(manifest: dict[str, Any]) -> str:
    return str(manifest["metadata"].get("project_name") or "pslake")


def _code(node: dict[str, Any]) -> str:
    """The model's SQL without comments (a comment may name a table)."""
    return COMMENTS.sub(" ", node.get("raw_code") or "")


def source_fanout(project: Project) -> Iterator[Violation]:
    """A source table read by more than one model: stage it once, then ref the staging model."""
    for uid, source in project.manifest["sources"].items():
        children = sorted(project.models[c]["name"] for c in project.manifest["child_map"][uid]
                          if c in project.models)
        if len(children) > 1:
            yield Violation("source_fanout", f"{source['source_name']}.{source['name']}",
                            f"read by {', '.join(children)}")


def source_outside_staging(project: Project) -> Iterator[Violation]:
    """``source()`` outside ``models/staging/``: read the staging model instead."""
    for node in project.models.values():
        if node["sources"] and not project.folder(node).startswith("staging"):
            names = ", ".join(".".join(s) for s in node["sources"])
            yield Violation("source_outside_staging", node["name"], f"reads source {names}")


def hard_coded_relation(project: Project) -> Iterator[Violation]:
    """A schema-qualified table name in model SQL: use ``ref()`` or ``source()``."""
    for node in project.models.values():
        found = sorted({m.group(0).rstrip("_abcdefghijklmnopqrstuvwxyz`\"")
                        for m in HARD_CODED.finditer(_code(node))})
        if found:
            yield Violation("hard_coded_relation", node["name"],
                            f"names {', '.join(found)} in its SQL")


def primary_key_test(project: Project) -> Iterator[Violation]:
    """A model whose grain is untested: ``unique`` + ``not_null`` on one column, or
    ``unique_combination_of_columns``."""
    unique: dict[str, set[str]] = defaultdict(set)
    not_null: dict[str, set[str]] = defaultdict(set)
    combined: set[str] = set()
    for test in project.tests:
        meta = test.get("test_metadata") or {}
        model = test.get("attached_node") or next(iter(test["depends_on"]["nodes"]), None)
        column = str(test.get("column_name") or meta.get("kwargs", {}).get("column_name") or "")
        column = column.strip('"`').lower()
        if meta.get("name") == "unique":
            unique[model].add(column)
        elif meta.get("name") == "not_null":
            not_null[model].add(column)
        elif meta.get("name") == "unique_combination_of_columns":
            combined.add(model)
    for uid, node in project.models.items():
        if uid not in combined and not unique[uid] & not_null[uid]:
            yield Violation("primary_key_test", node["name"],
                            "no unique + not_null column and no unique_combination_of_columns")


def mart_description(project: Project) -> Iterator[Violation]:
    """A mart or mart column without a description."""
    for node in project.marts():
        if not node["description"].strip():
            yield Violation("mart_description", node["name"], "the model has no description")
        for name, column in node["columns"].items():
            if not column.get("description", "").strip():
                yield Violation("mart_description", f"{node['name']}.{name}",
                                "the column has no description")


def mart_contract(project: Project) -> Iterator[Violation]:
    """A mart without an enforced contract (``marts/`` sets it at folder level)."""
    for node in project.marts():
        if not node["config"].get("contract", {}).get("enforced"):
            yield Violation("mart_contract", node["name"], "contract not enforced")


def folder_prefix(project: Project) -> Iterator[Violation]:
    """A model name that does not fit its folder (``PREFIXES``, closest folder wins)."""
    for node in project.models.values():
        folder = Path(project.folder(node))
        owner = next((key for f in (folder, *folder.parents) for key in PREFIXES
                      if str(f) != "." and fnmatch.fnmatchcase(str(f), key)), None)
        if owner is None:
            yield Violation("folder_prefix", node["name"],
                            f"models/{folder} has no naming rule; move it to a layer folder")
        elif not re.fullmatch(PREFIXES[owner], node["name"]):
            yield Violation("folder_prefix", node["name"],
                            f"models in models/{owner} are named {PREFIXES[owner]}")


def join_count(project: Project) -> Iterator[Violation]:
    """More than ``MAX_JOINS`` joins in one model: split it into intermediate steps."""
    for node in project.models.values():
        joins = len(JOIN.findall(_code(node)))
        if joins > MAX_JOINS:
            yield Violation("join_count", node["name"], f"{joins} joins (at most {MAX_JOINS})")


RULES: dict[str, Callable[[Project], Iterator[Violation]]] = {
    "source_fanout": source_fanout,
    "source_outside_staging": source_outside_staging,
    "hard_coded_relation": hard_coded_relation,
    "primary_key_test": primary_key_test,
    "mart_description": mart_description,
    "mart_contract": mart_contract,
    "folder_prefix": folder_prefix,
    "join_count": join_count,
}


def evaluate(manifest: dict[str, Any], rule: str) -> list[Violation]:
    """Everything in the manifest that breaks ``rule``, sorted."""
    return sorted(RULES[rule](Project(manifest)))


def read_exceptions(path: Path) -> tuple[set[tuple[str, str]], list[str]]:
    """The (rule, node) pairs excepted in ``path``, and what is wrong with the file itself."""
    excepted: set[tuple[str, str]] = set()
    problems: list[str] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != ["rule", "node", "why"]:
            return excepted, [f"{path.name}: the header must be rule,node,why"]
        for line, row in enumerate(reader, start=2):
            rule, node, why = ((row.get(k) or "").strip() for k in ("rule", "node", "why"))
            if rule not in RULES:
                problems.append(f"{path.name}:{line}: unknown rule {rule!r}")
            if not node:
                problems.append(f"{path.name}:{line}: no node")
            if not why:
                problems.append(f"{path.name}:{line}: {rule} {node}: `why` is empty; "
                                "say why this exception is right")
            excepted.add((rule, node))
    return excepted, problems


def _report(rule: str, violations: list[Violation]) -> str:
    lines = "\n".join(f"  {v}" for v in violations)
    why = " ".join((RULES[rule].__doc__ or "").split())
    return (f"{len(violations)} node(s) break {rule}: {why}\n"
            f"{lines}\nFix them, or add `{rule},<node>,<why>` to "
            f"dbt_project/evaluator_exceptions.csv")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = transform.parse(tmp_path_factory.mktemp("evaluator"))
    return json.loads(path.read_text())


@pytest.mark.parametrize("rule", list(RULES), ids=list(RULES))
def test_project_follows_rule(manifest, rule):
    excepted, _ = read_exceptions(EXCEPTIONS_FILE)
    violations = [v for v in evaluate(manifest, rule) if (v.rule, v.node) not in excepted]
    assert not violations, _report(rule, violations)


def test_every_exception_says_why_and_is_still_needed(manifest):
    excepted, problems = read_exceptions(EXCEPTIONS_FILE)
    found = {(v.rule, v.node) for rule in RULES for v in evaluate(manifest, rule)}
    problems += [f"{EXCEPTIONS_FILE.name}: {rule},{node} matches nothing any more; remove it"
                 for rule, node in sorted(excepted - found)]
    assert not problems, "\n".join(problems)


# --- the checker, tested on a project that breaks every rule on purpose ---

def _model(name: str, folder: str, sql: str, pk: str | None = "probe_id",
           **properties: Any) -> tuple[str, str, dict[str, Any]]:
    """A probe model: its SQL file and its YAML entry (with a PK test unless ``pk`` is None)."""
    entry: dict[str, Any] = {"name": name, **properties}
    if pk:
        tests = [{"unique": {}}, {"not_null": {}}]
        columns = entry.setdefault("columns", [])
        for column in columns:
            if column["name"] == pk:
                column["data_tests"] = tests
                break
        else:
            columns.append({"name": pk, "data_tests": tests})
    return folder, sql, entry


_SEVEN_JOINS = "select things.probe_id from {{ ref('stg_probe__things') }} as things\n" + "".join(
    f"left join {{{{ ref('stg_probe__things') }}}} as t{i} on things.probe_id = t{i}.probe_id\n"
    for i in range(7))
_SIX_JOINS = _SEVEN_JOINS.rsplit("left join", 1)[0]
_MART_COLUMNS = [{"name": "probe_id", "data_type": "integer", "description": "The probe."},
                 {"name": "amount", "data_type": "integer", "description": "An amount."}]

PROBES = [
    # clean: a staging model with its PK test, and a comment naming a raw table (ignored)
    _model("stg_probe__things", "staging/probe",
           "-- unlike raw_probe.things, only complete loads\n"
           "select * from {{ source('probe', 'things') }}"),
    # a second child of probe.things
    _model("stg_probe__things_again", "staging/probe",
           "select * from {{ source('probe', 'things') }}", pk=None),
    # source() outside staging; its grain is tested with our combination test
    _model("dim_probe_from_source", "canonical",
           "select * from {{ source('probe', 'others') }}", pk=None,
           data_tests=[{"unique_combination_of_columns": {
               "arguments": {"combination_of_columns": ["probe_id", "other_id"]}}}]),
    _model("fct_probe_hard_coded_raw", "canonical", "select * from raw_harvest.time_entries"),
    _model("fct_probe_hard_coded_layer", "canonical",
           'select * from "marts".mart_probe_documented'),
    _model("fct_probe_seven_joins", "canonical", _SEVEN_JOINS),
    _model("fct_probe_six_joins", "canonical", _SIX_JOINS),
    _model("int_probe_step", "canonical/intermediate", "select 1 as probe_id"),
    _model("dim_probe_not_int", "canonical/intermediate", "select 1 as probe_id"),
    _model("int_probe_mart_step", "marts/reconciliation/intermediate", "select 1 as probe_id"),
    _model("rec_probe_not_int", "marts/reconciliation/intermediate", "select 1 as probe_id"),
    _model("mart_probe_documented", "marts/delivery", "select 1 as probe_id, 2 as amount",
           description="One row per probe.", columns=[dict(c) for c in _MART_COLUMNS]),
    _model("mart_probe_undocumented", "marts/finance", "select 1 as probe_id, 2 as amount",
           config={"contract": {"enforced": False}},
           columns=[{"name": "probe_id", "description": "The probe."}, {"name": "amount"}]),
    _model("rec_probe_in_finance", "marts/finance", "select 1 as probe_id, 2 as amount",
           description="One row per probe.", columns=[dict(c) for c in _MART_COLUMNS]),
    _model("x_probe_unplaced", "probe_elsewhere", "select 1 as probe_id"),
]
# what each rule must report among the probes, and nothing else
EXPECTED = {
    "source_fanout": ["probe.things"],
    "source_outside_staging": ["dim_probe_from_source"],
    "hard_coded_relation": ["fct_probe_hard_coded_layer", "fct_probe_hard_coded_raw"],
    "primary_key_test": ["stg_probe__things_again"],
    "mart_description": ["mart_probe_undocumented", "mart_probe_undocumented.amount"],
    "mart_contract": ["mart_probe_undocumented"],
    "folder_prefix": ["dim_probe_not_int", "rec_probe_in_finance", "rec_probe_not_int",
                      "x_probe_unplaced"],
    "join_count": ["fct_probe_seven_joins"],
}
SOURCES = {"version": 2, "sources": [{"name": "probe", "schema": "raw_probe",
                                      "tables": [{"name": "things"}, {"name": "others"}]}]}


@pytest.fixture(scope="module")
def probe_manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = empty_project(tmp_path_factory.mktemp("evaluator-probe"))
    entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for folder, sql, entry in PROBES:
        (project / "models" / folder).mkdir(parents=True, exist_ok=True)
        (project / "models" / folder / f"{entry['name']}.sql").write_text(sql + "\n")
        entries[folder].append(entry)
    for folder, models in entries.items():  # JSON is YAML
        (project / "models" / folder / "_probe__models.yml").write_text(
            json.dumps({"version": 2, "models": models}, indent=2))
    (project / "models" / "staging" / "probe" / "_probe__sources.yml").write_text(
        json.dumps(SOURCES))
    data_dir = tmp_path_factory.mktemp("evaluator-probe-data")
    return json.loads(transform.parse(data_dir, project=project).read_text())


def test_every_rule_has_a_probe_that_breaks_it():
    assert set(EXPECTED) == set(RULES)


@pytest.mark.parametrize("rule", list(RULES), ids=list(RULES))
def test_evaluator_reports_exactly_the_probes_that_break_the_rule(probe_manifest, rule):
    assert [v.node for v in evaluate(probe_manifest, rule)] == EXPECTED[rule]


def test_an_exception_needs_a_reason(tmp_path):
    path = tmp_path / "exceptions.csv"
    path.write_text("rule,node,why\n"
                    "join_count,fct_probe_seven_joins,one wide lookup table per currency\n"
                    "mart_contract,mart_probe_undocumented,\n"
                    "no_such_rule,x,because\n")
    excepted, problems = read_exceptions(path)
    assert ("join_count", "fct_probe_seven_joins") in excepted
    assert problems == [
        "exceptions.csv:3: mart_contract mart_probe_undocumented: `why` is empty; "
        "say why this exception is right",
        "exceptions.csv:4: unknown rule 'no_such_rule'"]
