"""A tap in front of the sandbox's HubSpot API: it logs every call as the CRM receives it and
can fault the calls a test chooses.

The sandbox's own faults (``crm.faults(...)``) strike at random and before or around the
handler; the tap adds what a battery test needs to aim: a write the CRM applies and then
answers too late (a stall past the client's timeout) or never (the connection dropped), on the
calls the test names, or a call that reaches the CRM late, after its sender has died
("hold"). It also gives each call's arrival time, status and ``Retry-After``, so a
test can count calls per window and check that no call came before a ``Retry-After`` ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import Mount

from sandbox.server.app import SandboxConnectionReset, SandboxThread

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
SYNC_AGENT = "pslake-reverse-sync"


@dataclass
class Call:
    """One HubSpot call as the sandbox received it (monotonic seconds, this process)."""

    at: float
    method: str
    path: str
    agent: str
    correlation_id: str | None
    body: bytes = b""
    status: int = 0
    answered_at: float | None = None
    answered_wall: float | None = None  # time.time() at the answer, for an HTTP-date
    retry_after: str | None = None
    fault: str | None = None  # what the tap did to it: "hold", "stall" or "reset"
    reset: bool = False  # the connection was dropped mid-answer

    @property
    def is_write(self) -> bool:
        """A call that writes records (batch update / upsert / archive, single PATCH)."""
        return self.method == "PATCH" or self.path.endswith(
            ("/batch/update", "/batch/upsert", "/batch/archive"))

    @property
    def from_sync(self) -> bool:
        """Sent by pslake's reverse sync (its User-Agent)."""
        return self.agent == SYNC_AGENT

    def retry_deadline(self) -> float | None:
        """The monotonic time before which no call should follow, per ``Retry-After``."""
        if self.retry_after is None or self.answered_at is None or self.answered_wall is None:
            return None
        try:
            return self.answered_at + float(self.retry_after)
        except ValueError:
            pass
        moment = email.utils.parsedate_to_datetime(self.retry_after).timestamp()
        return self.answered_at + (moment - self.answered_wall)


# Decides, per call, what the tap does to it: None; "hold" (wait before the CRM handles it);
# "stall" (answer late, after the CRM handled it); "reset" (drop the answer half sent).
Chooser = Callable[[Call], str | None]


@dataclass
class Tap:
    """The ASGI wrapper; install with :func:`tapped`."""

    inner: Any
    choose: Chooser | None = None
    stall_s: float = 0.0
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        call = Call(at=time.monotonic(), method=scope["method"], path=scope["path"],
                    agent=headers.get("user-agent", ""),
                    correlation_id=headers.get("x-correlation-id"))
        self.calls.append(call)
        if scope["method"] in ("POST", "PATCH", "PUT"):
            receive = await self._buffered(receive, call)
            call.at = time.monotonic()  # as the sandbox's rate limit will count it
        action = self.choose(call) if self.choose is not None else None
        call.fault = action
        stall_s = self.stall_s
        if action == "hold":  # the call is slow to reach the CRM; it lands even if its
            await asyncio.sleep(stall_s)  # sender has gone (the body is already read)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
                for key, value in message.get("headers", []):
                    if key.decode().lower() == "retry-after":
                        call.retry_after = value.decode()
                if action == "stall":  # the CRM has written; the answer comes too late
                    await asyncio.sleep(stall_s)
                call.answered_at = time.monotonic()
                call.answered_wall = time.time()
                await send(message)
                return
            if action == "reset" and message["type"] == "http.response.body":
                body = message.get("body", b"")
                await send({"type": "http.response.body", "body": body[: len(body) // 2],
                            "more_body": True})
                raise SandboxConnectionReset("connection dropped after the write (tap)")
            await send(message)

        try:
            await self.inner(scope, receive, watch)
        except SandboxConnectionReset:
            call.reset = True  # by the tap, or by the sandbox's own reset fault
            raise

    @staticmethod
    async def _buffered(receive: Any, call: Call) -> Any:
        """Read the whole request body (the chooser may look at it) and hand it on."""
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        call.body = b"".join(chunks)
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": call.body, "more_body": False}
            return await receive()  # type: ignore[no-any-return]

        return replay

    # ---- what the calls show ----------------------------------------------------------------

    def sync_calls(self) -> list[Call]:
        """The reverse sync's calls, in arrival order."""
        return [c for c in self.calls if c.from_sync]

    def early_retries(self) -> list[float]:
        """Per sync call that came after a ``Retry-After``: seconds it came too early (> 0)."""
        early = []
        calls = self.sync_calls()
        for before, after in itertools.pairwise(calls):
            deadline = before.retry_deadline()
            if deadline is not None:
                early.append(deadline - after.at)
        return early


def max_in_window(times: list[float], window_s: float) -> int:
    """The most calls that fall in any window of ``window_s`` seconds."""
    ordered = sorted(times)
    most = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


@contextlib.contextmanager
def tapped(server: SandboxThread, choose: Chooser | None = None, stall_s: float = 0.0
           ) -> Iterator[Tap]:
    """Put a tap in front of the sandbox's ``/hubspot`` mount for a ``with`` block."""
    mount = next(r for r in server.app.routes if isinstance(r, Mount) and r.path == "/hubspot")
    tap = Tap(mount.app, choose, stall_s)
    mount.app = tap
    try:
        yield tap
    finally:
        mount.app = tap.inner
