"""``pslake sandbox ...``: generate a synthetic firm and serve it (``pslake demo`` uses them).

The sandbox stands for the outside world (DESIGN.md), so only these commands, the tests and the
benchmarks import it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from pslake import settings
from pslake.cli import friendly, say
from sandbox import firm_info
from sandbox.firm.discrepancies import parse_rates
from sandbox.firm.generate import DEFAULT_SEED, generate, resolve_as_of
from sandbox.server.faults import FaultConfig

sandbox_app = typer.Typer(
    help="The local stand-ins for HubSpot, Harvest and NetSuite, with a synthetic firm.",
    no_args_is_help=True,
)

DirOption = typer.Option(None, "--dir", help="Store folder [default: DATA_DIR/sandbox].")


def _store(path: Path | None) -> Path:
    return path if path is not None else settings.sandbox_dir()


def _progress() -> Any:
    started = time.monotonic()
    last: dict[str, float] = {}

    def report(step: str, done: int | None, total: int | None) -> None:
        elapsed = time.monotonic() - started
        if done is None or not total:
            say(f"  [{elapsed:6.1f}s] {step}")
            return
        if done < total and elapsed - last.get(step, -10) < 2:
            return
        last[step] = elapsed
        say(f"  [{elapsed:6.1f}s] {step}: {100 * done / total:5.1f}%")

    return report


def _mask(token: str) -> str:
    return f"{token[:8]}…{token[-4:]}" if len(token) > 16 else "…"


def _summary(info: dict[str, Any]) -> list[str]:
    counts = info.get("counts", {})
    rows = [
        ("hubspot", "companies", "hubspot.companies"),
        ("hubspot", "contacts", "hubspot.contacts"),
        ("hubspot", "deals", "hubspot.deals"),
        ("hubspot", "erp_invoices", "hubspot.erp_invoices"),
        ("harvest", "clients", "harvest.clients"),
        ("harvest", "users", "harvest.users"),
        ("harvest", "projects", "harvest.projects"),
        ("harvest", "time_entries", "harvest.time_entries"),
        ("harvest", "expenses", "harvest.expenses"),
        ("netsuite", "customer", "netsuite.customer"),
        ("netsuite", "job", "netsuite.job"),
        ("netsuite", "employee", "netsuite.employee"),
        ("netsuite", "timebill", "netsuite.timebill"),
        ("netsuite", "transaction", "netsuite.transactions"),
        ("netsuite", "transactionline", "netsuite.transaction_lines"),
    ]
    lines = [f"  {vendor:<9}{name:<17}{counts.get(key, 0):>12,}" for vendor, name, key in rows]
    total = sum(info.get("discrepancies", {}).values())
    lines.append(
        f"  injected discrepancies: {total:,} in {len(info.get('discrepancies', {}))} "
        "types (ground_truth.csv)"
    )
    return lines


@sandbox_app.command("generate")
@friendly
def generate_cmd(
    size: str = typer.Option(
        "medium",
        help="small (~50 people, 6 months), medium (~500, 12), "
        "enterprise (10,000, 12; ~7.5M time entries).",
    ),
    seed: int = typer.Option(DEFAULT_SEED, help="Same seed and as-of date, same firm."),
    store_dir: Path | None = DirOption,
    as_of: str = typer.Option(
        "today", help="The firm's today (YYYY-MM-DD); time runs to the day before."
    ),
    rate: list[str] = typer.Option(  # noqa: B008
        [], "--rate", help="Discrepancy rate: 0.01 for every type, or TYPE=0.01 (repeatable)."
    ),
) -> None:
    """Generate a deterministic synthetic firm into the sandbox store."""
    target = _store(store_dir)
    rates = parse_rates(rate)
    say(f"generating the {size} firm (seed {seed}) into {target}")
    info = generate(
        target, size=size, seed=seed, as_of=resolve_as_of(as_of), rates=rates, progress=_progress()
    )
    say(f"done in {info['seconds']}s: firm as of {info['as_of']}, history from {info['start']}")
    for line in _summary(info):
        say(line)


def _faults(
    spec: str | None,
    rate_limit: bool,
    error_rate: float | None,
    slow_rate: float | None,
    slow_ms: int | None,
    reset_rate: float | None,
    malformed_rate: float | None,
    drift: bool,
) -> FaultConfig:
    config = FaultConfig.parse(spec) if spec else FaultConfig.from_env()
    flags: dict[str, Any] = {}
    if rate_limit:
        flags["rate_limit"] = True
    for name, value in (
        ("error_rate", error_rate),
        ("slow_rate", slow_rate),
        ("slow_ms", slow_ms),
        ("reset_rate", reset_rate),
        ("malformed_rate", malformed_rate),
    ):
        if value is not None:
            flags[name] = value
    if drift:
        flags["drift"] = True
    return FaultConfig.from_mapping(flags, config) if flags else config


@sandbox_app.command("serve")
@friendly
def serve_cmd(
    store_dir: Path | None = DirOption,
    host: str = typer.Option(settings.SANDBOX_HOST, help="Interface to listen on."),
    port: int = typer.Option(settings.SANDBOX_PORT, help="Port (0: any free port)."),
    faults: str | None = typer.Option(
        None,
        help="Fault modes, e.g. 'rate_limit,error_rate=0.05' or JSON "
        "[default: $PSLAKE_SANDBOX_FAULTS].",
    ),
    rate_limit: bool = typer.Option(False, help="Enforce each vendor's real rate limit (429)."),
    error_rate: float | None = typer.Option(None, help="Share of requests answered 5xx."),
    slow_rate: float | None = typer.Option(None, help="Share of requests delayed."),
    slow_ms: int | None = typer.Option(None, help="Delay of a slow response (ms)."),
    reset_rate: float | None = typer.Option(None, help="Share of responses cut mid-body."),
    malformed_rate: float | None = typer.Option(None, help="Share of records served malformed."),
    drift: bool = typer.Option(False, help="A new field appears after a few pages."),
    access_log: bool = typer.Option(False, help="Log every request."),
) -> None:
    """Serve the three vendor APIs over the store until interrupted."""
    from sandbox.server.app import serve

    target = _store(store_dir)
    info = firm_info.load(target)
    config = _faults(
        faults, rate_limit, error_rate, slow_rate, slow_ms, reset_rate, malformed_rate, drift
    )

    def ready(endpoints: dict[str, dict[str, str]]) -> None:
        say(
            f"sandbox: {info['size']} firm (seed {info['seed']}, as of {info['as_of']}) "
            f"from {target}"
        )
        _print_endpoints(endpoints, target)
        say(f"  faults: {config.describe()}")
        say("  Ctrl-C stops the server.")

    serve(target, host=host, port=port, faults=config, on_ready=ready, access_log=access_log)


def _print_endpoints(endpoints: dict[str, dict[str, str]], target: Path) -> None:
    for vendor in ("hubspot", "harvest", "netsuite"):
        entry = endpoints[vendor]
        extra = f"  account {entry['account_id']}" if "account_id" in entry else ""
        say(f"  {vendor:<9}{entry['base_url']:<36}token {_mask(entry['access_token'])}{extra}")
    say(f"  control  {endpoints['_sandbox']['base_url']}/stats, /faults")
    say(f"  full tokens: {target / 'endpoints.json'}")


@sandbox_app.command("info")
@friendly
def info_cmd(store_dir: Path | None = DirOption) -> None:
    """Show what a generated store holds."""
    target = _store(store_dir)
    info = firm_info.load(target)
    say(
        f"{info['size']} firm, seed {info['seed']}, as of {info['as_of']} (history from "
        f"{info['start']}), generated {info['generated_at']} in {info['seconds']}s"
    )
    for line in _summary(info):
        say(line)
    for name, count in info.get("discrepancies", {}).items():
        say(f"    {name:<26}{count:>8,}")
