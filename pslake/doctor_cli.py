"""``pslake doctor``: check configuration and connectivity, and say what is wrong."""

from __future__ import annotations

import typer

from pslake.cli import friendly, say


@friendly
def doctor_command(
    offline: bool = typer.Option(
        False, "--offline", help="Do not call the vendors (their settings are still checked)."),
    # the default is pslake.doctor.DEFAULT_TIMEOUT_S, not imported here: that module loads dlt
    timeout: float = typer.Option(
        5.0, "--timeout", min=0.1, help="Seconds to wait for each vendor's answer."),
) -> None:
    """Check the data folder, each vendor, the warehouse, the snapshot, users and sync.

    Each check prints one line, `ok`, `warn` or `FAIL`, with what to set or run when it is not
    ok. One cheap authenticated call per vendor (none with --offline); nothing is written.
    Exits 1 when a check fails; warnings alone exit 0.
    """
    from pslake.doctor import render, run_checks, summary

    checks = []
    for check in run_checks(offline=offline, timeout_s=timeout):
        checks.append(check)
        say(render(check))
    say(summary(checks))
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)
