"""Telemetry ports and rules: what ctxfy measures and logs, independent of how.

The shell implements :class:`MetricsRecorder` with OpenTelemetry
(``ctxfy.adapters.metrics``); tests use ``ctxfy.testing.RecordingMetrics``. The request-log
rules (which request ids are accepted, which fields every line carries, how prompt
arguments are summarised) live here so they can be tested without I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Literal, Protocol

import attrs

__all__ = [
    "MAX_LOGGED_NAME_LENGTH",
    "MAX_REQUEST_ID_LENGTH",
    "REQUEST_LOG_FIELDS",
    "UNKNOWN_TARGET",
    "ArgumentLogging",
    "MetricsRecorder",
    "NullMetricsRecorder",
    "RpcExchange",
    "TargetKind",
    "argument_log_value",
    "bounded_name",
    "http_log_level",
    "http_status_name",
    "json_rpc_error_type",
    "parse_argument_logging",
    "read_rpc_exchange",
    "tool_result_error_type",
    "valid_request_id",
]

MAX_REQUEST_ID_LENGTH = 128
"""The longest ``X-Request-ID`` accepted from a client; longer ones are replaced."""

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]+")

UNKNOWN_TARGET = "_unknown"
"""The metric label for a prompt, tool or resource the server does not serve.

