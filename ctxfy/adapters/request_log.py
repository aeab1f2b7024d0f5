"""One log line and one metric sample per request, for MCP requests and HTTP routes.

Two pieces work together:

- :class:`RequestContextMiddleware` (ASGI) wraps the whole HTTP app. It adopts a valid
  ``X-Request-ID`` or makes one, echoes it in the response, continues an incoming
  ``traceparent``, binds a :class:`~ctxfy.adapters.logging.RequestContext` that every
  log line of the request picks up, records ``http.server.request.duration`` and writes
  the ``http.request`` line.
- :class:`RequestLogMiddleware` (FastMCP) writes the ``mcp.request`` line of each MCP
  request and records ``mcp.server.operation.duration``.

One HTTP POST to the MCP endpoint carries one JSON-RPC request, so it would get two
lines; instead the HTTP line is written only when no MCP line was (the request was
refused before reaching MCP: 401, 403, 429, 400, 406; a notification; the GET event
stream; a session DELETE). Every request thus has exactly one request line. When a REST
route calls into FastMCP (``mcp.render_prompt``) the route's HTTP line is the one kept.

Requests the MCP library answers itself, before any FastMCP middleware runs (an unknown
method, parameters that do not fit the method: JSON-RPC -32601/-32602, or ``ping``), get
their ``mcp.request`` line and operation sample from :class:`RequestContextMiddleware`,
which reads the JSON-RPC answer from the response body (kept only while no MCP line has
been written, and only up to a few kilobytes) and the method from the request body.

Metric labels never carry names a client made up: the prompt, tool or resource label is
the registered name (for a resource read through a template, the template), or
``_unknown``; the log line keeps the name as sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import Collection, Mapping
from typing import Any, get_args

import mcp.types as mt
from fastmcp.exceptions import NotFoundError, ToolError
from fastmcp.server.dependencies import get_access_token, get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from loguru import logger
from mcp.server.lowlevel.server import request_ctx
from mcp.shared.exceptions import McpError, UrlElicitationRequiredError
from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctxfy.adapters.component_lookup import request_prompt, request_tool
from ctxfy.adapters.logging import (
    RequestContext,
    bind_request,
    note_key_id,
    note_llm_model,
    reset_request,
)
from ctxfy.adapters.request_context import REQUEST_STATE_KEY
from ctxfy.adapters.tracing import http_server_span
from ctxfy.core.telemetry import (
    UNKNOWN_TARGET,
    ArgumentLogging,
    MetricsRecorder,
    NullMetricsRecorder,
    RpcExchange,
    TargetKind,
    argument_log_value,
    bounded_name,
    http_log_level,
    http_status_name,
    json_rpc_error_type,
    read_rpc_exchange,
    valid_request_id,
)

__all__ = [
    "REQUEST_ID_HEADER",
    "RequestContextMiddleware",
    "RequestLogMiddleware",
    "current_wire_method",
    "new_request_id",
    "note_key_id",
    "note_llm_model",
]

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower()
_STATE_KEY = REQUEST_STATE_KEY
_IN_MCP_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ctxfy_in_mcp_request", default=False
)
# Bodies of MCP POSTs are kept up to this size, in case the MCP library answers the
# request itself (no MCP line): a JSON-RPC error answer is far smaller.
_RPC_BODY_LIMIT = 16 * 1024
# The methods a client may send (from the SDK's own request types): the only values the
# mcp.method.name label takes for requests the library answered, besides _unknown.
_MCP_METHODS = frozenset(
    get_args(request.model_fields["method"].annotation)[0]
    for request in get_args(mt.ClientRequest.model_fields["root"].annotation)
)
_METHOD_TARGET: Mapping[str, TargetKind] = {
    "tools/call": "tool",
    "prompts/get": "prompt",
    "resources/read": "resource",
}


def new_request_id() -> str:
    """Return a fresh request id: a random (version 4) UUID as 32 hex digits."""
    return uuid.uuid4().hex


def _http_record() -> RequestContext | None:
    try:
        request = get_http_request()
    except RuntimeError:
        return None
    state = request.scope.get("state")
    record = state.get(_STATE_KEY) if isinstance(state, dict) else None
    return record if isinstance(record, RequestContext) else None


def current_wire_method() -> str | None:
    """Return the JSON-RPC method the client sent for the request being handled."""
    try:
        context = request_ctx.get()
    except LookupError:
        return None
    # The MCP SDK has no public accessor for the request being answered; its session keeps
    # the responders of in-flight requests by id. Missing pieces mean "unknown".
    in_flight = getattr(context.session, "_in_flight", None)
    responder = in_flight.get(context.request_id) if isinstance(in_flight, dict) else None
    root = getattr(getattr(responder, "request", None), "root", None)
    method = getattr(root, "method", None)
    return method if isinstance(method, str) else None


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
    if not getattr(result, "is_error", False):
        return "ok", None
    structured = getattr(result, "structured_content", None)
    refused = isinstance(structured, dict) and structured.get("error") == "invalid_arguments"
    # Arguments refused by RequestValidationMiddleware, as the REST façade names them.
    return "tool_error", "invalid_params" if refused else "tool_error"


class RequestLogMiddleware(Middleware):
    """FastMCP middleware writing one ``mcp.request`` line per MCP request when it ends.

    The line holds the method, target (prompt, tool or resource), status (``ok``, the
    JSON-RPC error code, ``tool_error`` or ``cancelled``), error type, latency, key id and
    the model noted with :func:`note_llm_model`. Put it first, so it times and sees the
    errors of every other middleware. Under HTTP it continues the request context and
    trace of :class:`RequestContextMiddleware`; otherwise (stdio, in memory) it makes a
    request id.

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
        wire_method = current_wire_method()
        if (
            _IN_MCP_REQUEST.get()
            or (wire_method is not None and wire_method != method)
            or (record is not None and not record.mcp_endpoint)
        ):
            # Not a request of its own: a nested call, the SDK refreshing its tool cache
            # (tools/list inside tools/call), or a REST route calling into FastMCP.
            if record is not None and record.target is None:
                record.target = target
            return await call_next(context)
        if record is None:
            record = RequestContext(request_id=new_request_id())
        transport = context.fastmcp_context.transport if context.fastmcp_context else None
        record.transport = transport or ("http" if record.mcp_endpoint else "memory")
        record.target = target
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
        _log_mcp_request(
            record,
            method=method,
            status=status,
            error_type=error_type,
            duration_s=duration_s,
            arguments=logged_arguments,
        )


