"""A real HTTP server on a socket that answers with the bytes a test gives, cut where it says.

For the answers no emulator gives on purpose: a connection closed inside the headers, say
(``http.client`` then takes the headers so far and an empty body as a whole answer).
"""

from __future__ import annotations

import re
import socket
import threading


def answer(body: bytes, status: str = "200 OK") -> bytes:
    """A whole JSON answer with its length."""
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def cut_in_head(whole: bytes) -> bytes:
    """``whole`` cut five bytes into its ``Content-Length`` header (``...\r\nConte``)."""
    return whole[:whole.index(b"Content-Length") + 5]


def _length(received: bytes) -> int:
    """How long the request is in all: its head and its ``Content-Length`` (read whole, so the
    close that follows the answer is a clean one)."""
    head, _, _ = received.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return len(head) + 4 + (int(match.group(1)) if match else 0)


class Server:
    """Answers each connection's first request with the next of ``answers``, then closes it."""

    url: str

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.last = answers[-1]  # given again once the list is used up
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/query"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                received = b""
                while b"\r\n\r\n" not in received or len(received) < _length(received):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    received += chunk
                self.requests += 1
                conn.sendall(self.answers.pop(0) if self.answers else self.last)

    def close(self) -> None:
        self._listener.close()