Clients choose the names they ask for; labelling metrics with them would let any client
create series without bound, so names the server does not know share this one value.
"""

MAX_LOGGED_NAME_LENGTH = 200
"""The longest client-chosen name (target, JSON-RPC method) written to a log line as is."""

REQUEST_LOG_FIELDS: tuple[str, ...] = (
    "timestamp",
    "level",
    "message",
    "request_id",
    "latency_ms",
    "llm_model",
    "event",
    "transport",
    "method",
    "target",
    "status",
    "error_type",
    "key_id",
    "trace_id",
    "span_id",
)
"""Fields present (possibly ``null``) in every JSON log line, in output order."""

TargetKind = Literal["tool", "prompt", "resource"]
"""What an MCP operation addresses; selects the ``gen_ai.*`` / ``mcp.*`` attribute."""

ArgumentLogging = Literal["off", "sizes", "full"]
"""How prompt and tool arguments appear in request lines: not at all, sizes, or values."""

_JSON_RPC_ERRORS: Mapping[int, str] = {
    -32700: "parse_error",
    -32600: "invalid_request",
    -32601: "method_not_found",
    -32602: "invalid_params",
    -32603: "internal_error",
    -32002: "resource_not_found",
    -32001: "not_found",
    -32000: "server_error",
}

_ARGUMENT_LOGGING_WORDS: Mapping[str, ArgumentLogging] = {
    "": "off",
    "0": "off",
    "false": "off",
    "no": "off",
    "off": "off",
    "1": "sizes",
    "true": "sizes",
    "yes": "sizes",
    "on": "sizes",
    "sizes": "sizes",
    "full": "full",
}


def valid_request_id(text: str) -> bool:
    """Tell whether a client-supplied request id may be adopted as is.

    A valid id has 1 to :data:`MAX_REQUEST_ID_LENGTH` characters, all from
    ``A-Z a-z 0-9 . _ : -``, so it is safe to echo in a header and to index in logs.

    Args:
        text: The raw ``X-Request-ID`` header value.

    Returns:
        ``True`` when the id is acceptable, ``False`` when a new one must be generated.

    Example:
        >>> valid_request_id("req-42"), valid_request_id("a b"), valid_request_id("")
        (True, False, False)
    """
    return len(text) <= MAX_REQUEST_ID_LENGTH and _REQUEST_ID.fullmatch(text) is not None


def json_rpc_error_type(code: int) -> str:
    """Name a JSON-RPC error code for the ``error_type`` log field and ``error.type`` label.

    Args:
        code: The JSON-RPC error code sent to the client.

    Returns:
        A short snake-case name (``invalid_params`` for -32602), or ``jsonrpc_<code>``
        for a code without a standard name, which keeps label values bounded.

    Example:
        >>> json_rpc_error_type(-32602), json_rpc_error_type(7)
        ('invalid_params', 'jsonrpc_7')
    """
    return _JSON_RPC_ERRORS.get(code, f"jsonrpc_{code}")


def http_status_name(status: int) -> str:
    """Name an HTTP error status for the ``error_type`` field of ``http.request`` lines.

    Args:
        status: The response status code.

    Returns:
        The reason phrase in snake case, or ``http_<status>`` for an unregistered code.

    Example:
        >>> http_status_name(429), http_status_name(599)
        ('too_many_requests', 'http_599')
    """
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return f"http_{status}"


def http_log_level(status: int, *, quiet: bool = False) -> str:
    """Choose the level of an ``http.request`` line.

    Args:
        status: The response status code.
        quiet: The path is a quiet one (health probes): ``DEBUG`` below 500. A probe
            answering 503 (not ready) is a ``WARNING``; any other 5xx stays an ``ERROR``.

    Returns:
        ``ERROR`` for 5xx, ``WARNING`` for 4xx, ``INFO`` below; see ``quiet``.

    Example:
        >>> http_log_level(200), http_log_level(404), http_log_level(200, quiet=True)
        ('INFO', 'WARNING', 'DEBUG')
        >>> http_log_level(503, quiet=True), http_log_level(500, quiet=True)
        ('WARNING', 'ERROR')
    """
    if status >= 500:
        return "WARNING" if quiet and status == HTTPStatus.SERVICE_UNAVAILABLE else "ERROR"
    if quiet:
        return "DEBUG"
    return "WARNING" if status >= 400 else "INFO"


def bounded_name(text: str) -> str:
    """Cut a client-chosen name to :data:`MAX_LOGGED_NAME_LENGTH` characters for a log line.

    Args:
        text: The name as received.

    Returns:
        The name, or its first characters followed by ``...`` when it is longer.

    Example:
        >>> bounded_name("greet"), len(bounded_name("x" * 5000))
        ('greet', 203)
    """
    if len(text) <= MAX_LOGGED_NAME_LENGTH:
        return text
    return text[:MAX_LOGGED_NAME_LENGTH] + "..."


def tool_result_error_type(is_error: bool, structured_content: object) -> str | None:
    """Name the failure a tool result reports itself (``isError: true``), for MCP and REST.

    Arguments refused by validation come back as an error result whose structured content
    says ``"error": "invalid_arguments"``; they count as ``invalid_params``, like the
    same refusal of a prompt. Any other error result is a ``tool_error``.

    Args:
        is_error: The result's ``isError`` flag.
        structured_content: The result's structured content, if any.

    Returns:
        ``None`` for a successful result, else ``invalid_params`` or ``tool_error``.

    Example:
        >>> tool_result_error_type(True, {"error": "invalid_arguments"})
        'invalid_params'
    """
    if not is_error:
        return None
    refused = (
        isinstance(structured_content, Mapping)
        and structured_content.get("error") == "invalid_arguments"
    )
    return "invalid_params" if refused else "tool_error"


def parse_argument_logging(text: str) -> ArgumentLogging:
    """Read the ``CTXFY_LOG_ARGUMENTS`` value.

    ``off`` (or empty, ``0``, ``false``, ``no``) logs no arguments; ``on`` (or ``1``,
    ``true``, ``yes``, ``sizes``) logs only their sizes; ``full`` logs the values.

    Args:
        text: The setting as written, case-insensitive.

    Returns:
        The argument-logging mode.

    Raises:
        ValueError: If the text is none of the accepted words.

    Example:
        >>> parse_argument_logging("true"), parse_argument_logging("FULL")
        ('sizes', 'full')
    """
    mode = _ARGUMENT_LOGGING_WORDS.get(text.strip().lower())
    if mode is None:
        raise ValueError(f"expected off, on, sizes or full, got {text!r}")
    return mode


def argument_log_value(
    arguments: Mapping[str, object] | None, mode: ArgumentLogging
) -> dict[str, object] | None:
    """Summarise request arguments for a log line according to ``mode``.

    Args:
        arguments: The prompt or tool arguments as received.
        mode: ``off`` gives ``None``; ``sizes`` maps each name to the length of its value
            (characters of a string, of the JSON text otherwise); ``full`` copies the values.

    Returns:
        What the ``arguments`` log field should hold, or ``None`` to leave it out.

    Example:
        >>> argument_log_value({"task": "write a PRP", "n": 3}, "sizes")
        {'task': 11, 'n': 1}
    """
    if mode == "off" or arguments is None:
        return None
    if mode == "full":
        return dict(arguments)
    return {name: _size(value) for name, value in arguments.items()}


def _size(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    return len(json.dumps(value, default=str, ensure_ascii=False))


class MetricsRecorder(Protocol):
    """Where ctxfy reports what it measured; one method per metric family.

    Durations are in seconds. ``error_type`` is ``None`` on success, else a short,
    bounded name (an exception class, ``tool_error`` or a JSON-RPC error name).
    Implementations must be cheap and must not raise.
    """

    def record_operation(
        self,
        *,
        method: str,
        target_kind: TargetKind | None,
        target: str | None,
        duration_s: float,
        error_type: str | None,
    ) -> None:
        """Record one finished MCP request (``mcp.server.operation.duration``)."""

    def record_llm_call(self, *, model: str, duration_s: float, error_type: str | None) -> None:
        """Record one LLM call (``gen_ai.client.operation.duration``)."""

    def record_http(
        self, *, method: str, route: str | None, status: int, duration_s: float
    ) -> None:
        """Record one finished HTTP request (``http.server.request.duration``)."""

    def count_auth_failure(self, reason: str) -> None:
        """Count a rejected credential, by reason (``missing``, ``invalid``, ``scope``...)."""

    def count_rate_limited(self) -> None:
        """Count a request refused by a rate limit."""

    def count_validation_rejection(self, rule: str) -> None:
        """Count a request refused by argument validation, by the rule it broke."""

    def count_injection_flag(self, pattern: str) -> None:
        """Count an argument flagged as a possible prompt injection, by pattern."""


class NullMetricsRecorder:
    """A :class:`MetricsRecorder` that records nothing; the default when metrics are off."""

    def record_operation(
        self,
        *,
        method: str,
        target_kind: TargetKind | None,
        target: str | None,
        duration_s: float,
        error_type: str | None,
    ) -> None:
        """Do nothing."""

    def record_llm_call(self, *, model: str, duration_s: float, error_type: str | None) -> None:
        """Do nothing."""

    def record_http(
        self, *, method: str, route: str | None, status: int, duration_s: float
    ) -> None:
        """Do nothing."""

    def count_auth_failure(self, reason: str) -> None:
        """Do nothing."""

    def count_rate_limited(self) -> None:
        """Do nothing."""

    def count_validation_rejection(self, rule: str) -> None:
        """Do nothing."""

    def count_injection_flag(self, pattern: str) -> None:
        """Do nothing."""


@attrs.frozen
class RpcExchange:
    """A JSON-RPC request and the answer the MCP library gave it, as read from the wire.

    Attributes:
        method: The request's ``method``; ``None`` when the request body was not kept
            (too large) or holds no single JSON-RPC request.
        target: ``params.name`` or ``params.uri`` when it is a string, else ``None``.
        error_code: The answer's JSON-RPC error code; ``None`` for a result.
    """

    method: str | None
    target: str | None
    error_code: int | None


def read_rpc_exchange(
    request_body: bytes | None, response_body: bytes, *, event_stream: bool
) -> RpcExchange | None:
    """Read the JSON-RPC answer in a response body, and what was asked in the request body.

    Args:
        request_body: The HTTP request body, or ``None`` when it was not kept.
        response_body: The HTTP response body: one JSON document, or a server-sent event
            stream when ``event_stream``, whose first JSON-RPC answer is taken.
        event_stream: The response is ``text/event-stream``.

    Returns:
        The exchange, or ``None`` when the response holds no JSON-RPC answer.

    Example:
        >>> read_rpc_exchange(
        ...     b'{"jsonrpc": "2.0", "id": 1, "method": "foo/bar"}',
        ...     b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "?"}}',
        ...     event_stream=False,
        ... )
        RpcExchange(method='foo/bar', target=None, error_code=-32601)
    """
    documents = _event_data(response_body) if event_stream else [response_body]
    answer = next(
        (
            doc
            for doc in map(_json_object, documents)
            if doc is not None and "id" in doc and ("result" in doc or "error" in doc)
        ),
        None,
    )
    if answer is None:
        return None
    error = answer.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    error_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    if error is not None and error_code is None:
        error_code = -32603  # an error without a usable code: count it as an internal error
    request = _json_object(request_body) if request_body is not None else None
    method = request.get("method") if request is not None else None
    params = request.get("params") if request is not None else None
    target = None
    if isinstance(params, dict):
        target = next(
            (value for key in ("name", "uri") if isinstance(value := params.get(key), str)),
            None,
        )
    return RpcExchange(
        method=method if isinstance(method, str) else None, target=target, error_code=error_code
    )


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _event_data(body: bytes) -> list[bytes]:
    """Return the ``data`` of each server-sent event in ``body``, in order."""
    events: list[bytes] = []
    data: list[bytes] = []
    for line in body.splitlines():
        if line.startswith(b"data:"):
            data.append(line[5:].removeprefix(b" "))
        elif not line and data:
            events.append(b"\n".join(data))
            data = []
    if data:
        events.append(b"\n".join(data))
    return events
