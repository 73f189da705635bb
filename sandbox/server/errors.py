"""Responses in each vendor's own shapes: JSON bodies and error envelopes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from sandbox.store import Vendor


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (the emulator's hot path)."""
    return Response(
        orjson.dumps(data), status_code=status, media_type="application/json", headers=headers
    )


def hubspot_error(
    status: int,
    message: str,
    category: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    context: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """HubSpot's ``Error`` object: status, message, correlationId, category (+ errors, context)."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    if errors:
        body["errors"] = errors
    if context:
        body["context"] = context
    if extra:
        body.update(extra)
    return json_response(body, status, headers)


def harvest_error(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> Response:
    """Harvest's small error body (``{"message": ...}``; 401 uses the OAuth error form)."""
    if status == 401:
        body: dict[str, Any] = {
            "error": "invalid_token",
            "error_description": message,
        }
    else:
        body = {"message": message}
    return json_response(body, status, headers)


_NETSUITE_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


_NETSUITE_TYPES = {
    400: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
    401: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2",
    403: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.4",
    404: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5",
    405: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.6",
    429: "https://www.rfc-editor.org/rfc/rfc6585.html#section-4",
    500: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.1",
    502: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.3",
    503: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.4",
    504: "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.5",
}


def netsuite_error(
    status: int,
    detail: str,
    code: str,
    *,
    headers: Mapping[str, str] | None = None,
    **details: str,
) -> Response:
    """NetSuite's RFC 7807-style error: type, title, status, o:errorDetails[]."""
    entry: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    for key, value in details.items():
        entry[f"o:{key}"] = value
    body = {
        "type": _NETSUITE_TYPES.get(status, "https://www.rfc-editor.org/rfc/rfc9110.html"),
        "title": _NETSUITE_TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [entry],
    }
    return json_response(body, status, headers)


def vendor_error(vendor: Vendor, status: int, message: str, **kw: Any) -> Response:
    """A generic error for a vendor in that vendor's shape (auth, throttling, injected 5xx)."""
    headers = kw.pop("headers", None)
    if vendor == "hubspot":
        category = {
            401: "INVALID_AUTHENTICATION",
            404: "OBJECT_NOT_FOUND",
            429: "RATE_LIMITS",
        }.get(status, "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR")
        return hubspot_error(status, message, category, headers=headers, extra=kw or None)
    if vendor == "harvest":
        return harvest_error(status, message, headers=headers)
    code = {
        401: "INVALID_LOGIN",
        404: "NONEXISTENT_ID",
        429: "CONCURRENCY_LIMIT_EXCEEDED",
    }.get(status, "INVALID_PARAMETER" if status < 500 else "UNEXPECTED_ERROR")
    return netsuite_error(status, message, code, headers=headers)
