"""JSON request logs with loguru: the sink, the line schema and the request context.

Only the entry point calls :func:`configure_logging`; importing ctxfy adds no sink.
Every line, including audit events and library logs routed from the standard
``logging`` module, picks up the current :class:`RequestContext` (request id, key id,
LLM model) and the current OpenTelemetry span ids.

Lines never block the event loop: :class:`BackgroundLineWriter` (in
``ctxfy.adapters.log_writer``, re-exported here) renders them in the caller and writes
them from a background thread. The request context and its helpers live in
``ctxfy.adapters.request_context`` and are re-exported here.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TextIO

from loguru import logger
from opentelemetry import trace

from ctxfy.adapters.log_writer import BackgroundLineWriter
from ctxfy.adapters.request_context import (
    RequestContext,
    bind_request,
    current_request,
    current_request_id,
    note_key_id,
    note_llm_model,
    reset_request,
)
from ctxfy.core.telemetry import REQUEST_LOG_FIELDS

if TYPE_CHECKING:
    from loguru import Record

__all__ = [
    "DEFAULT_QUIET_LOGGERS",
    "BackgroundLineWriter",
    "InterceptHandler",
    "LogFormat",
    "RequestContext",
    "bind_request",
    "configure_logging",
    "current_request",
    "current_request_id",
    "note_key_id",
    "note_llm_model",
    "render_console",
    "render_json",
    "reset_request",
]

LogFormat = Literal["json", "console"]

DEFAULT_QUIET_LOGGERS: Mapping[str, str] = {
    # One INFO line per request ("Processing request of type ...") would break the
    # one-line-per-request contract; their warnings and errors still come through.
    "mcp": "WARNING",
    "httpx": "WARNING",
    "httpcore": "WARNING",
    "uvicorn.access": "WARNING",
    "sse_starlette": "WARNING",
}
"""Standard-library loggers held at a minimum level by :func:`configure_logging`."""

# Loggers that install their own handlers and stop propagation (FastMCP does so on
# import, uvicorn when given a log config); they are rerouted to the root handler.
_REROUTED_LOGGERS = ("fastmcp", "uvicorn", "uvicorn.error", "uvicorn.access")


class _UtcTimestamp:
    """Write a record's time as ISO 8601 UTC with milliseconds (``...T12:00:00.123Z``).

    The same text as ``moment.astimezone(UTC).isoformat(timespec="milliseconds")`` with
    ``Z`` for ``+00:00``, at half the cost: the date and time of day are formatted once
    per second and reused for every line written within it.
    """

    def __init__(self) -> None:
        self._last: tuple[int, str] = (0, "1970-01-01T00:00:00")

    def __call__(self, moment: datetime) -> str:
        # Offsets are whole seconds, so the sub-second part is the moment's own.
        second = int(moment.timestamp() // 1)
        last = self._last  # one tuple, read and replaced whole: safe across threads
        if last[0] != second:
            utc = time.gmtime(second)
            last = (
                second,
                f"{utc.tm_year:04d}-{utc.tm_mon:02d}-{utc.tm_mday:02d}"
                f"T{utc.tm_hour:02d}:{utc.tm_min:02d}:{utc.tm_sec:02d}",
            )
            self._last = last
        return f"{last[1]}.{moment.microsecond // 1000:03d}Z"


_utc_timestamp = _UtcTimestamp()
_BLANK_FIELDS: dict[str, object] = dict.fromkeys(REQUEST_LOG_FIELDS)
# Built once: json.dumps with options builds a new encoder for every line.
_JSON_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


def _log_fields(record: Record) -> dict[str, object]:
    fields = _BLANK_FIELDS.copy()  # schema order, every field present
    fields["timestamp"] = _utc_timestamp(record["time"])
    fields["level"] = record["level"].name
    fields["message"] = record["message"]
    context = current_request()
    if context is not None:
        fields["request_id"] = context.request_id
        fields["transport"] = context.transport
        fields["key_id"] = context.key_id
        fields["llm_model"] = context.llm_model
        fields["target"] = context.target
        fields["trace_id"] = context.trace_id
        fields["span_id"] = context.span_id
    span = trace.get_current_span()
    # Only a live span: a task may have inherited one that ended with another request.
    # Without a tracer provider every span is a non-recording one, and this stops here.
    if span.is_recording():
        span_context = span.get_span_context()
        if span_context.is_valid:
            fields["trace_id"] = trace.format_trace_id(span_context.trace_id)
            fields["span_id"] = trace.format_span_id(span_context.span_id)
    fields.update(record["extra"])
    if "logger" not in fields:
        fields["logger"] = record["name"]
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        fields["exception"] = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        ).rstrip()
    return fields


def render_json(record: Record) -> str:
    """Render a loguru record as one JSON object (no newline), fields in schema order.

    Args:
        record: The loguru record.

    Returns:
        The JSON text; values that JSON cannot hold are written with ``str``.
    """
    return _JSON_ENCODER.encode(_log_fields(record))


_CONSOLE_FIELDS = (
    "request_id",
    "event",
    "method",
    "target",
    "status",
    "error_type",
    "latency_ms",
    "llm_model",
    "key_id",
)


def render_console(record: Record) -> str:
    """Render a loguru record as one human-readable line (plus a traceback, if any).

    Args:
        record: The loguru record.

    Returns:
        ``<time> <LEVEL> <message> key=value ...`` with the set request fields.
    """
    fields = _log_fields(record)
    pairs = " ".join(
        f"{name}={fields[name]}" for name in _CONSOLE_FIELDS if fields[name] is not None
    )
    line = f"{fields['timestamp']} {fields['level']:<8} {fields['message']}"
    line = f"{line}  {pairs}" if pairs else line
    if "exception" in fields:
        line = f"{line}\n{fields['exception']}"
    return line


class InterceptHandler(logging.Handler):
    """A standard-library handler that forwards records to loguru (uvicorn, fastmcp, mcp).

    Example:
        ```python
        logging.getLogger().handlers = [InterceptHandler()]
        ```
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Forward one record, keeping its level, logger name and exception."""
        level: str | int
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).bind(logger=record.name).log(
            level, record.getMessage()
        )


def configure_logging(
    level: str = "INFO",
    fmt: LogFormat = "json",
    sink: TextIO | None = None,
    *,
    quiet_loggers: Mapping[str, str] = DEFAULT_QUIET_LOGGERS,
) -> Callable[[], None]:
    """Send all logs, loguru's and the standard library's, to one line-per-record sink.

    Replaces loguru's handlers, puts an :class:`InterceptHandler` on the root logger and
    reroutes loggers that had their own handlers. Call it once, from the entry point.

    Args:
        level: Minimum level (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``, ``CRITICAL``).
        fmt: ``json`` (one object per line) or ``console`` (for people).
        sink: The stream to write to; ``sys.stdout`` when ``None``.
        quiet_loggers: Standard-library loggers held at a minimum level.

    Returns:
        A function that drains and removes the sink, puts back loguru's default stderr
        sink and restores the previous standard-library configuration (for tests and
        for shutdown); calling it again does nothing.

    Raises:
        ValueError: If ``level`` or ``fmt`` is unknown; nothing is changed then.

    Example:
        ```python
        undo = configure_logging("INFO", "json")
        try:
            serve()
        finally:
            undo()  # writes every queued line
        ```
    """
    level = level.upper()
    numeric_level = logger.level(level).no  # ValueError for an unknown level
    if fmt not in ("json", "console"):
        raise ValueError(f"log format must be json or console, got {fmt!r}")
    render = render_json if fmt == "json" else render_console
    writer = BackgroundLineWriter(sys.stdout if sink is None else sink, render)
    logger.remove()
    handler_id = logger.add(
        writer, level=level, format="{message}", backtrace=False, diagnose=False, catch=True
    )

    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    root.handlers = [InterceptHandler()]
    root.setLevel(numeric_level)
    saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []
    for name in (*_REROUTED_LOGGERS, *quiet_loggers):
        library_logger = logging.getLogger(name)
        saved.append(
            (
                library_logger,
                list(library_logger.handlers),
                library_logger.propagate,
                library_logger.level,
            )
        )
        if name in _REROUTED_LOGGERS:
            library_logger.handlers = []
            library_logger.propagate = True
            library_logger.setLevel(logging.NOTSET)
        if name in quiet_loggers:
            library_logger.setLevel(max(numeric_level, logger.level(quiet_loggers[name]).no))

    def undo() -> None:
        try:
            logger.remove(handler_id)
        except ValueError:  # already removed: undone before, or replaced by a new set-up
            return
        logger.add(sys.stderr)  # loguru's import-time default
        root.handlers, level_before = saved_root
        root.setLevel(level_before)
        for library_logger, handlers, propagate, library_level in reversed(saved):
            library_logger.handlers = handlers
            library_logger.propagate = propagate
            library_logger.setLevel(library_level)

    return undo
