"""The sandbox HTTP server: one ASGI app with each vendor under its own path prefix.

``/hubspot`` stands for ``https://api.hubapi.com``, ``/harvest`` for
``https://api.harvestapp.com`` and ``/netsuite`` for
``https://{account}.suitetalk.api.netsuite.com``. Beside them, ``/_sandbox/stats`` counts
requests per vendor, method and endpoint (``DELETE`` resets), and ``/_sandbox/faults`` reads or
switches the fault modes at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from sandbox import firm_info
from sandbox.server.errors import json_response, vendor_error
from sandbox.server.faults import FaultConfig, FaultState
from sandbox.store import ENDPOINTS_FILE, VENDORS, Vendor, connect, upgrade_schema

log = logging.getLogger("pslake.sandbox")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SandboxConnectionReset(Exception):
    """Raised inside the app to cut a response short (the dropped-connection fault)."""


class Stats:
    """Request counters per vendor, method and endpoint template, plus statuses."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every count."""
        self.requests: dict[str, dict[str, int]] = {v: {} for v in VENDORS}
        self.statuses: dict[str, dict[str, int]] = {v: {} for v in VENDORS}
        self.records_served: dict[str, int] = {v: 0 for v in VENDORS}
        self.started = time.time()

    def count(self, vendor: Vendor, method: str, endpoint: str, status: int) -> None:
        """Count one finished request."""
        key = f"{method} {endpoint}"
        per_vendor = self.requests[vendor]
        per_vendor[key] = per_vendor.get(key, 0) + 1
        statuses = self.statuses[vendor]
        statuses[str(status)] = statuses.get(str(status), 0) + 1

    def as_json(self, faults: FaultState) -> dict[str, Any]:
        """The ``GET /_sandbox/stats`` body."""
        return {
            "since": dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(),
            "vendors": {
                v: {
                    "total": sum(self.requests[v].values()),
                    "endpoints": dict(sorted(self.requests[v].items())),
                    "statuses": dict(sorted(self.statuses[v].items())),
                    "records_served": self.records_served[v],
                }
                for v in VENDORS
            },
            "faults_injected": dict(sorted(faults.injected.items())),
        }


class SandboxState:
    """What every vendor module shares: the store, credentials, faults, counters and clock."""

    def __init__(self, store_dir: Path, faults: FaultConfig | None = None) -> None:
        self.store_dir = store_dir
        info = firm_info.load(store_dir)
        self.credentials: dict[str, dict[str, str]] = info["credentials"]
        self.firm = info
        self.faults = FaultState(faults or FaultConfig())
        self.stats = Stats()
        self._dbs: dict[str, sqlite3.Connection] = {}
        self._generation = 0
        self._last_stamp = 0.0

    def db(self, vendor: Vendor) -> sqlite3.Connection:
        """The vendor's SQLite connection (opened lazily, used from the event loop thread)."""
        con = self._dbs.get(vendor)
        if con is None:
            con = connect(self.store_dir, vendor)
            con.row_factory = sqlite3.Row
            self._dbs[vendor] = con
        return con

    def close(self) -> None:
        """Close the store connections."""
        for con in self._dbs.values():
            con.close()
        self._dbs.clear()

    @property
    def generation(self) -> int:
        """A counter bumped by every write; caches of counts key on it."""
        return self._generation

    def wrote(self) -> None:
        """Note that the store changed (invalidates cached page counts)."""
        self._generation += 1

    def now(self) -> dt.datetime:
        """The modification time for a write: UTC, strictly increasing by at least 1 ms."""
        stamp = max(time.time(), self._last_stamp + 0.001)
        self._last_stamp = stamp
        return dt.datetime.fromtimestamp(stamp, dt.UTC)

    def vendor_base(self, request: Request, vendor: Vendor) -> str:
        """Absolute base URL of a vendor as the client reached it (for next-page links)."""
        return str(request.base_url).rstrip("/").removesuffix(f"/{vendor}") + f"/{vendor}"


def _endpoint_template(scope: Scope) -> str:
    """The matched route's path with ids left as ``{placeholders}``.

    Path parameters that name a collection (object type, record type) are filled in, so counts
    separate ``companies`` from ``deals``; record ids stay placeholders.
    """
    route = scope.get("route")
    root = scope.get("root_path", "")
    path: str = getattr(route, "path_format", None) or scope.get("path", "")
    params = scope.get("path_params", {})
    for name, value in params.items():
        if name in ("object_type", "to_object_type", "from_object_type", "record_type", "resource"):
            path = path.replace("{" + name + "}", str(value))
    return path if route else scope.get("path", "").removeprefix(root)


