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


class _Target:
    """dbt's `target`: the DuckDB target the project runs on."""

    type = "duckdb"
    name = "duckdb"


target = _Target()


class _Adapter:
    """`adapter.dispatch(name, package)` for the project's portable macros (macros/portable.sql).

    SQLFluff cannot look a macro up by name, so each renders here the way its `duckdb__` version
    does where the shape of the SQL depends on it (a type, an operator, a FROM item); the rest
    render as a function call of the same name.
    """

    _SHAPES: _ClassVar[dict[str, _Any]] = {
        "wide_integer": lambda: "hugeint",
        "integer_divide": lambda dividend, divisor: f"({dividend}) // ({divisor})",
        "date_series": lambda start, stop, step, alias, column: (
            f"generate_series({start}, {stop}, interval '1 {step}') as {alias} ({column})"),
    }

    def dispatch(self, name: str, macro_namespace: str | None = None) -> _Any:
        """The rendering of macro `name` (``macro_namespace`` is the package, unused here)."""
        if name in self._SHAPES:
            return self._SHAPES[name]
        return lambda *args: f"{name}({', '.join(map(str, args))})"


adapter = _Adapter()
