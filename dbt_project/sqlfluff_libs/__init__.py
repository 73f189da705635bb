"""Stand-ins for the parts of dbt's Jinja context that SQLFluff's jinja templater lacks.

SQLFluff stubs `ref`, `source`, `config`, `is_incremental` and `this` itself
(`apply_dbt_builtins`). What our models use beyond that is defined here; every top-level name
becomes a template variable (`library_path` in `dbt_project/.sqlfluff`) and takes precedence over
SQLFluff's own stub of the same name. Values only have to render to SQL that parses the way
dbt's rendering would: they are never run.
"""

import datetime as _dt
from pathlib import Path as _Path
from typing import Any as _Any
from typing import ClassVar as _ClassVar

import yaml as _yaml

_PROJECT = _yaml.safe_load((_Path(__file__).parent.parent / "dbt_project.yml").read_text())
_VARS: dict[str, _Any] = _PROJECT.get("vars") or {}

run_started_at = _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
invocation_id = "00000000-0000-0000-0000-000000000000"


def var(name: str, default: _Any = "") -> _Any:
    """A project var as `dbt_project.yml` sets it, so `var('systems')['psa']` renders."""
    return _VARS.get(name, default)


class _CrossDatabaseMacros:
    """dbt's cross-database macros (`dbt.datediff(...)`), rendered as a plain function call.

    Type macros (`dbt.type_string()`) render as DuckDB type names so a `cast` still parses.
    """

    _TYPES: _ClassVar[dict[str, str]] = {
        "type_string": "varchar", "type_int": "integer", "type_bigint": "bigint",
        "type_numeric": "numeric", "type_float": "double", "type_boolean": "boolean",
        "type_timestamp": "timestamp",
    }

    def __getattr__(self, name: str) -> _Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._TYPES:
            return lambda *args, **kwargs: self._TYPES[name]

        def call(*args: _Any, **kwargs: _Any) -> str:
            parts = [", ".join(map(str, a)) if isinstance(a, list | tuple) else str(a)
                     for a in (*args, *kwargs.values())]
            return f"{name}({', '.join(parts)})"

        return call


dbt = _CrossDatabaseMacros()
