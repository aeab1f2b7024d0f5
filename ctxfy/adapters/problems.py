"""RFC 9457 ``application/problem+json`` responses for REST errors."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["PROBLEM_JSON", "problem_response"]

PROBLEM_JSON = "application/problem+json"


def problem_response(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    title: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """Build a problem response; ``title`` defaults to the status phrase.

    Args:
        status: HTTP status code.
        detail: What went wrong, for the client (never a stack trace or a secret).
        headers: Extra headers such as ``WWW-Authenticate`` or ``Retry-After``.
        title: Short summary; the standard reason phrase when omitted.
        extensions: Extra members (RFC 9457 extensions) such as ``errors``, the list of
            validation errors; they cannot replace the standard members.

    Returns:
        A JSON response with media type ``application/problem+json``.

    Example:
        ```python
        return problem_response(404, "no key with id 'abc'")
        ```
    """
    body: dict[str, Any] = {**(extensions or {})}
    body |= {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )
