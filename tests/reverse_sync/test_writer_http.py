"""The CRM writer takes an answer cut off in its headers for a transport error, not an empty body.

A real HTTP server on a socket (``tests/rawhttp.py``) gives the cut answer, then a whole one: a
read is tried again and returns the records; the empty "whole" answer never reaches the parser.
"""

from __future__ import annotations

import orjson

from reverse_sync.desired import OBJECTS_BY_NAME
from reverse_sync.writer import HubSpotWriter
from tests.rawhttp import Server, answer, cut_in_head

RESULT = answer(orjson.dumps({"status": "COMPLETE", "results": [
    {"id": "101", "properties": {"name": "Acme", "hs_object_id": "101"}}]}))


def test_a_read_cut_in_its_headers_is_tried_again() -> None:
    server = Server([cut_in_head(RESULT), RESULT])
    writer = HubSpotWriter(server.url.rsplit("/", 1)[0], "not-a-real-token", calls_per_window=100,
                           window_s=10, timeout_s=5, max_call_attempts=3)
    try:
        found = writer.read(OBJECTS_BY_NAME["companies"], ["101"], ["name"])
    finally:
        writer.close()
        server.close()
    assert {key: (r.crm_id, dict(r.values)) for key, r in found.items()} \
        == {"101": ("101", {"name": "Acme"})}
    assert server.requests == 2
    assert dict(writer.stats.waits) == {"ChunkedEncodingError": 1}
