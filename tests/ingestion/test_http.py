"""A vendor answer cut off inside its headers is retried, not taken as an empty body.

``http.client`` ends the headers at the close and, with no ``Content-Length`` and no chunking,
reads the body up to the close: nothing. The call would pass as a whole ``200`` with an empty
body and fail later as an empty JSON document (found by the HTTP storm's soak: NetSuite's
``suiteql?limit=1`` answer cut at ``Conte``). A real HTTP server on a socket answers here, cut
where the test says.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingestion.http import CallStats, HttpSettings, vendor_session
from tests.rawhttp import Server, answer, cut_in_head

FULL = answer(b'{"items": 1}')
CUT_IN_HEAD = cut_in_head(FULL)  # "...\r\nConte", then the close
EMPTY = answer(b"")
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    s = Server(request.param)
    yield s
    s.close()


def _get(server: Server) -> tuple[bytes, CallStats]:
    stats = CallStats()
    session = vendor_session(None, stats, HttpSettings(timeout_s=5, max_attempts=3,
                                                      backoff_factor=0.01))
    return session.get(server.url).content, stats


@pytest.mark.parametrize("server", [[CUT_IN_HEAD, FULL]], indirect=True)
def test_an_answer_cut_in_its_headers_is_retried(server: Server) -> None:
    body, stats = _get(server)
    assert body == b'{"items": 1}'
    assert server.requests == 2
    assert dict(stats.retries) == {"ChunkedEncodingError": 1}


@pytest.mark.parametrize("server", [[EMPTY], [NO_CONTENT]], indirect=True,
                         ids=["content-length-0", "204"])
def test_an_empty_answer_that_says_so_is_taken_as_it_is(server: Server) -> None:
    body, stats = _get(server)
    assert body == b""
    assert server.requests == 1 and not stats.retries
