"""``pslake docs``: build the dbt documentation site of the warehouse and serve it on localhost.

``dbt docs generate --static`` runs in this process, as ``pslake transform`` runs dbt, on the data
folder's warehouse. It compiles every model and reads the warehouse's catalog, and writes into
``DATA_DIR/dbt/target``: ``manifest.json`` (models, sources, tests, exposures, lineage and every
description), ``catalog.json`` (each built table's columns and types), ``index.html`` (the site,
which fetches those two files) and ``static_index.html`` (the same site with both embedded, which
a browser opens straight from disk).

The site is served by Python's ``http.server`` from that folder, but only its files: the rest of
``target/`` (compiled SQL, run results) is not served.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import socket
import socketserver
import time
import urllib.parse
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import typer

from pslake import settings
from pslake.cli import friendly, say
from pslake.errors import PslakeError
from pslake.transform import dbt_dir, invoke_dbt, is_lock_error, warehouse_path

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
SITE_FILES = ("index.html", "manifest.json", "catalog.json", "static_index.html")


@dataclass(frozen=True, slots=True)
class DocsSite:
    """A generated documentation site: its folder and what it describes."""

    folder: Path
    models: int
    sources: int
    tables: int
    seconds: float

    @property
    def static_page(self) -> Path:
        """The page with everything embedded, which opens from disk without a server."""
        return self.folder / "static_index.html"


def site_folder(data_dir: Path | None = None) -> Path:
    """``DATA_DIR/dbt/target``: where dbt writes the site."""
    return dbt_dir(data_dir) / "target"


def generate(data_dir: Path | None = None, project: Path | None = None) -> DocsSite:
    """Run ``dbt docs generate --static`` on the warehouse of a data folder.

    Args:
        data_dir: The data folder (``--data-dir`` / ``$PSLAKE_DATA_DIR`` / ``data``).
        project: Another dbt project folder (tests); default the repository's ``dbt_project``.

    Returns:
        The site's folder (``DATA_DIR/dbt/target``), the models and sources the manifest
        describes, the tables and views the catalog found, and seconds.

    Raises:
        PslakeError: No warehouse yet, the warehouse held by another process, or dbt failed.
    """
    warehouse = warehouse_path(data_dir)
    if not warehouse.is_file():
        raise PslakeError(f"docs: no warehouse at {warehouse}; run `pslake ingest` then "
                          "`pslake transform`")
    _check_free(warehouse)
    started = time.monotonic()
    outcome = invoke_dbt(["docs", "generate"], ["--static"], data_dir, project)
    logs = dbt_dir(data_dir) / "logs" / "dbt.log"
    if outcome.exception is not None:
        text = " ".join(str(outcome.exception).split())
        if is_lock_error(text):
            raise PslakeError(_held(warehouse, text)) from None
        raise PslakeError(f"docs: dbt docs generate stopped ({type(outcome.exception).__name__}):"
                          f" {text}; details in {logs}") from None
    errors = getattr(outcome.result, "errors", None) or []
    if not outcome.success or errors:
        detail = " ".join(" ".join(str(e).split()) for e in errors) or "it failed"
        raise PslakeError(f"docs: dbt docs generate failed: {detail}; details in {logs}")
    folder = site_folder(data_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    catalog = json.loads((folder / "catalog.json").read_text())
    models = sum(1 for node in manifest["nodes"].values() if node["resource_type"] == "model")
    return DocsSite(folder=folder, models=models, sources=len(manifest["sources"]),
                    tables=len(catalog["nodes"]) + len(catalog["sources"]),
                    seconds=time.monotonic() - started)


def _check_free(warehouse: Path) -> None:
    """Fail in one line when another process holds the warehouse (dbt opens it to write)."""
    try:
        duckdb.connect(str(warehouse)).close()
    except duckdb.IOException as exc:
        if not is_lock_error(str(exc)):
            raise PslakeError(f"docs: cannot open {warehouse}: {' '.join(str(exc).split())}"
                              ) from None
        raise PslakeError(_held(warehouse, str(exc))) from None


def _held(warehouse: Path, text: str = "") -> str:
    holder = text.partition("(PID ")[2].partition(")")[0]
    return (f"docs: the warehouse {warehouse} is in use by another process"
            + (f" (pid {holder})" if holder.isdigit() else "")
            + "; wait for it to finish (a running `pslake ingest`, `transform` or a SQL client "
              "such as `pslake sql --warehouse`)")


class _SiteHandler(SimpleHTTPRequestHandler):
    """Serves the site's files from its folder, never cached, logging at debug level."""

    def do_GET(self) -> None:
        """Send a site file, or 404 for anything else in the folder."""
        if self._is_site_file():
            super().do_GET()
        else:
            self.send_error(404)

    def do_HEAD(self) -> None:
        """As GET, without the body."""
        if self._is_site_file():
            super().do_HEAD()
        else:
            self.send_error(404)

    def end_headers(self) -> None:
        """Ask the browser not to cache: a new `pslake docs` rewrites the files."""
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Log each request at debug level instead of writing it to stderr."""
        log.debug("docs: %s " + format, self.address_string(), *args)

    def _is_site_file(self) -> bool:
        path = urllib.parse.urlsplit(self.path).path
        return path == "/" or path.lstrip("/") in SITE_FILES


class DocsServer(ThreadingHTTPServer):
    """The HTTP server of the site; ``serve_forever`` serves it, ``shutdown`` stops it."""

    def __init__(self, folder: Path, host: str, port: int) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        handler = functools.partial(_SiteHandler, directory=str(folder))
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        """Bind without looking the host's name up (``HTTPServer`` asks DNS for it)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def url(self) -> str:
        """``http://HOST:PORT/``, with the port actually bound (for port 0, the one chosen)."""
        host = f"[{self.server_name}]" if ":" in self.server_name else self.server_name
        return f"http://{host}:{self.server_port}/"


