"""The FastMCP middleware writing one ``mcp.request`` line and metric sample per MCP request.

:class:`RequestLogMiddleware` times each MCP request, records
``mcp.server.operation.duration`` and writes the request's line. Under HTTP it continues
the request context :class:`~ctxfy.adapters.http_request_log.RequestContextMiddleware`
made; nested calls and REST routes calling into FastMCP get no line of their own.
:func:`in_tool_cache_refresh` tells the MCP SDK's own ``tools/list`` apart.

Metric labels never carry names a client made up: the prompt, tool or resource label is
the registered name (for a resource read through a template, the template), or
``_unknown``; the log line keeps the name as sent.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

from fastmcp.exceptions import NotFoundError, ToolError
from fastmcp.server.dependencies import get_access_token, get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp.server.lowlevel.server import Server as LowLevelServer
from mcp.shared.exceptions import McpError, UrlElicitationRequiredError
from opentelemetry import context as otel_context

from ctxfy.adapters.component_lookup import request_prompt, request_tool
from ctxfy.adapters.request_context import (
    REQUEST_STATE_KEY,
    RequestContext,
    bind_request,
    reset_request,
)
from ctxfy.adapters.request_lines import log_mcp_request, new_request_id
from ctxfy.core.telemetry import (
    UNKNOWN_TARGET,
    ArgumentLogging,
    MetricsRecorder,
    NullMetricsRecorder,
    TargetKind,
    argument_log_value,
    bounded_name,
    json_rpc_error_type,
    tool_result_error_type,
)

__all__ = ["RequestLogMiddleware", "in_tool_cache_refresh"]

# Status of an MCP request whose client left before the answer (nginx's convention).
_CLIENT_GONE_STATUS = "499"

_IN_MCP_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ctxfy_in_mcp_request", default=False
)


def _http_record() -> RequestContext | None:
    try:
        request = get_http_request()
    except RuntimeError:
        return None
    state = request.scope.get("state")
    record = state.get(REQUEST_STATE_KEY) if isinstance(state, dict) else None
    return record if isinstance(record, RequestContext) else None


# The MCP SDK refreshes its tool cache (to validate a call's arguments and output schema)
# by running the tools/list handler inside tools/call, before FastMCP's middleware sees
# the call. Nothing the client sends marks that inner request, so it is recognised by
# the SDK function it runs in.
_TOOL_CACHE_REFRESH = getattr(
    getattr(LowLevelServer, "_get_cached_tool_definition", None), "__code__", None
)


def in_tool_cache_refresh() -> bool:
    """Return whether the request being handled is the MCP SDK refreshing its tool cache.

    The SDK runs ``tools/list`` itself while answering a ``tools/call`` whose tool it has
    not listed yet; that request is part of the call, not one of the client's. The answer
    depends only on where the code runs, never on anything the client chose (such as a
    JSON-RPC request id). Only ``tools/list`` requests can be such a refresh.

    Returns:
        ``True`` inside the SDK's tool-cache refresh; ``False`` otherwise, and always
        ``False`` if the SDK no longer has the function it is recognised by.
    """
    if _TOOL_CACHE_REFRESH is None:
        return False
    # Awaited coroutines run on the caller's stack, so the SDK's frame is below ours.
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _TOOL_CACHE_REFRESH:
            return True
        frame = frame.f_back
    return False


def _target(method: str, message: Any) -> tuple[TargetKind | None, str | None, Any]:
    if method == "tools/call":
        return "tool", getattr(message, "name", None), getattr(message, "arguments", None)
    if method == "prompts/get":
        return "prompt", getattr(message, "name", None), getattr(message, "arguments", None)
    if method == "resources/read":
        uri = getattr(message, "uri", None)
        return "resource", None if uri is None else str(uri), None
    return None, None, None


async def _metric_target(
    context: MiddlewareContext[Any], target_kind: TargetKind | None, target: str | None
) -> str | None:
    """Return the label naming what the request addresses: a registered name or ``_unknown``.

    Prompts and tools go through the request's lookup memo
    (:mod:`~ctxfy.adapters.component_lookup`), so the scope check and the argument
    validator that run next reuse this lookup instead of making their own.
    """
    if target_kind is None or target is None:
        return None
    fastmcp = context.fastmcp_context
    if fastmcp is None:
        return UNKNOWN_TARGET
    # The label must never change the request's outcome: a failing lookup is left for
    # the layers after this one to report, and the label falls back to _unknown.
    try:
        if target_kind == "prompt":
            found = await request_prompt(context) is not None
        elif target_kind == "tool":
            found = await request_tool(context) is not None
        else:
            if await fastmcp.fastmcp.get_resource(target) is not None:
                return target
            template = await fastmcp.fastmcp.get_resource_template(target)
            return template.uri_template if template is not None else UNKNOWN_TARGET
    except Exception:
        return UNKNOWN_TARGET
    return target if found else UNKNOWN_TARGET


def _outcome(method: str, exc: Exception) -> tuple[str, str]:
    """Return (status, error_type) as the client sees the failure."""
    if isinstance(exc, McpError):
        code, error_type = exc.error.code, json_rpc_error_type(exc.error.code)
    else:
        # FastMCP turns a missing resource into -32002 after the middleware chain; the
        # MCP SDK answers any other uncaught exception with code 0.
        missing_resource = method == "resources/read" and isinstance(exc, NotFoundError)
        code = -32002 if missing_resource else 0
        error_type = "tool_error" if isinstance(exc, ToolError) else type(exc).__qualname__
    if method == "tools/call" and not isinstance(exc, UrlElicitationRequiredError):
        return "tool_error", error_type  # sent as a result with isError: true
    return str(code), error_type


def _result_outcome(result: object) -> tuple[str, str | None]:
    """Return (status, error_type) of a result: a tool result may report an error itself."""
    error_type = tool_result_error_type(
        bool(getattr(result, "is_error", False)), getattr(result, "structured_content", None)
    )
    return ("ok", None) if error_type is None else ("tool_error", error_type)


class RequestLogMiddleware(Middleware):
    """FastMCP middleware writing one ``mcp.request`` line per MCP request when it ends.

    The line holds the method, target (prompt, tool or resource), status (``ok``, the
    JSON-RPC error code, ``tool_error``, ``cancelled``, or ``499`` when the client left
    before its answer), error type, latency, key id and the model noted with
    :func:`~ctxfy.adapters.request_context.note_llm_model`. Put it first, so it times and
    sees the errors of every other middleware. Under HTTP it continues the request context
    and trace of :class:`~ctxfy.adapters.http_request_log.RequestContextMiddleware`;
    otherwise (stdio, in memory) it makes a request id.

    Args:
        metrics: Where to record ``mcp.server.operation.duration``; nothing when ``None``.
        log_arguments: ``off`` (default), ``sizes`` or ``full`` prompt/tool arguments.

    Example:
        >>> from fastmcp import FastMCP
        >>> mcp = FastMCP("demo", middleware=[RequestLogMiddleware()])
    """

    def __init__(
        self, *, metrics: MetricsRecorder | None = None, log_arguments: ArgumentLogging = "off"
    ) -> None:
        self._metrics = metrics if metrics is not None else NullMetricsRecorder()
        self._log_arguments: ArgumentLogging = log_arguments

    async def on_request(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        """Time the request, then write its line and record its duration."""
        method = context.method or "unknown"
        target_kind, target, arguments = _target(method, context.message)
        record = _http_record()
        if (
            _IN_MCP_REQUEST.get()
            or (method == "tools/list" and in_tool_cache_refresh())
            or (record is not None and not record.mcp_endpoint)
        ):
            # Not a request of its own: a nested call, the SDK refreshing its tool cache
            # (tools/list inside tools/call), or a REST route calling into FastMCP.
            if record is not None and record.target is None and target is not None:
                record.target = bounded_name(target)
            return await call_next(context)
        if record is None:
            record = RequestContext(request_id=new_request_id())
        transport = context.fastmcp_context.transport if context.fastmcp_context else None
        record.transport = transport or ("http" if record.mcp_endpoint else "memory")
        # Bounded once here: every line of the request copies it.
        record.target = None if target is None else bounded_name(target)
        tokens = (bind_request(record), _IN_MCP_REQUEST.set(True))
        # Stateful sessions run handlers in a task that inherited another request's
        # trace context: re-enter this request's so FastMCP's spans are its children.
        otel_token = otel_context.attach(record.otel_context) if record.otel_context else None
        started = time.perf_counter()
        status: str = "cancelled"
        error_type: str | None = "cancelled"
        metric_target = None if target is None else UNKNOWN_TARGET
        try:
            metric_target = await _metric_target(context, target_kind, target)
            result = await call_next(context)
            status, error_type = _result_outcome(result)
            return result
        except Exception as exc:
            status, error_type = _outcome(method, exc)
            raise
        finally:
            duration_s = time.perf_counter() - started
            self._finish(
                record,
                method=method,
                target_kind=target_kind,
                metric_target=metric_target,
                arguments=arguments,
                status=status,
                error_type=error_type,
                duration_s=duration_s,
            )
            if otel_token is not None:
                otel_context.detach(otel_token)
            _IN_MCP_REQUEST.reset(tokens[1])
            reset_request(tokens[0])
            if not record.mcp_endpoint:
                record.finished = True

    def _finish(
        self,
        record: RequestContext,
        *,
        method: str,
        target_kind: TargetKind | None,
        metric_target: str | None,
        arguments: Any,
        status: str,
        error_type: str | None,
        duration_s: float,
    ) -> None:
        if record.key_id is None:
            token = get_access_token()
            record.key_id = token.client_id if token is not None else None
        if record.client_gone:
            # The answer was never delivered, whatever the handler returned.
            status, error_type = _CLIENT_GONE_STATUS, "client_gone"
        self._metrics.record_operation(
            method=method,
            target_kind=target_kind,
            target=metric_target,
            duration_s=duration_s,
            error_type=error_type,
        )
        logged_arguments = argument_log_value(
            arguments if isinstance(arguments, Mapping) else None, self._log_arguments
        )
        log_mcp_request(
            record,
            method=method,
            status=status,
            error_type=error_type,
            duration_s=duration_s,
            arguments=logged_arguments,
        )
