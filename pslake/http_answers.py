"""What an HTTP answer really was, for every vendor call pslake makes (ingestion, reverse sync)."""

from __future__ import annotations

from requests import Response
from requests.exceptions import ChunkedEncodingError


def cut_in_head(method: str | None, response: Response) -> bool:
    """Whether an empty answer is one cut off in its headers, not an empty body.

    A connection that closes inside the headers leaves ``http.client`` with the status line and
    the headers read so far: no ``Content-Length`` and no chunking, so the body is "whatever
    came before the close", which is nothing, and the call would pass as a whole answer with an
    empty body. A vendor's real empty answer says so (``Content-Length: 0``, 204, 304, HEAD).
    """
    if response.content or method == "HEAD" or response.status_code in (204, 304):
        return False
    chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
    return "Content-Length" not in response.headers and not chunked


def whole(method: str | None, response: Response) -> Response:
    """``response``, read whole.

    Raises:
        ChunkedEncodingError: It was cut off in its headers (:func:`cut_in_head`): a transport
            error, retried (or, for a write, read back) like a reset.
    """
    if cut_in_head(method, response):
        raise ChunkedEncodingError("the answer ended in its headers, before its body",
                                   response=response)
    return response
