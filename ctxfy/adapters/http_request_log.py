"""The ASGI middleware giving each HTTP request its id, trace context, metric and line.

:class:`RequestContextMiddleware` wraps the whole HTTP app. It adopts a valid
``X-Request-ID`` or makes one, echoes it in the response, continues an incoming
``traceparent``, binds a :class:`~ctxfy.adapters.request_context.RequestContext` that
every log line of the request picks up, records ``http.server.request.duration`` and
writes the ``http.request`` line when no ``mcp.request`` line was written.

For a POST to the MCP endpoint that the MCP library answered itself (no FastMCP
middleware ran), the ``mcp.request`` line comes from the bodies kept by
:class:`~ctxfy.adapters.rpc_capture.RpcCapture` instead. When the client goes away from
an event stream before its answer (the stream then ends normally), no line is written
here: the MCP handler, still running, writes the ``mcp.request`` line with status ``499``
and error type ``client_gone`` when it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctxfy.adapters.request_context import (
    REQUEST_STATE_KEY,
    RequestContext,
    bind_request,
    reset_request,
)
from ctxfy.adapters.request_lines import (
    REQUEST_ID_HEADER,
    log_http_request,
    new_request_id,
)
from ctxfy.adapters.rpc_capture import RpcCapture, report_library_answer
from ctxfy.adapters.tracing import http_server_span
from ctxfy.core.telemetry import (
    MetricsRecorder,
    NullMetricsRecorder,
    http_log_level,
    http_status_name,
    valid_request_id,
)

__all__ = ["RequestContextMiddleware"]

_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower()


class RequestContextMiddleware:
    """ASGI middleware: request id, trace context, HTTP metrics and ``http.request`` lines.

    Wrap the whole app so that authentication runs inside the request context (its
    audit lines then carry the request id): ``app.add_middleware(...)`` on the app from
    ``mcp.http_app()`` places it outermost. Lines for ``quiet_paths`` are written at
    DEBUG (health probes), but still counted in metrics.

    Args:
        app: The ASGI app to wrap.
        metrics: Where to record ``http.server.request.duration``; nothing when ``None``.
        mcp_path: The MCP endpoint, whose lines
            :class:`~ctxfy.adapters.mcp_request_log.RequestLogMiddleware` writes.
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
        scope.setdefault("state", {})[REQUEST_STATE_KEY] = record
        response_status: int | None = None
        error_type: str | None = None
        rpc = RpcCapture(record) if record.mcp_endpoint and method == "POST" else None
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
        rpc: RpcCapture | None,
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
            report_library_answer(record, exchange, metrics=self._metrics, duration_s=duration_s)
            return
        if rpc is not None and error_type is None and rpc.answer_pending():
            # The client went away before its answer; the MCP handler still runs and its
            # mcp.request line, written when it ends, is this request's one line.
            record.client_gone = True
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
