"""A TCP relay between pslake and the sandbox that breaks HTTP at the byte level (tests only).

No fault proxy can be installed here (toxiproxy and the like), so the reliability battery
brings its own. :class:`Relay` listens on a free loopback port and forwards each connection to
the sandbox, one thread per connection. It reads HTTP/1.1 both ways (a request's head and body,
a response's head and its ``Content-Length`` or chunked body), so for each response it can:

- send the first ``k`` bytes and close the connection (``truncate``, toxiproxy's
  ``limit_data``), or close it with a TCP reset (``reset``);
- send the first ``k`` bytes and then nothing, holding the connection open until the client
  gives up (``stall``: a read stall beyond the client's timeout);
- answer a request itself without asking the sandbox (:class:`Rule`: 503 forever, a 401);
- rewrite a response body (``rewrite``: records the sandbox cannot serve) or move its ``Date``
  header (``date_skew_s``: the vendor's clock ahead of or behind ours);
- run a test's hook before a request goes on (``on_request``: change the vendor's data while
  a client pages through it).

Every exchange is logged (:class:`Exchange`: the request, when it came, the status and
``Retry-After`` of the answer, when it left, the fault), so a test can check retries against
``Retry-After`` and count the attempts per request.

Faults are drawn per response with :class:`Faults`'s rate from a generator seeded by the seed,
the request (method, target, body digest) and how many times the relay has seen that request:
the same seed injects the same faults into the same requests whatever order connections arrive
in, and a retry of a faulted request gets its own draw.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

Kind = Literal["truncate", "reset", "stall"]
KINDS: tuple[Kind, ...] = ("truncate", "reset", "stall")
_HEAD_LIMIT = 256 * 1024
_CRLF = b"\r\n"


class _Closed(Exception):
    """The peer closed the connection (or it broke) before a whole message arrived."""

    def __init__(self, partial: bytes = b"") -> None:
        super().__init__("connection closed")
        self.partial = partial


class _Reader:
    """Buffered reads from a socket that keep every byte read (the message's raw form)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.taken = bytearray()  # bytes of the current message handed out so far

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(256 * 1024)
        except OSError:
            chunk = b""
        if not chunk:
            raise _Closed(bytes(self.taken) + bytes(self.buffer))
        self.buffer += chunk

    def _take(self, n: int) -> bytes:
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        self.taken += out
        return out

    def until(self, marker: bytes, limit: int = _HEAD_LIMIT) -> bytes:
        """Bytes up to and including ``marker``."""
        while True:
            at = self.buffer.find(marker)
            if at >= 0:
                return self._take(at + len(marker))
            if len(self.buffer) > limit:
                raise _Closed(bytes(self.taken) + bytes(self.buffer))
            self._fill()

    def exactly(self, n: int) -> bytes:
        """``n`` bytes."""
        while len(self.buffer) < n:
            self._fill()
        return self._take(n)

    def rest(self) -> bytes:
        """Everything until the peer closes."""
        with contextlib.suppress(_Closed):
            while True:
                self._fill()
        return self._take(len(self.buffer))

    def message(self) -> bytes:
        """The raw bytes of the message read since the last call, and start a new one."""
        out = bytes(self.taken)
        self.taken.clear()
        return out


def _headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    pairs = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        pairs.append((name.strip(), value.strip()))
    return lines[0], pairs


def _get(pairs: list[tuple[str, str]], name: str) -> str | None:
    for key, value in pairs:
        if key.lower() == name:
            return value
    return None


def _body(reader: _Reader, pairs: list[tuple[str, str]]) -> tuple[bytes, bool]:
    """A message body: ``(decoded body, whether the peer kept the connection to the end)``."""
    if "chunked" in (_get(pairs, "transfer-encoding") or "").lower():
        parts = []
        while True:
            size = int(reader.until(_CRLF).split(b";")[0].strip(), 16)
            if size == 0:
                while reader.until(_CRLF) != _CRLF:  # trailers
                    pass
                return b"".join(parts), True
            parts.append(reader.exactly(size))
            reader.exactly(2)
    length = _get(pairs, "content-length")
    if length is not None:
        return reader.exactly(int(length)), True
    return b"", True


@dataclass
class Request:
    """One request as the client sent it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]

    @property
    def digest(self) -> str:
        """A short digest of the body (a retry sends the same body)."""
        return hashlib.blake2b(self.body, digest_size=8).hexdigest()

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a request across its retries: method, target, body digest."""
        return self.method, self.target, self.digest


@dataclass
class Response:
    """One response: status, headers, decoded body, and the bytes as they came."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes
    complete: bool = True
    changed: bool = False

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive name)."""
        return _get(self.headers, name.lower())

    def set_header(self, name: str, value: str) -> None:
        """Replace (or add) a header."""
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))
        self.changed = True

    def encode(self) -> bytes:
        """The bytes to send: as received, or rebuilt with a ``Content-Length`` when changed."""
        if not self.changed:
            return self.raw
        kept = [(k, v) for k, v in self.headers
                if k.lower() not in ("content-length", "transfer-encoding")]
        head = f"HTTP/1.1 {self.status} {self.reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in [*kept, ("Content-Length", str(len(self.body)))])
        return head.encode("latin-1") + _CRLF + self.body


