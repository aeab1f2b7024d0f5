"""The context of the request being served, which every log line picks up.

One mutable :class:`RequestContext` per request, made current with :func:`bind_request`
by the request middlewares; adapters add to it (:func:`note_key_id`,
:func:`note_llm_model`) and the log renderer reads it. All names are re-exported from
``ctxfy.adapters.logging``.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

import attrs
from mcp.server.lowlevel.server import request_ctx

if TYPE_CHECKING:
    from opentelemetry.context import Context

__all__ = [
    "REQUEST_STATE_KEY",
    "RequestContext",
    "bind_request",
    "current_request",
    "current_request_id",
    "note_key_id",
    "note_llm_model",
    "reset_request",
]


@attrs.define(eq=False)
class RequestContext:
    """What the request being served has established so far; read by every log line.

    Mutable on purpose: one object is shared by the HTTP middleware, the MCP
    middleware and any task they spawn, so a value noted deep inside (the LLM model,
    the key id) reaches the request line written at the end.

    Attributes:
        request_id: The adopted or generated request id.
        transport: ``http``, ``streamable-http``, ``stdio`` or ``memory``.
        key_id: The API key's public id once authenticated (never the secret).
        llm_model: The model that answered the last LLM call, if any.
        trace_id: The 32-hex-digit trace id of the request's span, if any.
        span_id: The 16-hex-digit id of the request's span, if any.
        target: The prompt, tool or resource addressed, once known.
        mcp_endpoint: ``True`` for HTTP requests to the MCP endpoint.
        logged: ``True`` once the request line is written.
        client_gone: ``True`` when the client left an MCP event stream before its
            answer; the ``mcp.request`` line then reports status ``499``.
        finished: ``True`` once the request is over; tasks that inherited the context
            (an MCP session's task inherits its first request's) then stop using it.
        otel_context: The OpenTelemetry context holding the request's span.
    """

    request_id: str
    transport: str | None = None
    key_id: str | None = None
    llm_model: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    target: str | None = None
    mcp_endpoint: bool = False
    logged: bool = False
    client_gone: bool = False
    finished: bool = False
    otel_context: Context | None = None


REQUEST_STATE_KEY = "ctxfy.request"
"""Where the HTTP request middleware keeps the :class:`RequestContext` in ``scope["state"]``."""

_CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "ctxfy_request", default=None
)


def current_request() -> RequestContext | None:
    """Return the context of the request being served, or ``None`` outside requests.

    The MCP request being handled, if any, is asked first (its HTTP request's
    ``scope["state"]``): a stateful MCP session runs every handler in the session's task,
    which inherited the context of the request that opened the session, so the bound
    context may be that earlier request's. Otherwise the context bound with
    :func:`bind_request` is the one.
    """
    try:
        request = request_ctx.get().request
    except LookupError:
        request = None
    state = getattr(request, "scope", {}).get("state") if request is not None else None
    found = state.get(REQUEST_STATE_KEY) if isinstance(state, dict) else None
    if isinstance(found, RequestContext) and not found.finished:
        return found
    context = _CURRENT.get()
    return context if context is not None and not context.finished else None


def current_request_id() -> str | None:
    """Return the id of the request being served, or ``None`` outside requests.

    Example:
        ```python
        audit = AuditLog(request_id=current_request_id)
        ```
    """
    context = current_request()
    return None if context is None else context.request_id


def bind_request(context: RequestContext) -> contextvars.Token[RequestContext | None]:
    """Make ``context`` current; pass the token to :func:`reset_request` afterwards."""
    return _CURRENT.set(context)


def reset_request(token: contextvars.Token[RequestContext | None]) -> None:
    """Undo the matching :func:`bind_request`."""
    _CURRENT.reset(token)


def note_llm_model(model: str) -> None:
    """Record the model that answered an LLM call, for the request's ``llm_model`` field.

    The LLM adapter calls this after each call; outside a request it does nothing.

    Args:
        model: The model name the sampling handler or provider reported.

    Example:
        ```python
        step = await ctx.sample_step("Draft a context stack")
        note_llm_model(step.response.model)
        ```
    """
    context = current_request()
    if context is not None:
        context.llm_model = model


def note_key_id(key_id: str) -> None:
    """Record the authenticated API key's public id for the request's ``key_id`` field.

    Args:
        key_id: The key's id; never the secret.
    """
    context = current_request()
    if context is not None:
        context.key_id = key_id
