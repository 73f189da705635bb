"""Run the dbt project (staging -> canonical -> marts) against ``DATA_DIR/warehouse.duckdb``.

dbt runs in this process through its programmatic entry point (``dbtRunner``), so its own output
stays on the terminal. The project and its ``profiles.yml`` are the repository's ``dbt_project/``;
the warehouse reaches the profile as ``PSLAKE_WAREHOUSE``, and dbt's ``target/`` and ``logs/`` go
under ``DATA_DIR/dbt/``, so two data folders never share dbt's artifacts.

A build first runs ``dbt source freshness`` and copies its verdicts into the warehouse
(``raw_pslake.source_freshness``), so integration health shows them beside the marts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from pslake import settings
from pslake.errors import PslakeError

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
WAREHOUSE_FILE = "warehouse.duckdb"
WAREHOUSE_ENV = "PSLAKE_WAREHOUSE"
DBT_SUBDIR = "dbt"

Command = Literal["build", "run", "test", "seed", "compile"]
COMMANDS: tuple[Command, ...] = ("build", "run", "test", "seed", "compile")

# dbt's node statuses, by what they mean for the summary
_OUTCOME = {
    "success": "passed", "pass": "passed", "no-op": "passed",
    "fail": "failed", "partial success": "failed",
    "warn": "warned",
    "error": "errored", "runtime error": "errored",
    "skipped": "skipped",
}


@dataclass(slots=True)
class Counts:
    """How many nodes of one kind ended in each state."""

    passed: int = 0
    failed: int = 0
    warned: int = 0
    errored: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        """All nodes of this kind that dbt selected."""
        return self.passed + self.failed + self.warned + self.errored + self.skipped

    @property
    def bad(self) -> int:
        """Nodes that failed or errored."""
        return self.failed + self.errored


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """A node that failed or errored, with dbt's message on one line."""

    name: str
    resource_type: str
    status: str
    message: str


@dataclass(frozen=True, slots=True)
class SourceFreshness:
    """dbt's freshness verdict on one source table: pass, warn, error or runtime error.

    ``max_loaded_at`` is the newest value of the table's ``loaded_at_field`` (for a dataset's
    ``_dlt_loads``: the newest complete load), ``age_seconds`` its age when dbt looked.
    """

    source: str
    table: str
    status: str
    max_loaded_at: dt.datetime | None
    age_seconds: float | None
    checked_at: dt.datetime


@dataclass(slots=True)
class TransformResult:
    """What one dbt invocation did.

    Models count models and snapshots, tests count data tests and unit tests (a test that warns is
    ``warned``, not ``passed``).
    """

    success: bool
    seconds: float
    target_path: Path
    log_path: Path
    models: Counts = field(default_factory=Counts)
    tests: Counts = field(default_factory=Counts)
    seeds: Counts = field(default_factory=Counts)
    failures: list[NodeFailure] = field(default_factory=list)
    freshness: list[SourceFreshness] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Nodes of any kind that failed or errored."""
        return self.models.bad + self.tests.bad + self.seeds.bad


def project_dir() -> Path:
    """The repository's dbt project (``dbt_project/`` beside the ``pslake`` package)."""
    return PROJECT_DIR


def warehouse_path(data_dir: Path | None = None) -> Path:
    """``DATA_DIR/warehouse.duckdb``, absolute (dbt does not run from the caller's folder)."""
    return (settings.data_dir(data_dir) / WAREHOUSE_FILE).resolve()


def dbt_dir(data_dir: Path | None = None) -> Path:
    """``DATA_DIR/dbt``: dbt's ``target/`` and ``logs/`` for this data folder."""
    return (settings.data_dir(data_dir) / DBT_SUBDIR).resolve()