def _read_request(reader: _Reader) -> Request | None:
    try:
        head = reader.until(_CRLF + _CRLF)
    except _Closed:
        return None  # the client closed an idle connection
    start, pairs = _headers(head)
    method, target, _version = start.split(" ", 2)
    body, _ = _body(reader, pairs)
    return Request(method, target, pairs, body, reader.message())


def _read_response(reader: _Reader, method: str) -> Response:
    """A response; ``complete`` is false when the server cut it (``raw`` holds what came)."""
    try:
        head = reader.until(_CRLF + _CRLF)
        start, pairs = _headers(head)
        status = int(start.split(" ", 2)[1])
        reason = start.split(" ", 2)[2] if start.count(" ") >= 2 else ""
        if method == "HEAD" or status < 200 or status in (204, 304):
            body = b""
        elif (_get(pairs, "content-length") is None
              and "chunked" not in (_get(pairs, "transfer-encoding") or "").lower()):
            body = reader.rest()  # delimited by the server closing the connection
        else:
            body, _ = _body(reader, pairs)
    except _Closed as cut:
        reader.message()
        if not cut.partial:
            raise
        status_line = cut.partial.split(_CRLF, 1)[0].decode("latin-1")
        parts = status_line.split(" ")
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return Response(status, "", [], b"", cut.partial, complete=False)
    return Response(status, reason, pairs, body, reader.message())


@dataclass(frozen=True)
class Rule:
    """Answer requests whose path starts with ``path_prefix`` from the relay itself."""

    path_prefix: str
    status: int
    body: bytes = b'{"message": "answered by the test relay"}'
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    method: str | None = None

    def matches(self, request: Request) -> bool:
        """Whether the rule answers this request."""
        return request.path.startswith(self.path_prefix) and (
            self.method is None or request.method == self.method)

    def response(self) -> Response:
        """The answer."""
        reasons = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests",
                   500: "Internal Server Error", 503: "Service Unavailable"}
        answer = Response(self.status, reasons.get(self.status, "Error"), list(self.headers),
                          self.body, b"", changed=True)
        answer.set_header("Date", email.utils.formatdate(usegmt=True))
        return answer


@dataclass(frozen=True)
class Faults:
    """Which byte-level faults the relay injects, how often, and where.

    Attributes:
        rate: The probability that a response is faulted.
        kinds: The kinds drawn from (uniformly).
        seed: The seed of the draws.
        only: A path prefix the faults are limited to (``/harvest``); ``None``: every path.
        hold_s: How long a stall holds a connection at most (the client should give up first).
        first: Kinds given, in order, to the first responses the faults apply to (then the
            draws go on): each kind is met at least once, whatever the seed.
    """

    rate: float = 0.0
    kinds: tuple[Kind, ...] = KINDS
    seed: int = 0
    only: str | None = None
    hold_s: float = 60.0
    first: tuple[Kind, ...] = ()