def _log_mcp_request(
    record: RequestContext,
    *,
    method: str,
    status: str,
    error_type: str | None,
    duration_s: float,
    arguments: dict[str, object] | None = None,
) -> None:
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
    logger.bind(**fields).log("INFO" if status == "ok" else "WARNING", f"{name} -> {status}")
    record.logged = True


class _RpcCapture:
    """The bodies of one POST to the MCP endpoint, kept (bounded) until its MCP line exists.

    Once :class:`RequestLogMiddleware` has written the request's line, nothing more is
    kept; what was kept only serves when no such line is ever written.
    """

    __slots__ = ("_record", "_request", "_request_size", "_response", "_response_size", "_sse")

    def __init__(self, record: RequestContext) -> None:
        self._record = record
        self._request: list[bytes] | None = []
        self._request_size = 0
        self._response: list[bytes] | None = None  # None: not kept
        self._response_size = 0
        self._sse = False

    def wrap(self, receive: Receive) -> Receive:
        """Return ``receive``, keeping the request body while it is small."""

        async def receive_kept() -> Message:
            message = await receive()
            if self._request is not None and message["type"] == "http.request":
                body: bytes = message.get("body", b"")
                self._request_size += len(body)
                if self._request_size > _RPC_BODY_LIMIT:
                    self._request = None
                else:
                    self._request.append(body)
            return message

        return receive_kept

    def response_started(self, message: Message) -> None:
        """Start keeping a ``200`` JSON or event-stream answer, unless the line exists."""
        if self._record.logged or message["status"] != 200:
            return
        content_type = MutableHeaders(scope=message).get("content-type", "")
        self._sse = content_type.startswith("text/event-stream")
        if self._sse or content_type.startswith("application/json"):
            self._response = []

    def response_body(self, body: bytes) -> None:
        """Keep a chunk of the answer while no line exists and the answer is small."""
        if self._response is None:
            return
        self._response_size += len(body)
        if self._record.logged or self._response_size > _RPC_BODY_LIMIT:
            self._response = self._request = None
        else:
            self._response.append(body)

    def exchange(self) -> RpcExchange | None:
        """Return the JSON-RPC exchange kept, or ``None`` when there is none to report."""
        if self._response is None or self._record.logged:
            return None
        request = b"".join(self._request) if self._request is not None else None
        return read_rpc_exchange(request, b"".join(self._response), event_stream=self._sse)