class VendorMiddleware:
    """Authentication, request counting and request-level faults for one vendor's mount."""

    def __init__(self, app: ASGIApp, vendor: Vendor, state: SandboxState) -> None:
        self.app = app
        self.vendor = vendor
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request: authenticate, throttle or fault it, count it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        vendor = self.vendor
        state = self.state
        status_holder = {"status": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        async def reply(response: Response) -> None:
            await response(scope, receive, counting_send)

        request = Request(scope, receive)
        denied = self._authenticate(request)
        faults = state.faults
        cfg = faults.config
        slot = False
        try:
            if denied is not None:
                await reply(denied)
                return
            if cfg.rate_limit and faults.applies(vendor):
                if vendor == "netsuite":
                    slot = faults.enter(vendor)
                    if slot:
                        await asyncio.sleep(faults.service_seconds(vendor))
                    if not slot:
                        await reply(
                            vendor_error(
                                vendor,
                                429,
                                "Concurrent request limit exceeded. Request blocked.",
                                headers={"Retry-After": faults.retry_after(1.0)},
                            )
                        )
                        return
                else:
                    is_search = scope["path"].endswith("/search")
                    wait = faults.throttle(vendor, is_search)
                    if wait is not None:
                        await reply(self._throttled(wait))
                        return
            if faults.draw(vendor, cfg.slow_rate, "slow"):
                await asyncio.sleep(cfg.slow_ms / 1000)
            if faults.draw(vendor, cfg.error_rate, "5xx"):
                status = faults.random_5xx()
                headers = {"Retry-After": "1"} if status == 503 else None
                await reply(
                    vendor_error(
                        vendor, status, "The server had an error (injected).", headers=headers
                    )
                )
                return
            if faults.draw(vendor, cfg.reset_rate, "reset"):
                await self.app(scope, receive, _cutting_send(counting_send))
                return
            await self.app(scope, receive, self._with_headers(counting_send))
        finally:
            if slot:
                faults.leave(vendor)
            state.stats.count(
                vendor, scope["method"], _endpoint_template(scope), status_holder["status"] or 599
            )

    def _with_headers(self, send: Send) -> Send:
        if self.vendor != "hubspot":
            return send
        faults = self.state.faults

        async def add_rate_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                allowed, remaining, window = faults.window_usage("hubspot")
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-hubspot-ratelimit-max", str(allowed).encode()),
                    (b"x-hubspot-ratelimit-remaining", str(remaining).encode()),
                    (
                        b"x-hubspot-ratelimit-interval-milliseconds",
                        str(int(window * 1000)).encode(),
                    ),
                ]
                message["headers"] = headers
            await send(message)

        return add_rate_headers

    def _throttled(self, wait: float) -> Response:
        retry = self.state.faults.retry_after(wait)
        if self.vendor == "hubspot":
            return vendor_error(
                "hubspot",
                429,
                "You have reached your ten_secondly_rolling limit.",
                headers={"Retry-After": retry},
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
            )
        return vendor_error(self.vendor, 429, "Too Many Requests", headers={"Retry-After": retry})

    def _authenticate(self, request: Request) -> Response | None:
        creds = self.state.credentials[self.vendor]
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        if self.vendor == "harvest":
            token = token or request.query_params.get("access_token")
            account = request.headers.get("harvest-account-id") or request.query_params.get(
                "account_id"
            )
            if token != creds["access_token"]:
                return vendor_error(
                    "harvest",
                    401,
                    "The access token provided is expired, revoked, malformed or invalid "
                    "for other reasons.",
                )
            if account != creds["account_id"]:
                return vendor_error(
                    "harvest",
                    403,
                    "Your account is not authorized to access this resource "
                    "(check the Harvest-Account-Id header).",
                )
            if not request.headers.get("user-agent"):
                return vendor_error("harvest", 400, "Missing User-Agent header.")
            return None
        if token != creds["access_token"]:
            if self.vendor == "hubspot":
                return vendor_error(
                    "hubspot",
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                )
            return vendor_error(
                "netsuite",
                401,
                "Invalid login attempt. For more details, see the Login Audit Trail in the "
                "NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.",
            )
        return None