def build(
    data_dir: Path | None = None,
    select: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    full_refresh: bool = False,
    as_of: dt.date | None = None,
    vars: Mapping[str, Any] | None = None,
    threads: int | None = None,
    command: Command = "build",
    project: Path | None = None,
    freshness: bool = True,
) -> TransformResult:
    """Run ``dbt build`` (or another node command) on the warehouse of a data folder.

    Args:
        data_dir: The data folder (``--data-dir`` / ``$PSLAKE_DATA_DIR`` / ``data``).
        select: dbt node selectors (``staging``, ``+mart_unbilled_time``); default all.
        exclude: dbt node selectors to leave out.
        full_refresh: Rebuild incremental models from scratch.
        as_of: The date the run judges at (the project var ``as_of``); default the var's own
            default, today in UTC.
        vars: Other project vars (``dbt_project.yml``); ``as_of`` wins over an ``as_of`` here.
        threads: dbt threads (default the profile's, ``$PSLAKE_DBT_THREADS`` or 2).
        command: ``build``, ``run``, ``test``, ``seed`` or ``compile``.
        project: Another dbt project folder (tests); default the repository's ``dbt_project``.
        freshness: Before a ``build`` or ``run``, check the sources' freshness and copy the
            verdicts into the warehouse. A stale source is reported, it does not fail the build.

    Returns:
        Counts per node kind and state, the failing nodes with dbt's messages, the freshness
        verdicts, and seconds. ``success`` is false when any node failed or errored.

    Raises:
        PslakeError: No warehouse yet, the warehouse held by another process, or dbt cannot
            parse the project.
        ValueError: ``command`` is not one of ``COMMANDS``.
    """
    if command not in COMMANDS:
        raise ValueError(f"transform: unknown dbt command {command!r}; use one of "
                         f"{', '.join(COMMANDS)}")
    warehouse = warehouse_path(data_dir)
    _check_warehouse(warehouse)
    started = time.monotonic()
    verdicts: list[SourceFreshness] = []
    if command in ("build", "run"):
        _export_sync_journal(warehouse, data_dir)
        if freshness:
            verdicts = check_freshness(data_dir, project)
            _export_freshness(warehouse, verdicts)
    all_vars = {**(vars or {}), **({"as_of": as_of.isoformat()} if as_of else {})}
    args: list[str] = []
    for option, values in (("--select", select), ("--exclude", exclude)):
        if values:
            args += [option, *values]
    if full_refresh and command in ("build", "run", "seed"):
        args.append("--full-refresh")
    if all_vars:
        args += ["--vars", json.dumps(all_vars)]
    if threads is not None:
        args += ["--threads", str(threads)]
    outcome = _invoke_patiently(command, args, data_dir, project)
    seconds = time.monotonic() - started
    target = dbt_dir(data_dir) / "target"
    logs = dbt_dir(data_dir) / "logs"
    if outcome.exception is not None:
        raise PslakeError(_explain(outcome.exception, warehouse, logs)) from None
    result = TransformResult(success=bool(outcome.success), seconds=seconds,
                             target_path=target, log_path=logs, freshness=verdicts)
    for node_result in getattr(outcome.result, "results", None) or []:
        _count(result, node_result)
    lock = next((f.message for f in result.failures if is_lock_error(f.message)), None)
    if lock is not None:  # taken between our check and dbt's connect
        raise PslakeError(_lock_message(warehouse, lock))
    return result


def check_freshness(data_dir: Path | None = None,
                    project: Path | None = None) -> list[SourceFreshness]:
    """Run ``dbt source freshness`` on the warehouse and return its verdict per source table.

    Only tables whose source YAML sets ``freshness`` are checked. dbt's own report is shown as
    it runs and kept in ``DATA_DIR/dbt/target/sources.json``.

    Raises:
        PslakeError: No warehouse yet, the warehouse held by another process, or dbt cannot
            parse the project.
    """
    warehouse = warehouse_path(data_dir)
    _check_warehouse(warehouse)
    outcome = _invoke_patiently(["source", "freshness"], [], data_dir, project)
    if outcome.exception is not None:
        raise PslakeError(_explain(outcome.exception, warehouse, dbt_dir(data_dir) / "logs"))
    checked_at = dt.datetime.now(dt.UTC)
    verdicts = []
    for node_result in getattr(outcome.result, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status))
        newest = getattr(node_result, "max_loaded_at", None)
        age = getattr(node_result, "age", None)
        verdicts.append(SourceFreshness(
            source=str(node_result.node.source_name), table=str(node_result.node.name),
            status=status, max_loaded_at=_utc(newest) if newest else None,
            age_seconds=float(age) if age is not None else None, checked_at=checked_at))
    return sorted(verdicts, key=lambda v: (v.source, v.table))


