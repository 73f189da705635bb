"""The ``pslake`` command line: the one place that writes to the terminal.

User mistakes (bad options, missing store, port in use) end in one readable line on stderr and a
non-zero exit, never a traceback. Long steps print progress lines.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import typer

from pslake import settings
from pslake.errors import PslakeError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="pslake",
    help="pslake: the integration lakehouse for professional-services firms.\n\n"
    "Pulls CRM (HubSpot), PSA (Harvest) and ERP (NetSuite) data into DuckDB, builds the marts "
    "and reconciliation with dbt, and pushes governed corrections back to the CRM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def say(message: str) -> None:
    """Print one line of progress or result."""
    typer.echo(message)


def friendly(func: F) -> F:
    """Turn the errors a user can fix into one line (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (PslakeError, ValueError, FileNotFoundError, PermissionError) as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), 1)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        return None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        try:
            say(f"pslake {version('pslake')}")
        except PackageNotFoundError:
            say("pslake (not installed)")
        raise typer.Exit()


DATA_DIR_OPTION = typer.Option(
    None, "--data-dir", help="Data folder [default: $PSLAKE_DATA_DIR or data/]."
)


@app.callback()
def main(
    data_dir: Path | None = DATA_DIR_OPTION,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details."),
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """The pslake command line."""
    if data_dir is not None:
        os.environ[settings.DATA_DIR_ENV] = str(data_dir)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _register() -> None:
    from pslake.app_cli import app_app
    from pslake.demo_cli import demo
    from pslake.docs_cli import docs_command
    from pslake.doctor_cli import doctor_command
    from pslake.ingest_cli import ingest
    from pslake.sandbox_cli import sandbox_app
    from pslake.sql_cli import sql_command
    from pslake.sync_cli import run_command, schedule_command, sync_app
    from pslake.transform_cli import publish_command, transform

    app.add_typer(sandbox_app, name="sandbox")
    app.command("demo")(demo)
    app.command("ingest")(ingest)
    app.command("transform")(transform)
    app.command("publish")(publish_command)
    app.add_typer(sync_app, name="sync")
    app.command("run")(run_command)
    app.command("schedule")(schedule_command)
    app.add_typer(app_app, name="app")
    app.command("doctor")(doctor_command)
    app.command("sql")(sql_command)
    app.command("docs")(docs_command)


_register()