def _cutting_send(send: Send) -> Send:
    """Forward the response head and half the body, then drop the connection."""

    async def cut(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        raise SandboxConnectionReset("connection dropped mid-response (injected)")

    return cut


def _is_local(request: Request) -> bool:
    """Whether a request comes from this machine (the control endpoints serve only those)."""
    host = request.client.host if request.client else ""
    return host == "::1" or host.startswith("127.") or host == "localhost"


def _control_routes(state: SandboxState) -> list[BaseRoute]:
    async def stats(request: Request) -> Response:
        if not _is_local(request):
            return json_response({"error": "the sandbox control endpoints serve loopback only"},
                                 403)
        if request.method == "DELETE":
            state.stats.reset()
            state.faults.injected.clear()
            return Response(status_code=204)
        return json_response(state.stats.as_json(state.faults))

    async def faults(request: Request) -> Response:
        if not _is_local(request):
            return json_response({"error": "the sandbox control endpoints serve loopback only"},
                                 403)
        if request.method == "PUT":
            try:
                body = orjson.loads(await request.body() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                state.faults.update(body)
            except (ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response(asdict(state.faults.config))

    async def health(_: Request) -> Response:
        return json_response(
            {"status": "ok", "firm": {k: state.firm.get(k) for k in ("size", "seed", "as_of")}}
        )

    return [
        Route("/_sandbox/stats", stats, methods=["GET", "DELETE"]),
        Route("/_sandbox/faults", faults, methods=["GET", "PUT"]),
        Route("/_sandbox/health", health, methods=["GET"]),
    ]


def build_app(store_dir: Path, faults: FaultConfig | None = None) -> Starlette:
    """The ASGI app over a generated store.

    Args:
        store_dir: A directory written by ``pslake sandbox generate``.
        faults: Fault modes to start with (all off when omitted).
    """
    from sandbox.server import harvest, hubspot, netsuite

    upgrade_schema(store_dir)  # a store generated by an older sandbox gains the newer tables
    state = SandboxState(store_dir, faults)
    modules = {"hubspot": hubspot, "harvest": harvest, "netsuite": netsuite}
    routes: list[BaseRoute] = list(_control_routes(state))
    for vendor, module in modules.items():
        sub = Starlette(routes=module.routes(state))
        routes.append(Mount(f"/{vendor}", app=VendorMiddleware(sub, vendor, state)))  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        yield
        state.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = state
    return app


def endpoints(store_dir: Path, host: str, port: int) -> dict[str, dict[str, str]]:
    """What a client needs per vendor: base URL, token and (Harvest, NetSuite) account id."""
    creds = firm_info.load(store_dir)["credentials"]
    root = f"http://{host}:{port}"
    out: dict[str, dict[str, str]] = {}
    for vendor in VENDORS:
        entry = {"base_url": f"{root}/{vendor}", "access_token": creds[vendor]["access_token"]}
        if "account_id" in creds[vendor]:
            entry["account_id"] = creds[vendor]["account_id"]
        out[vendor] = entry
    out["_sandbox"] = {"base_url": f"{root}/_sandbox"}
    return out


def write_endpoints(store_dir: Path, host: str, port: int) -> dict[str, dict[str, str]]:
    """Write ``endpoints.json`` (owner-readable only: it holds the sandbox tokens)."""
    data = endpoints(store_dir, host, port)
    path = store_dir / ENDPOINTS_FILE
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    path.chmod(0o600)
    return data


class _QuietResetFilter(logging.Filter):
    """Keep injected connection resets out of the error log (they are the point)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SandboxConnectionReset)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _server(app: Starlette, host: str, port: int, access_log: bool) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_QuietResetFilter())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level="warning",
        timeout_keep_alive=30,
        lifespan="on",
    )
    return uvicorn.Server(config)


def serve(
    store_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    faults: FaultConfig | None = None,
    on_ready: Callable[[dict[str, dict[str, str]]], None] | None = None,
    access_log: bool = False,
) -> None:
    """Serve the sandbox in the foreground until interrupted.

    Args:
        store_dir: The generated store.
        host: Interface to listen on (loopback by default).
        port: Port; 0 picks a free one.
        faults: Fault modes to start with.
        on_ready: Called with the endpoints once the socket listens and endpoints.json is written.
        access_log: Log every request.
    """
    app = build_app(store_dir, faults)
    sock = _bind(host, port)
    server = _server(app, host, sock.getsockname()[1], access_log)
    started = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        # endpoints.json appears only once uvicorn serves and handles Ctrl-C: a client (or a
        # Ctrl-C) acting on the file then never meets a server still starting up (a SIGINT
        # during uvicorn's startup could leave the process hanging)
        await started(sockets=sockets)
        data = write_endpoints(store_dir, host, sock.getsockname()[1])
        if on_ready:
            on_ready(data)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])


class SandboxThread:
    """The sandbox on a free loopback port in a background thread (tests, benchmarks).

    Use as a context manager; ``endpoints`` and ``root`` tell where it listens.
    """

    def __init__(
        self,
        store_dir: Path,
        faults: FaultConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = build_app(store_dir, faults)
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self.root = f"http://{host}:{self.port}"
        self.endpoints = write_endpoints(store_dir, host, self.port)
        self._server = _server(self.app, host, self.port, access_log=False)
        self._thread = threading.Thread(target=self._run, name="pslake-sandbox", daemon=True)

    @property
    def state(self) -> SandboxState:
        """The live server state (stats, faults, store)."""
        state: SandboxState = self.app.state.sandbox
        return state

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> SandboxThread:
        """Start serving and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._sock.close()

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(store_dir: Path, faults: FaultConfig | None = None) -> Iterator[SandboxThread]:
    """Run the sandbox in a thread for the duration of a ``with`` block."""
    with SandboxThread(store_dir, faults) as server:
        yield server
