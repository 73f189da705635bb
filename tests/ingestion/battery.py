"""Shared parts of the ingestion battery (tests/reliability/test_ingest_*.py, RELIABILITY.md).

- The golden load: the small firm ingested once, fault-free, by all three vendors; its raw
  tables fingerprinted (per row: key and a hash of the content).
- ``fingerprint`` and ``compare``: rows lost (a golden row missing, or with other content),
  extra and duplicated, computed from the data of a warehouse against the golden one.
- ``orphans``: raw rows whose load id is not a complete load (``_dlt_loads`` status 0).
- ``pslake``: the real ``pslake ingest`` command as a subprocess, with the sandbox's endpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from ingestion.http import HttpSettings
from ingestion.pipeline import IngestResult, ingest
from sandbox.server.app import SandboxThread

RAW = ("raw_hubspot", "raw_harvest", "raw_netsuite")
VENDOR_OF = {"raw_hubspot": "hubspot", "raw_harvest": "harvest", "raw_netsuite": "netsuite"}
# columns that say when pslake saw a row, not what the vendor holds
RUN_COLUMNS = frozenset({"_dlt_load_id", "_dlt_id", "detected_at", "first_seen_at",
                         "quarantined_at", "_dlt_valid_from", "_dlt_valid_to"})
# each raw table's key (README tables of the sources); default ``id``; ``()``: the whole row
KEYS: dict[str, tuple[str, ...]] = {
    "raw_hubspot.properties": ("object_type", "name"),
    "raw_hubspot.associations": (),
    "raw_harvest.deleted_records": ("resource", "id"),
    "raw_netsuite.transactionline": ("uniquekey",),
    "raw_netsuite.previoustransactionlink": ("previousdoc", "nextdoc"),
    "raw_hubspot.quarantine": (),
    "raw_harvest.quarantine": (),
    "raw_netsuite.quarantine": (),
}
# retries fast, but several of them: the battery's runs meet many faults
FAST = HttpSettings(timeout_s=10, max_attempts=10, backoff_factor=0.05, max_retry_delay_s=3)
PSLAKE = Path(sys.executable).with_name("pslake")
PENDING_LINE = "finishing the load a previous run left pending"


# ---- environment ------------------------------------------------------------------------------


def clean_env(env: pytest.MonkeyPatch) -> None:
    """No vendor settings (the sandbox's endpoints.json is used) and quiet dlt."""
    env.setenv("RUNTIME__LOG_LEVEL", "ERROR")
    for name in list(os.environ):
        if name.startswith("SOURCES__") or name.startswith("RUNTIME__REQUEST_"):
            env.delenv(name)
    env.delenv("PSLAKE_DATA_DIR", raising=False)


def data_dir_for(firm: Path, root: Path) -> Path:
    """A data folder of its own (warehouse, dlt state) on a served firm: ``root``, whose
    ``sandbox/endpoints.json`` is a copy of the firm's."""
    (root / "sandbox").mkdir(parents=True, exist_ok=True)
    shutil.copy2(firm / "endpoints.json", root / "sandbox" / "endpoints.json")
    return root


def secrets_of(firm: Path) -> list[str]:
    """The sandbox's tokens (they must never appear in a message)."""
    creds = json.loads((firm / "firm.json").read_text())["credentials"]
    return [c["access_token"] for c in creds.values()]


# ---- fingerprints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TablePrint:
    """One raw table: its content columns, key -> content hash, and its row count."""

    columns: tuple[str, ...]
    key: tuple[str, ...]
    rows: dict[tuple[Any, ...], str]
    count: int

    @property
    def duplicates(self) -> int:
        """Rows beyond one per key."""
        return self.count - len(self.rows)


Fingerprint = dict[str, TablePrint]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fingerprint(warehouse: Path, schemas: Iterable[str] = RAW, like: Fingerprint | None = None,
                skip: Iterable[str] = ()) -> Fingerprint:
    """Fingerprint every raw table of a warehouse (``like``: on another print's columns).

    Args:
        warehouse: The DuckDB file.
        schemas: The datasets to read.
        like: Hash the same columns as this print (a column it lacks counts as NULL).
        skip: Columns left out of the content (on top of ``RUN_COLUMNS``).
    """
    out: Fingerprint = {}
    left_out = RUN_COLUMNS | set(skip)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        for schema in schemas:
            tables = [r[0] for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_name not like '\\_dlt%' escape '\\' order by 1", [schema]).fetchall()]
            for table in tables:
                name = f"{schema}.{table}"
                present = [r[0] for r in con.execute(
                    "select column_name from information_schema.columns where table_schema = ? "
                    "and table_name = ? order by ordinal_position", [schema, table]).fetchall()]
                if like is not None and name in like:
                    columns = tuple(c for c in like[name].columns if c not in left_out)
                else:
                    columns = tuple(c for c in present if c not in left_out)
                key = KEYS.get(name, ("id",) if "id" in columns else ())
                values = [(_q(c) if c in present else "NULL") for c in columns]
                content = f"md5(CAST(row({', '.join(values)}) AS VARCHAR))"
                keys = ", ".join(_q(k) for k in key) if key else content
                rows = con.execute(f"select {keys}, {content} from {schema}.{_q(table)}"
                                   ).fetchall()
                out[name] = TablePrint(columns, key, {tuple(r[:-1]): r[-1] for r in rows},
                                       len(rows))
    return out


@dataclass
class Comparison:
    """A warehouse against the golden one, per table and in total."""

    tables: dict[str, dict[str, int]] = field(default_factory=dict)

    def total(self, what: str) -> int:
        """``lost``, ``changed``, ``extra`` or ``duplicates`` over every table."""
        return sum(t[what] for t in self.tables.values())

    @property
    def lost(self) -> int:
        """Golden rows missing, or present with other content (their version is lost)."""
        return self.total("lost") + self.total("changed")

    @property
    def duplicates(self) -> int:
        """Rows beyond one per key, and rows the golden load does not have."""
        return self.total("duplicates") + self.total("extra")

    def problems(self) -> dict[str, dict[str, int]]:
        """The tables with any difference."""
        return {name: t for name, t in self.tables.items() if any(t.values())}


def compare(golden: Fingerprint, actual: Fingerprint, tables: Iterable[str] | None = None
            ) -> Comparison:
    """Compare two prints by key and content hash (``tables``: only these)."""
    result = Comparison()
    for name in tables if tables is not None else golden:
        want = golden[name]
        have = actual.get(name) or TablePrint(want.columns, want.key, {}, 0)
        lost = sum(1 for k in want.rows if k not in have.rows)
        changed = sum(1 for k, h in want.rows.items() if k in have.rows and have.rows[k] != h)
        extra = sum(1 for k in have.rows if k not in want.rows)
        result.tables[name] = {"lost": lost, "changed": changed, "extra": extra,
                               "duplicates": have.duplicates}
    for name in actual:
        if tables is None and name not in golden:  # a table the golden load never made
            result.tables[name] = {"lost": 0, "changed": 0, "extra": len(actual[name].rows),
                                   "duplicates": actual[name].duplicates}
    return result


def of_vendor(prints: Fingerprint, *schemas: str) -> list[str]:
    """The table names of some datasets."""
    return [name for name in prints if name.split(".")[0] in schemas]


def orphans(warehouse: Path, schemas: Iterable[str] = RAW) -> dict[str, int]:
    """Per raw table, rows whose ``_dlt_load_id`` is not a complete load (status 0)."""
    found: dict[str, int] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for schema in schemas:
            tables = [r[0] for r in con.execute(
                "select table_name from information_schema.columns where table_schema = ? "
                "and column_name = '_dlt_load_id' and table_name not like '\\_dlt%' escape '\\'",
                [schema]).fetchall()]
            for table in tables:
                n = con.execute(
                    f"select count(*) from {schema}.{_q(table)} where _dlt_load_id not in "
                    f"(select load_id from {schema}._dlt_loads where status = 0)").fetchone()
                if n and n[0]:
                    found[f"{schema}.{table}"] = n[0]
    return found


# ---- the golden load --------------------------------------------------------------------------


@dataclass(frozen=True)
class Golden:
    """The fault-free load of the small firm: its print and the calls each vendor took."""

    prints: Fingerprint
    calls: Mapping[str, int]
    data_dir: Path


_GOLDEN: dict[Path, Golden] = {}


def golden_load(template: Path, root: Path) -> Golden:
    """Ingest a copy of the small firm's store, fault-free, once per process."""
    if template in _GOLDEN:
        return _GOLDEN[template]
    shutil.copytree(template, root / "sandbox")
    with pytest.MonkeyPatch.context() as env, SandboxThread(root / "sandbox"):
        clean_env(env)
        result = ingest(data_dir=root, http=FAST)
    assert not result.errors, result.errors
    golden = Golden(fingerprint(root / "warehouse.duckdb"),
                    {r.vendor: r.tally.calls.calls for r in result.runs}, root)
    _GOLDEN[template] = golden
    return golden


def total_retries(result: IngestResult) -> int:
    """Retried attempts over every vendor of a run."""
    return sum(r.tally.calls.retried for r in result.runs)


# ---- pslake as a subprocess ---------------------------------------------------------------------


def pslake_env(**extra: str) -> dict[str, str]:
    """The environment of a ``pslake`` subprocess: no vendor settings, quiet dlt, ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOURCES__", "PSLAKE_CRASH", "RUNTIME__REQUEST_"))
           and k != "PSLAKE_DATA_DIR"}
    env["RUNTIME__LOG_LEVEL"] = "ERROR"
    env.update(extra)
    return env


def pslake_command(data_dir: Path, *args: str) -> list[str]:
    """``pslake --data-dir DATA_DIR ARGS``."""
    return [str(PSLAKE), "--data-dir", str(data_dir), *args]


def pslake(data_dir: Path, *args: str, timeout: float = 300, **env: str
           ) -> subprocess.CompletedProcess[str]:
    """Run ``pslake`` to the end; its exit code, stdout and stderr."""
    return subprocess.run(pslake_command(data_dir, *args), env=pslake_env(**env), text=True,
                          capture_output=True, timeout=timeout, check=False)


# ---- edits through the vendors' APIs ----------------------------------------------------------


def harvest_call(server: SandboxThread, method: str, path: str, body: Any = None) -> Any:
    """One Harvest API call to the sandbox (as a user's edit would reach it)."""
    e = server.endpoints["harvest"]
    reply = requests.request(method, f"{e['base_url']}/v2/{path}", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {e['access_token']}",
                                      "Harvest-Account-Id": e["account_id"],
                                      "User-Agent": "pslake battery"})
    assert reply.ok, reply.text
    return reply.json() if reply.content else None


def netsuite_patch(server: SandboxThread, record_type: str, record_id: int,
                   body: dict[str, Any]) -> None:
    """Change a NetSuite record through the record API."""
    e = server.endpoints["netsuite"]
    reply = requests.patch(f"{e['base_url']}/services/rest/record/v1/{record_type}/{record_id}",
                           json=body, headers={"Authorization": f"Bearer {e['access_token']}"},
                           timeout=30)
    assert reply.status_code == 204, reply.text


def differences(a: Path, b: Path, schemas: Iterable[str],
                skip: Mapping[str, Iterable[str]] | None = None, keep: Iterable[str] = ()
                ) -> dict[str, int]:
    """Rows in one warehouse and not the other, per table of ``schemas``.

    Run columns are left out (but those in ``keep``), and so are a table's ``skip`` columns; a
    table in only one of the warehouses counts all its rows.
    """
    skip = skip or {}
    out: dict[str, int] = {}
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        listed = ", ".join(f"'{s}'" for s in schemas)
        names = {c: {f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables where "
            f"table_catalog = '{c}' and table_schema in ({listed}) and "
            "table_name not like '\\_dlt%' escape '\\'").fetchall()} for c in ("a", "b")}
        for name in sorted(names["a"] | names["b"]):
            schema, table = name.split(".", 1)
            if name not in names["a"] or name not in names["b"]:
                side = "a" if name in names["a"] else "b"
                out[name] = con.execute(f'select count(*) from {side}.{schema}."{table}"'
                                        ).fetchone()[0]
                continue
            left_out = (RUN_COLUMNS - set(keep)) | set(skip.get(name, ()))
            columns = ", ".join(_q(c) for (c,) in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'a' "
                "and table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table]).fetchall() if c not in left_out)
            x, y = f'a.{schema}."{table}"', f'b.{schema}."{table}"'
            out[name] = con.execute(
                f"select count(*) from ((select {columns} from {x} except all select {columns} "
                f"from {y}) union all (select {columns} from {y} except all "
                f"select {columns} from {x}))").fetchone()[0]
    return out


def differing_columns(a: Path, b: Path, table: str) -> list[str]:
    """The columns of a table whose values differ between two warehouses (for messages)."""
    schema, name = table.split(".", 1)
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        columns = [c for (c,) in con.execute(
            "select column_name from information_schema.columns where table_catalog = 'a' "
            "and table_schema = ? and table_name = ?", [schema, name]).fetchall()]
        return [c for c in columns if con.execute(
            f'select count(*) from (select {_q(c)} from a.{schema}."{name}" except all '
            f'select {_q(c)} from b.{schema}."{name}")').fetchone()[0]]