FRESHNESS_SCHEMA = "raw_pslake"
FRESHNESS_TABLE = "source_freshness"


def _export_freshness(warehouse: Path, verdicts: Sequence[SourceFreshness]) -> None:
    """Replace ``raw_pslake.source_freshness`` with this check's verdicts (read by dbt)."""
    with _connect(warehouse) as con:
        con.execute(f"create schema if not exists {FRESHNESS_SCHEMA}")
        con.execute(f"create or replace table {FRESHNESS_SCHEMA}.{FRESHNESS_TABLE} ("
                    "source_name varchar, table_name varchar, status varchar, "
                    "max_loaded_at timestamptz, age_seconds double, checked_at timestamptz)")
        if verdicts:
            con.executemany(
                f"insert into {FRESHNESS_SCHEMA}.{FRESHNESS_TABLE} values (?, ?, ?, ?, ?, ?)",
                [[v.source, v.table, v.status, v.max_loaded_at, v.age_seconds, v.checked_at]
                 for v in verdicts])


def _utc(moment: dt.datetime) -> dt.datetime:
    """A timestamp dbt returns, in UTC (a naive one is UTC already: the profile sets it)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def parse(data_dir: Path | None = None, project: Path | None = None) -> Path:
    """Parse the dbt project and return the path of the ``manifest.json`` it wrote.

    Parsing needs no warehouse: the evaluator test reads the manifest of a fresh data folder.

    Args:
        data_dir: The data folder whose ``dbt/target/`` receives the manifest.
        project: Another dbt project folder (tests); default the repository's ``dbt_project``.

    Raises:
        PslakeError: dbt cannot parse the project.
    """
    outcome = invoke_dbt("parse", [], data_dir, project)
    logs = dbt_dir(data_dir) / "logs"
    if outcome.exception is not None or not outcome.success:
        cause = outcome.exception or RuntimeError("dbt parse failed")
        raise PslakeError(_explain(cause, warehouse_path(data_dir), logs)) from None
    return dbt_dir(data_dir) / "target" / "manifest.json"


def invoke_dbt(command: str | list[str], args: list[str], data_dir: Path | None,
               project: Path | None) -> Any:
    """Run one dbt command in this process with the data folder's warehouse and folders.

    ``command`` is a command (``build``) or a command with its subcommand (``source freshness``).
    """
    from dbt.cli.main import dbtRunner  # dbt takes ~2 s to import: only when needed

    folder = (project or PROJECT_DIR).resolve()
    root = dbt_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    words = [command] if isinstance(command, str) else command
    argv = [*words, "--project-dir", str(folder), "--profiles-dir", str(folder),
            "--target-path", str(root / "target"), "--log-path", str(root / "logs"),
            "--no-send-anonymous-usage-stats", *args]
    log.debug("dbt %s", " ".join(argv))
    try:
        with _env(WAREHOUSE_ENV, str(warehouse_path(data_dir))):
            return dbtRunner().invoke(argv)
    finally:
        _release_warehouse()


def _release_warehouse() -> None:
    """Close the DuckDB connection dbt-duckdb keeps after a run.

    dbt-duckdb holds its database in a class attribute across invocations, so without this the
    file would stay open (and locked) until this process exits, and opening it again here with
    other settings would fail.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV  # no public API closes it
    if environment is not None:
        environment.close()
        DuckDBConnectionManager.close_all_connections()


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Set one environment variable for the duration of a dbt call (the profile reads it)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _check_warehouse(warehouse: Path) -> None:
    """Fail in one line when there is nothing to transform or another process holds the file."""
    if not warehouse.is_file():
        raise PslakeError(f"transform: no warehouse at {warehouse}; run `pslake ingest` first "
                          f"(or point --data-dir / ${settings.DATA_DIR_ENV} at the data folder)")
    _connect(warehouse).close()


