"""Lines for the requests the MCP library answers itself, read from their HTTP bodies.

The MCP library answers some requests before any FastMCP middleware runs (an unknown
method, parameters that do not fit the method: JSON-RPC -32601/-32602, or ``ping``), so
:class:`~ctxfy.adapters.mcp_request_log.RequestLogMiddleware` never sees them.
:class:`~ctxfy.adapters.http_request_log.RequestContextMiddleware` keeps the bodies of
each POST to the MCP endpoint in a :class:`RpcCapture` (only while no MCP line has been
written, and only up to a few kilobytes) and, when no line was written, hands the
exchange to :func:`report_library_answer` for the ``mcp.request`` line and operation
sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args

import mcp.types as mt
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive

from ctxfy.adapters.request_context import RequestContext
from ctxfy.adapters.request_lines import log_mcp_request
from ctxfy.core.telemetry import (
    UNKNOWN_TARGET,
    MetricsRecorder,
    RpcExchange,
    TargetKind,
    bounded_name,
    json_rpc_error_type,
    read_rpc_exchange,
)

__all__ = ["RpcCapture", "report_library_answer"]

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


class RpcCapture:
    """The bodies of one POST to the MCP endpoint, kept (bounded) until its MCP line exists.

    Once :class:`~ctxfy.adapters.mcp_request_log.RequestLogMiddleware` has written the
    request's line, nothing more is kept; what was kept only serves when no such line is
    ever written.
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

    def answer_pending(self) -> bool:
        """Return whether the event stream ended before the JSON-RPC answer was sent.

        The MCP library's event stream ends normally when the client goes away (or times
        out) while the request's handler still runs; that handler's
        :class:`~ctxfy.adapters.mcp_request_log.RequestLogMiddleware` writes the line
        later. ``False`` when the stream grew past what is kept: nothing tells then.
        """
        if not self._sse or self._record.logged:
            return False
        return self._response is not None and self.exchange() is None


def report_library_answer(
    record: RequestContext,
    exchange: RpcExchange,
    *,
    metrics: MetricsRecorder,
    duration_s: float,
) -> None:
    """Write the line and sample of a request the MCP library answered by itself.

    Args:
        record: The request's context; it is marked as logged.
        exchange: The JSON-RPC exchange :meth:`RpcCapture.exchange` returned.
        metrics: Where to record ``mcp.server.operation.duration``.
        duration_s: How long the request took.
    """
    method = exchange.method if exchange.method in _MCP_METHODS else None
    target_kind = _METHOD_TARGET.get(method) if method is not None else None
    if exchange.error_code is None:
        status, error_type = "ok", None
    else:
        status = str(exchange.error_code)
        error_type = json_rpc_error_type(exchange.error_code)
    # Nothing resolved the name: the label says so rather than repeat the client.
    metrics.record_operation(
        method=method or UNKNOWN_TARGET,
        target_kind=target_kind,
        target=None if exchange.target is None else UNKNOWN_TARGET,
        duration_s=duration_s,
        error_type=error_type,
    )
    record.transport = "streamable-http"
    record.target = None if exchange.target is None else bounded_name(exchange.target)
    log_mcp_request(
        record,
        method=UNKNOWN_TARGET if exchange.method is None else bounded_name(exchange.method),
        status=status,
        error_type=error_type,
        duration_s=duration_s,
    )