class RequestContextMiddleware:
    """ASGI middleware: request id, trace context, HTTP metrics and ``http.request`` lines.

    Wrap the whole app so that authentication runs inside the request context (its
    audit lines then carry the request id): ``app.add_middleware(...)`` on the app from
    ``mcp.http_app()`` places it outermost. Lines for ``quiet_paths`` are written at
    DEBUG (health probes), but still counted in metrics.

    Args:
        app: The ASGI app to wrap.
        metrics: Where to record ``http.server.request.duration``; nothing when ``None``.
        mcp_path: The MCP endpoint, whose lines :class:`RequestLogMiddleware` writes.
        quiet_paths: Paths logged at DEBUG and given no span of their own.
        tracer_provider: A tracer provider instead of the global one (tests).

    Example:
        >>> from fastmcp import FastMCP
        >>> mcp = FastMCP("demo", middleware=[RequestLogMiddleware()])
        >>> app = mcp.http_app(path="/mcp")
        >>> app.add_middleware(RequestContextMiddleware, mcp_path="/mcp")
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: MetricsRecorder | None = None,
        mcp_path: str = "/mcp",
        quiet_paths: Collection[str] = ("/health", "/ready"),
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.app = app
        self._metrics = metrics if metrics is not None else NullMetricsRecorder()
        self._mcp_path = mcp_path.rstrip("/") or "/"
        self._quiet_paths = frozenset(quiet_paths)
        self._tracer_provider = tracer_provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside its context; pass lifespan and websockets through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One pass over the raw headers (names are lower case in ASGI); the first of
        # repeated headers wins, as with Starlette's Headers.get.
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in reversed(scope["headers"])
        }
        incoming = headers.get(_REQUEST_ID_KEY)
        request_id = incoming if incoming and valid_request_id(incoming) else new_request_id()
        method, path = scope["method"], scope["path"]
        quiet = path in self._quiet_paths
        record = RequestContext(
            request_id=request_id,
            transport="http",
            mcp_endpoint=path.rstrip("/") == self._mcp_path,
        )
        scope.setdefault("state", {})[_STATE_KEY] = record
        response_status: int | None = None
        error_type: str | None = None
        rpc = _RpcCapture(record) if record.mcp_endpoint and method == "POST" else None
        if rpc is not None:
            receive = rpc.wrap(receive)

        async def send_with_id(message: Message) -> None:
            nonlocal response_status
            if message["type"] == "http.response.start":
                response_status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                if rpc is not None:
                    rpc.response_started(message)
            elif rpc is not None and message["type"] == "http.response.body":
                rpc.response_body(message.get("body", b""))
            await send(message)

        with http_server_span(
            headers,
            method=method,
            path=path,
            record=not quiet,
            tracer_provider=self._tracer_provider,
        ) as span:
            span_context = span.get_span_context()
            if span_context.is_valid:
                record.trace_id = trace.format_trace_id(span_context.trace_id)
                record.span_id = trace.format_span_id(span_context.span_id)
            record.otel_context = otel_context.get_current()
            token = bind_request(record)
            started = time.perf_counter()
            try:
                await self.app(scope, receive, send_with_id)
            except asyncio.CancelledError:
                error_type = "cancelled"
                raise
            except Exception as exc:
                error_type = type(exc).__qualname__
                raise
            finally:
                duration_s = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None)
                # No response started: 499 (client went away, nginx's convention) or 500.
                status = response_status or (499 if error_type == "cancelled" else 500)
                self._finish(
                    record,
                    scope=scope,
                    span=span,
                    route=route,
                    status=status,
                    error_type=error_type,
                    duration_s=duration_s,
                    quiet=quiet,
                    rpc=rpc,
                )
                record.finished = True
                reset_request(token)

    def _finish(
        self,
        record: RequestContext,
        *,
        scope: Scope,
        span: trace.Span,
        route: str | None,
        status: int,
        error_type: str | None,
        duration_s: float,
        quiet: bool,
        rpc: _RpcCapture | None,
    ) -> None:
        method, path = scope["method"], scope["path"]
        if route is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        self._metrics.record_http(method=method, route=route, status=status, duration_s=duration_s)
        if record.logged:
            return
        if record.key_id is None:
            token = getattr(scope.get("user"), "access_token", None)
            record.key_id = getattr(token, "client_id", None)
        exchange = rpc.exchange() if rpc is not None and error_type is None else None
        if exchange is not None:
            self._finish_rpc(record, exchange, duration_s)
            return
        if error_type is None and status >= 400:
            error_type = http_status_name(status)
        log_http_request(
            method=method,
            path=path,
            status=status,
            error_type=error_type,
            duration_s=duration_s,
            level=http_log_level(status, quiet=quiet),
        )
        record.logged = True

    def _finish_rpc(self, record: RequestContext, exchange: RpcExchange, duration_s: float) -> None:
        """Write the line and sample of a request the MCP library answered by itself."""
        method = exchange.method if exchange.method in _MCP_METHODS else None
        target_kind = _METHOD_TARGET.get(method) if method is not None else None
        if exchange.error_code is None:
            status, error_type = "ok", None
        else:
            status = str(exchange.error_code)
            error_type = json_rpc_error_type(exchange.error_code)
        # Nothing resolved the name: the label says so rather than repeat the client.
        self._metrics.record_operation(
            method=method or UNKNOWN_TARGET,
            target_kind=target_kind,
            target=None if exchange.target is None else UNKNOWN_TARGET,
            duration_s=duration_s,
            error_type=error_type,
        )
        record.transport = "streamable-http"
        record.target = exchange.target
        _log_mcp_request(
            record,
            method=UNKNOWN_TARGET if exchange.method is None else bounded_name(exchange.method),
            status=status,
            error_type=error_type,
            duration_s=duration_s,
        )


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
            ``transport`` for a layer that runs outside :class:`RequestContextMiddleware`).
    """
    logger.bind(
        **context,
        event="http.request",
        method=f"{method} {path}",
        status="ok" if status < 400 and error_type is None else str(status),
        error_type=error_type,
        latency_ms=round(duration_s * 1000, 3),
        http_status=status,
    ).log(level, f"{method} {path} -> {status}")
