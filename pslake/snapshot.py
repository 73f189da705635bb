"""The published snapshot of the marts that the dashboard reads.

The warehouse file is written by one process at a time (ingest, transform, sync export), and a
reader would have to wait for it or see a half-built state. So after a successful build the
marts (and the dimensions that name their ids) are copied into a new DuckDB file under
``DATA_DIR/snapshots/``, and a small pointer file, replaced atomically, names the current one.
The app opens the file the pointer names, read-only; a later publish writes a new file and moves
the pointer, so a reader never sees a file being written. Old snapshots are removed, except the
newest few (a reader may still have one open; on Linux an open file outlives its name anyway).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pslake import settings
from pslake.errors import PslakeError

SNAPSHOT_DIR = "snapshots"
POINTER_FILE = "current.json"
KEEP = 3
# What the app reads besides the marts: the dimensions that give names to ids.
DIMENSIONS = ("dim_clients", "dim_engagements", "dim_resources", "dim_legal_entities")


@dataclass(frozen=True)
class Snapshot:
    """One published snapshot: its file, when it was published, how many tables it holds."""

    path: Path
    published_at: dt.datetime
    tables: int


def snapshot_dir(data_dir: Path | None = None) -> Path:
    """``DATA_DIR/snapshots``."""
    return settings.data_dir(data_dir) / SNAPSHOT_DIR


def current(data_dir: Path | None = None) -> Snapshot | None:
    """The snapshot the pointer names, or None when nothing was published (or it is gone)."""
    pointer = snapshot_dir(data_dir) / POINTER_FILE
    try:
        record = json.loads(pointer.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise PslakeError(f"snapshot pointer {pointer} is unreadable ({exc}): "
                          "run `pslake publish` to write it again") from None
    path = pointer.parent / record["file"]
    if not path.exists():
        return None
    return Snapshot(path=path, published_at=dt.datetime.fromisoformat(record["published_at"]),
                    tables=int(record["tables"]))


def _tables_to_copy(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        """
        select schema_name, table_name
        from duckdb_tables()
        where database_name = 'wh' and (
            (schema_name = 'marts' and not starts_with(table_name, 'int_'))
            or (schema_name = 'canonical' and list_contains(?, table_name))
        )
        order by 1, 2
        """, [list(DIMENSIONS)]).fetchall()
    return [(schema, name) for schema, name in rows]


def publish(data_dir: Path | None = None, warehouse: Path | None = None) -> Snapshot:
    """Copy the marts and dimensions of the warehouse into a new snapshot and point to it.

    Raises:
        PslakeError: no warehouse, or no marts in it (run `pslake transform` first).
    """
    from pslake.transform import WAREHOUSE_FILE

    data = settings.data_dir(data_dir)
    source = warehouse or data / WAREHOUSE_FILE
    if not source.exists():
        raise PslakeError(f"no warehouse at {source}: run `pslake ingest` and "
                          "`pslake transform` first")
    folder = snapshot_dir(data)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC)
    name = f"marts-{stamp:%Y%m%dT%H%M%S%f}.duckdb"
    partial = folder / f".{name}.partial"
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    try:
        quoted = str(source).replace("'", "''")
        con.execute(f"attach '{quoted}' as wh (read_only)")
        tables = _tables_to_copy(con)
        if not any(schema == "marts" for schema, _ in tables):
            raise PslakeError(f"the warehouse {source} has no marts yet: run `pslake transform`")
        for schema in sorted({schema for schema, _ in tables}):
            con.execute(f'create schema if not exists "{schema}"')
        for schema, table in tables:
            con.execute(f'create table "{schema}"."{table}" as '
                        f'select * from wh."{schema}"."{table}"')
        con.execute("detach wh")
        con.execute("checkpoint")
    except BaseException:
        con.close()
        partial.unlink(missing_ok=True)
        raise
    con.close()
    target = folder / name
    os.replace(partial, target)
    record = {"file": name, "published_at": stamp.isoformat(), "tables": len(tables),
              "warehouse": str(source)}
    pointer_tmp = folder / f".{POINTER_FILE}.{os.getpid()}"
    pointer_tmp.write_text(json.dumps(record, indent=2))
    os.replace(pointer_tmp, folder / POINTER_FILE)
    _remove_old(folder, keep=name)
    return Snapshot(path=target, published_at=stamp, tables=len(tables))


def _remove_old(folder: Path, keep: str) -> None:
    snapshots = sorted(folder.glob("marts-*.duckdb"), key=lambda p: p.name, reverse=True)
    for old in [p for p in snapshots if p.name != keep][KEEP - 1:]:
        try:
            old.unlink()
            Path(f"{old}.wal").unlink(missing_ok=True)
        except OSError:
            continue
    # a partial file older than an hour was left by a killed publish
    for stale in folder.glob(".marts-*.partial"):
        if time.time() - stale.stat().st_mtime > 3600:
            stale.unlink(missing_ok=True)