def make_server(folder: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> DocsServer:
    """A server of the site in ``folder``, bound but not yet serving.

    Args:
        folder: The site's folder (``DocsSite.folder``).
        host: The address to listen on.
        port: The port to listen on; 0 lets the system choose a free one.

    Raises:
        PslakeError: The port is in use, not allowed, or the host is not an address here.
    """
    try:
        return DocsServer(folder, host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PslakeError(f"docs: port {port} on {host} is in use; pick another with "
                              f"--port (for example `pslake docs --port {port + 1}`)") from None
        if exc.errno == errno.EACCES:
            raise PslakeError(f"docs: no permission to listen on port {port}; pick one above "
                              "1023 with --port") from None
        raise PslakeError(f"docs: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                          "check --host") from None


@friendly
def docs_command(
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port to serve on."),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on."),
    no_serve: bool = typer.Option(
        False, "--no-serve", help="Only generate the site and print where it is."),
) -> None:
    """Build the dbt documentation site (lineage, every model and column) and serve it.

    Runs `dbt docs generate` on DATA_DIR/warehouse.duckdb; the site goes to DATA_DIR/dbt/target.
    Then serves it on http://HOST:PORT until Ctrl-C.
    With --no-serve, open the printed static_index.html straight from disk instead.
    """
    data = settings.data_dir()
    # bind before dbt runs, so a port in use fails at once
    server = None if no_serve else make_server(site_folder(data), host, port)
    try:
        site = generate(data)
        say(f"docs: {site.models} models and {site.sources} sources described, {site.tables} "
            f"tables in the catalog, in {site.seconds:.1f} s")
        if server is None:
            say(f"docs: {site.static_page} (opens from disk; `pslake docs` serves the site)")
            return
        say(f"docs: serving {server.url} (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            say("docs: stopped")
    finally:
        if server is not None:
            server.server_close()
