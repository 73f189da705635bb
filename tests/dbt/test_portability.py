"""The dbt project on PostgreSQL: the same models give the same answers (DESIGN.md, portability).

The small firm's raw tables are copied from its DuckDB warehouse into a throw-away PostgreSQL
server (Debian's ``postgresql``, installed by ``make test``), ``dbt build --target postgres`` runs
every model, data test and unit test there, twice (a full build, then an incremental one), and
every canonical and mart table must hold exactly the rows DuckDB's build holds. What DuckDB spells
its own way goes through the project's dispatched macros (``macros/portable.sql``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest

from pslake import transform
from tests.conftest import BuiltFirm

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# columns that hold the time of the run, not data: they differ between any two builds (exception
# ages count the midnights between first and last seen)
RUN_TIME_COLUMNS = {
    "first_seen_at", "last_seen_at", "oldest_exception_first_seen_at", "hours_since_latest_load",
    "max_exception_age_days", "avg_exception_age_days", "exceptions_open_over_7_days_count",
}
DUCKDB_TO_POSTGRES = {"DOUBLE": "double precision", "TIMESTAMP WITH TIME ZONE": "timestamptz"}


@dataclass(frozen=True)
class Postgres:
    """A running throw-away server: where to reach it."""

    port: int
    user: str = "pslake"
    database: str = "postgres"

    def connect(self) -> Any:
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user,
                                      dbname=self.database)
        connection.autocommit = True
        return connection


def _server_binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL's server binaries are missing (Debian package postgresql): "
                    "`make test` installs them", pytrace=False)
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server on a free port, in C collation (byte order, as DuckDB sorts text)."""
    binaries = _server_binaries()
    root = Path(tempfile.mkdtemp(prefix="pslake-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    port = _free_port()
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "pslake",
                    "--auth=trust", "--encoding=UTF8", "--locale=C"],
                   check=True, capture_output=True, timeout=120)
    options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c full_page_writes=off -c synchronous_commit=off -c timezone=UTC")
    subprocess.run([*as_user, str(binaries / "pg_ctl"), "start", "-w", "-D", str(data),
                    "-o", options, "-l", str(root / "server.log")],
                   check=True, capture_output=True, timeout=120)
    try:
        yield Postgres(port=port)
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "stop", "-D", str(data),
                        "-m", "immediate"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _copy_raw_tables(warehouse: Path, server: Postgres, scratch: Path) -> int:
    """Every table of the warehouse's ``raw_*`` schemas, recreated and filled on the server."""
    copied = 0
    with duckdb.connect(str(warehouse), read_only=True) as source, server.connect() as target:
        cursor = target.cursor()
        tables = source.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema like 'raw_%' and table_type = 'BASE TABLE'").fetchall()
        for schema, table in tables:
            columns = source.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table]).fetchall()
            cursor.execute(f'create schema if not exists "{schema}"')
            cursor.execute(f'create table "{schema}"."{table}" ('
                           + ", ".join(f'"{name}" {DUCKDB_TO_POSTGRES.get(kind, kind)}'
                                       for name, kind in columns) + ")")
            rows = scratch / f"{schema}.{table}.csv"
            source.sql(f'select * from "{schema}"."{table}"').write_csv(str(rows), header=False)
            with rows.open() as handle:
                cursor.copy_expert(f'copy "{schema}"."{table}" from stdin with (format csv)',
                                   handle)
            copied += 1
    return copied


def _dbt_build_on_postgres(server: Postgres, built: BuiltFirm, folder: Path,
                           monkeypatch: pytest.MonkeyPatch) -> Any:
    from dbt.cli.main import dbtRunner

    for name, value in (("HOST", "127.0.0.1"), ("PORT", str(server.port)),
                        ("USER", server.user), ("DATABASE", server.database)):
        monkeypatch.setenv(f"PSLAKE_PG_{name}", value)
    project = str(transform.project_dir())
    return dbtRunner().invoke([
        "build", "--project-dir", project, "--profiles-dir", project, "--target", "postgres",
        "--target-path", str(folder / "target"), "--log-path", str(folder / "logs"),
        "--vars", json.dumps({"as_of": built.as_of.isoformat()}),
        "--no-send-anonymous-usage-stats"])


def _normalised(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return value.normalize()
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def _differences(warehouse: Path, server: Postgres) -> tuple[list[str], list[str]]:
    """The canonical and mart tables compared, and the ones whose rows differ."""
    compared, differing = [], []
    with duckdb.connect(str(warehouse), read_only=True) as duck, server.connect() as pg:
        cursor = pg.cursor()
        tables = duck.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('canonical', 'marts') and table_type = 'BASE TABLE' "
            "order by 1, 2").fetchall()
        for schema, table in tables:
            columns = [name for name, in duck.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table]).fetchall() if name not in RUN_TIME_COLUMNS]
            query = f'select {", ".join(columns)} from {schema}."{table}"'
            in_duckdb = sorted((tuple(map(_normalised, row)) for row in duck.execute(query)
                                .fetchall()), key=repr)
            cursor.execute(query)
            in_postgres = sorted((tuple(map(_normalised, row)) for row in cursor.fetchall()),
                                 key=repr)
            compared.append(f"{schema}.{table}")
            if in_duckdb != in_postgres:
                only_duck = set(in_duckdb) - set(in_postgres)
                only_pg = set(in_postgres) - set(in_duckdb)
                differing.append(
                    f"{schema}.{table}: {len(in_duckdb)} rows in DuckDB, {len(in_postgres)} in "
                    f"PostgreSQL; e.g. DuckDB {sorted(only_duck, key=repr)[:1]} PostgreSQL "
                    f"{sorted(only_pg, key=repr)[:1]}")
    return compared, differing


def test_the_project_builds_on_postgres_with_the_same_tables_as_on_duckdb(
        small_warehouse: BuiltFirm, postgres: Postgres, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert _copy_raw_tables(small_warehouse.warehouse, postgres, tmp_path) >= 40
    for run in ("full", "incremental"):
        outcome = _dbt_build_on_postgres(postgres, small_warehouse, tmp_path / "dbt", monkeypatch)
        assert outcome.exception is None, outcome.exception
        failed = [f"{r.node.name}: {r.message}" for r in outcome.result.results
                  if str(getattr(r.status, "value", r.status)) not in ("success", "pass", "no-op")]
        assert outcome.success and not failed, f"{run} build on PostgreSQL: {failed}"
        built_nodes = {r.node.name for r in outcome.result.results
                       if r.node.resource_type == "model"}
        assert {"fct_time_entries", "rec_exceptions", "mart_exec_kpis_monthly"} <= built_nodes
        compared, differing = _differences(small_warehouse.warehouse, postgres)
        assert len(compared) >= 40, compared
        assert not differing, f"after the {run} build:\n" + "\n".join(differing)
