"""Request ids and the writers of request lines, shared by every request layer of ctxfy.

:func:`log_mcp_request` writes the ``mcp.request`` line of an MCP request and
:func:`log_http_request` the ``http.request`` line of an HTTP request; both lines carry the
logger name ``ctxfy.adapters.request_log`` whichever layer writes them.
:func:`new_request_id` makes the id a request gets when the client sent no valid
``X-Request-ID`` (:data:`REQUEST_ID_HEADER`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from loguru import logger

from ctxfy.core.telemetry import bounded_name

if TYPE_CHECKING:
    from loguru import Record

    from ctxfy.adapters.request_context import RequestContext

__all__ = [
    "REQUEST_ID_HEADER",
    "log_http_request",
    "log_mcp_request",
    "new_request_id",
]

REQUEST_ID_HEADER = "X-Request-ID"

# The logger name of every request line (its JSON ``logger`` field): the one documented,
# wherever the writer lives, so that sinks filtering on it keep working.
_REQUEST_LOGGER = "ctxfy.adapters.request_log"


def _name_request_line(record: Record) -> None:
    record["name"] = _REQUEST_LOGGER


_request_logger = logger.patch(_name_request_line)


def new_request_id() -> str:
    """Return a fresh request id: a random (version 4) UUID as 32 hex digits."""
    return uuid.uuid4().hex


def log_mcp_request(
    record: RequestContext,
    *,
    method: str,
    status: str,
    error_type: str | None,
    duration_s: float,
    arguments: dict[str, object] | None = None,
) -> None:
    """Write one ``mcp.request`` line and mark the request as logged.

    Args:
        record: The request's context; its id, transport, key id, model and target go
            into the line.
        method: The JSON-RPC method.
        status: ``ok``, the JSON-RPC error code, ``tool_error``, ``cancelled`` or
            ``499`` (the client left before its answer).
        error_type: The error's name, or ``None`` for a success.
        duration_s: How long the request took.
        arguments: The prompt or tool arguments to log, if any.
    """
    # Callers store it bounded already; bounding again changes nothing.
    target = None if record.target is None else bounded_name(record.target)
    fields: dict[str, Any] = {
        # Explicit, not from the context: the HTTP request may be over already (the
        # client went away while the handler ran in the session's task).
        "request_id": record.request_id,
        "transport": record.transport,
        "key_id": record.key_id,
        "llm_model": record.llm_model,
        "target": target,
        "event": "mcp.request",
        "method": method,
        "status": status,
        "error_type": error_type,
        "latency_ms": round(duration_s * 1000, 3),
    }
    if arguments is not None:
        fields["arguments"] = arguments
    name = f"{method} {target}" if target else method
    _request_logger.bind(**fields).log(
        "INFO" if status == "ok" else "WARNING", f"{name} -> {status}"
    )
    record.logged = True


def log_http_request(
    *,
    method: str,
    path: str,
    status: int,
    error_type: str | None,
    duration_s: float,
    level: str,
    **context: object,
) -> None:
    """Write one ``http.request`` line, the shape every HTTP layer of ctxfy shares.

    Args:
        method: The HTTP method.
        path: The request path.
        status: The response status.
        error_type: The error's name, or ``None`` for a success.
        duration_s: How long the request took.
        level: The loguru level name.
        **context: Fields to bind that no request context provides (``request_id`` and
            ``transport`` for a layer that runs outside
            :class:`~ctxfy.adapters.http_request_log.RequestContextMiddleware`).
    """
    _request_logger.bind(
        **context,
        event="http.request",
        method=f"{method} {path}",
        status="ok" if status < 400 and error_type is None else str(status),
        error_type=error_type,
        latency_ms=round(duration_s * 1000, 3),
        http_status=status,
    ).log(level, f"{method} {path} -> {status}")