# A reader may hold the warehouse for a moment (a SQL client's query, a check that opens it
# read-only): pslake's own writes wait this long for it before giving up in one line.
LOCK_PATIENCE_S = 5.0
_LOCK_RETRY_S = 0.2


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse to write, waiting out a brief hold by another process.

    Raises:
        PslakeError: Another process still holds it after ``LOCK_PATIENCE_S``.
    """
    deadline = time.monotonic() + LOCK_PATIENCE_S
    while True:
        try:
            return duckdb.connect(str(warehouse))
        except duckdb.IOException as exc:
            if not is_lock_error(str(exc)):
                raise
            if time.monotonic() >= deadline:
                raise PslakeError(_lock_message(warehouse, str(exc))) from None
            time.sleep(_LOCK_RETRY_S)


def _invoke_patiently(command: str | list[str], args: list[str], data_dir: Path | None,
                      project: Path | None) -> Any:
    """``invoke_dbt``, repeated while another process holds the warehouse and nothing ran yet.

    Gives up after ``LOCK_PATIENCE_S`` and returns the last outcome as it is.
    """
    deadline = time.monotonic() + LOCK_PATIENCE_S
    while True:
        outcome = invoke_dbt(command, args, data_dir, project)
        results = getattr(outcome.result, "results", None) or []
        messages = [str(outcome.exception or "")] + [str(r.message or "") for r in results]
        nothing_ran = not any(str(getattr(r.status, "value", r.status)) in ("success", "pass")
                              for r in results)
        if not (nothing_ran and any(map(is_lock_error, messages))):
            return outcome
        if time.monotonic() >= deadline:
            return outcome
        time.sleep(_LOCK_RETRY_S)


def _export_sync_journal(warehouse: Path, data_dir: Path | None) -> None:
    """Copy the reverse sync's journal into the warehouse (``raw_reverse_sync``) for dbt."""
    from reverse_sync.export import export_journal

    with _connect(warehouse) as con:
        counts = export_journal(con, data_dir)
    log.debug("reverse sync journal exported: %s", counts)


def is_lock_error(text: str) -> bool:
    """Whether DuckDB's message says another process holds the database file."""
    return "could not set lock" in text.lower() or "conflicting lock" in text.lower()


def _lock_message(warehouse: Path, text: str) -> str:
    holder = re.search(r"PID (\d+)", text)
    return (f"transform: the warehouse {warehouse} is in use by another process"
            + (f" (pid {holder.group(1)})" if holder else "")
            + "; wait for it to finish (a running `pslake ingest`, `transform` or a SQL client)")


_EXCERPT = re.compile(r"^(\d+\s*\|.*|-{5,}|Raw Error:)$")  # the code excerpts of dbt's errors


def _one_line(text: str) -> str:
    """A multi-line dbt message as one line: lines joined by ``; ``, code excerpts left out."""
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    return "; ".join(line for line in lines if line and not _EXCERPT.match(line))


def _explain(exc: BaseException, warehouse: Path, logs: Path) -> str:
    """One actionable line for an error that stopped dbt before or between nodes."""
    text = _one_line(str(exc)) or type(exc).__name__
    if is_lock_error(text):
        return _lock_message(warehouse, text)
    kinds = {k.__name__ for k in type(exc).__mro__}
    if kinds & {"ParsingError", "CompilationError", "DbtConfigError", "DbtValidationError"}:
        return f"transform: dbt cannot parse the project: {text} (fix the file it names)"
    return (f"transform: dbt stopped ({type(exc).__name__}): {text}; "
            f"details in {logs / 'dbt.log'}")


def _count(result: TransformResult, node_result: Any) -> None:
    """Add one dbt node result to the counts, and to the failures when it failed."""
    node = node_result.node
    kind = str(getattr(node.resource_type, "value", node.resource_type))
    status = str(getattr(node_result.status, "value", node_result.status))
    outcome = _OUTCOME.get(status, "errored")
    counts = (result.tests if kind in ("test", "unit_test") else
              result.seeds if kind == "seed" else result.models)
    setattr(counts, outcome, getattr(counts, outcome) + 1)
    if outcome in ("failed", "errored"):
        result.failures.append(NodeFailure(name=str(node.name), resource_type=kind,
                                           status=status,
                                           message=_one_line(node_result.message or status)))