@dataclass
class Exchange:
    """One request through the relay and what became of it."""

    connection: int
    method: str
    target: str
    digest: str
    requested_at: float  # wall clock when the request had arrived whole
    status: int | None = None
    retry_after: str | None = None  # of an answer the client got whole
    answered_at: float | None = None  # wall clock when the answer (or its first part) left
    fault: str | None = None  # truncate, reset, stall, answered, cut by server, client gone

    @property
    def key(self) -> tuple[str, str, str]:
        """The request's identity across its retries."""
        return self.method, self.target, self.digest

    def retry_not_before(self) -> float | None:
        """The earliest wall-clock time a retry may come, from ``Retry-After``."""
        if self.retry_after is None or self.answered_at is None:
            return None
        value = self.retry_after.strip()
        if value.isdigit():
            return self.answered_at + int(value)
        try:
            return email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None


Rewrite = Callable[[Request, Response], bytes | None]


class Relay:
    """The relay: ``with Relay(port) as relay: ...``; ``relay.port`` is where it listens.

    Args:
        target_port: The sandbox's port.
        faults: Byte-level faults to inject.
        rules: Requests the relay answers itself (the first matching rule wins).
        rewrite: Called with each whole response from the sandbox; a ``bytes`` result replaces
            the body (``Content-Length`` follows).
        date_skew_s: Seconds added to every response's ``Date`` header.
        on_request: Called with each request before it goes on to the sandbox.
        target_host: The sandbox's host.
    """

    def __init__(self, target_port: int, faults: Faults | None = None,
                 rules: tuple[Rule, ...] | list[Rule] = (), rewrite: Rewrite | None = None,
                 date_skew_s: float = 0.0, on_request: Callable[[Request], None] | None = None,
                 target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.faults = faults or Faults()
        self.rules = list(rules)
        self.rewrite = rewrite
        self.date_skew_s = date_skew_s
        self.on_request = on_request
        self.exchanges: list[Exchange] = []
        self.injected: Counter[str] = Counter()
        self._seen: Counter[tuple[str, str, str]] = Counter()
        self._forced = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="relay-accept", daemon=True)
        self._connections = 0

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> Relay:
        """Start accepting connections."""
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._acceptor.join(timeout=5)

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def point(self, endpoints_file: Path, vendors: tuple[str, ...] | None = None) -> None:
        """Point the sandbox's ``endpoints.json`` (or some of its vendors) at the relay."""
        data = json.loads(endpoints_file.read_text())
        for vendor, entry in data.items():
            if vendors is not None and vendor not in vendors:
                continue
            scheme, _, rest = entry["base_url"].partition("://")
            path = rest.partition("/")[2]
            entry["base_url"] = f"{scheme}://127.0.0.1:{self.port}/{path}".rstrip("/")
        endpoints_file.write_text(json.dumps(data))

    @contextlib.contextmanager
    def only_rules(self, *rules: Rule) -> Iterator[None]:
        """Answer with ``rules`` for the duration of a ``with`` block."""
        before = self.rules
        self.rules = list(rules)
        try:
            yield
        finally:
            self.rules = before

    # ---- what happened ----------------------------------------------------------------------

    def attempts(self) -> Counter[tuple[str, str, str]]:
        """How many times each request (method, target, body digest) came."""
        return Counter(e.key for e in self.exchanges)

    def early_retries(self) -> list[float]:
        """For each answer with ``Retry-After``, how many seconds early its retry came (0: not)."""
        by_key: dict[tuple[str, str, str], list[Exchange]] = {}
        for e in sorted(self.exchanges, key=lambda e: e.requested_at):
            by_key.setdefault(e.key, []).append(e)
        early = []
        for tries in by_key.values():
            for answer, retry in pairwise(tries):
                not_before = answer.retry_not_before()
                # a retry that came before the answer left was not waiting on it: the client
                # had given up on that try (its read timeout) before the answer was sent
                if not_before is not None and answer.answered_at is not None \
                        and answer.answered_at <= retry.requested_at:
                    early.append(max(0.0, not_before - retry.requested_at))
        return early

    # ---- the work ---------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections += 1
                number = self._connections
                self._sockets.add(client)
            threading.Thread(target=self._serve, args=(client, number),
                             name=f"relay-{number}", daemon=True).start()

    def _draw(self, request: Request) -> tuple[Kind, float] | None:
        faults = self.faults
        applies = faults.rate > 0 and (not faults.only or request.path.startswith(faults.only))
        with self._lock:
            seen = self._seen[request.key]
            self._seen[request.key] += 1
            forced = None
            if applies and self._forced < len(faults.first):
                forced = faults.first[self._forced]
                self._forced += 1
        if not applies:
            return None
        rng = random.Random("|".join((str(faults.seed), *request.key, str(seen))))
        if forced is not None:
            return forced, rng.random()
        if rng.random() >= faults.rate:
            return None
        return rng.choice(faults.kinds), rng.random()

    def _connect(self) -> tuple[socket.socket, _Reader]:
        upstream = socket.create_connection(self.target, timeout=300)
        with self._lock:
            self._sockets.add(upstream)
        return upstream, _Reader(upstream)

    def _forward(self, request: Request, upstream: tuple[socket.socket, _Reader] | None
                 ) -> tuple[Response, tuple[socket.socket, _Reader]]:
        """Send the request on and read the answer (again on a new connection if a kept-alive
        one turns out closed by the sandbox)."""
        if upstream is not None and not _alive(upstream[0]):
            self._close(upstream[0])
            upstream = None
        reused = upstream is not None
        if upstream is None:
            upstream = self._connect()
        try:
            upstream[0].sendall(request.raw)
            return _read_response(upstream[1], request.method), upstream
        except (_Closed, OSError):
            if not reused:
                raise
        self._close(upstream[0])
        upstream = self._connect()
        upstream[0].sendall(request.raw)
        return _read_response(upstream[1], request.method), upstream

    def _skew(self, response: Response) -> None:
        stamp = response.header("date")
        if not self.date_skew_s or stamp is None:
            return
        moved = email.utils.parsedate_to_datetime(stamp).timestamp() + self.date_skew_s
        response.set_header("Date", email.utils.formatdate(moved, usegmt=True))

    def _close(self, sock: socket.socket, reset: bool = False) -> None:
        if reset:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()
        with self._lock:
            self._sockets.discard(sock)

    def _serve(self, client: socket.socket, number: int) -> None:
        reader = _Reader(client)
        upstream: tuple[socket.socket, _Reader] | None = None
        reset = False
        try:
            while not self._stopping.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                exchange = Exchange(number, request.method, request.target, request.digest,
                                    time.time())
                rule = next((r for r in self.rules if r.matches(request)), None)
                if rule is not None:
                    response, fault = rule.response(), None
                    exchange.fault = "answered"
                else:
                    fault = self._draw(request)
                    if self.on_request is not None:
                        self.on_request(request)
                    response, upstream = self._forward(request, upstream)
                    if response.complete and self.rewrite is not None:
                        body = self.rewrite(request, response)
                        if body is not None:
                            response.body = body
                            response.changed = True
                    if response.complete:
                        self._skew(response)
                raw = response.encode()
                exchange.status = response.status or None
                exchange.retry_after = response.header("retry-after")
                exchange.answered_at = time.time()
                with self._lock:
                    self.exchanges.append(exchange)
                if not response.complete:  # the sandbox cut it (its reset fault): pass it on
                    exchange.fault = "cut by server"
                    exchange.retry_after = None
                    client.sendall(raw)
                    reset = True
                    return
                if fault is None and not _alive(client):  # gave up waiting (its timeout)
                    exchange.fault = "client gone"
                    exchange.retry_after = None  # nobody read this answer's Retry-After
                    return
                if fault is None:
                    client.sendall(raw)
                    if (response.header("connection") or "").lower() == "close":
                        return
                    continue
                kind, share = fault
                cut = min(int(len(raw) * share), len(raw) - 1)
                exchange.fault = kind
                exchange.retry_after = None  # the client gets no whole answer to wait on
                with self._lock:
                    self.injected[kind] += 1
                client.sendall(raw[:cut])
                if kind == "reset":
                    reset = True
                elif kind == "stall":
                    client.settimeout(self.faults.hold_s)
                    with contextlib.suppress(OSError):
                        while client.recv(65536):
                            pass
                return
        except (_Closed, OSError, ValueError, IndexError):
            return
        finally:
            self._close(client, reset=reset)
            if upstream is not None:
                self._close(upstream[0])


def _alive(sock: socket.socket) -> bool:
    """Whether a connection is still open (no EOF waiting on it): a kept-alive upstream one, or
    a client still waiting for its answer."""
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return bool(data)
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)
