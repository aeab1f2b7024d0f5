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

__all__ = [
    "MAX_REQUEST_ID_LENGTH",
    "REQUEST_LOG_FIELDS",
    "ArgumentLogging",
    "MetricsRecorder",
    "NullMetricsRecorder",
    "TargetKind",
    "argument_log_value",
    "http_log_level",
    "http_status_name",
    "json_rpc_error_type",
    "parse_argument_logging",
    "valid_request_id",
]

MAX_REQUEST_ID_LENGTH = 128
"""The longest ``X-Request-ID`` accepted from a client; longer ones are replaced."""

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]+")

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
        quiet: The path is a quiet one (health probes): always ``DEBUG``.

    Returns:
        ``DEBUG`` when quiet, else ``ERROR`` for 5xx, ``WARNING`` for 4xx, ``INFO`` below.

    Example:
        >>> http_log_level(200), http_log_level(404), http_log_level(200, quiet=True)
        ('INFO', 'WARNING', 'DEBUG')
    """
    if quiet:
        return "DEBUG"
    if status >= 500:
        return "ERROR"
    return "WARNING" if status >= 400 else "INFO"


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
