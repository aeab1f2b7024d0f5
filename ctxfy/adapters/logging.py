"""JSON request logs with loguru: the sink, the line schema and the request context.

Only the entry point calls :func:`configure_logging`; importing ctxfy adds no sink.
Every line, including audit events and library logs routed from the standard
``logging`` module, picks up the current :class:`RequestContext` (request id, key id,
LLM model) and the current OpenTelemetry span ids.

Lines never block the event loop: the sink renders the line in the caller (cheap) and
hands it to an unbounded in-process queue that one writer thread drains to the stream
every 50 ms. Nothing is dropped; removing the sink (the undo function, or loguru's own
``atexit`` hook) drains the queue before returning. This is preferred to loguru's
``enqueue=True``, which pickles every record through a multiprocessing pipe that blocks
when full. The writer wakes on a timer, not on each line: waking a thread per line cost a
GIL hand-off per request, measured at about 300 µs of CPU per request on two cores
(``docs/performance.md``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Literal, TextIO

import attrs
from loguru import logger
from opentelemetry import trace

from ctxfy.core.telemetry import REQUEST_LOG_FIELDS

if TYPE_CHECKING:
    from loguru import Message, Record
    from opentelemetry.context import Context

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
    finished: bool = False
    otel_context: Context | None = None


_CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "ctxfy_request", default=None
)


def current_request() -> RequestContext | None:
    """Return the context of the request being served, or ``None`` outside requests."""
    context = _CURRENT.get()
    return None if context is None or context.finished else context


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


def _log_fields(record: Record) -> dict[str, object]:
    fields: dict[str, object] = dict.fromkeys(REQUEST_LOG_FIELDS)
    fields["timestamp"] = (
        record["time"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
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
    span_context = span.get_span_context()
    # Only a live span: a task may have inherited one that ended with another request.
    if span.is_recording() and span_context.is_valid:
        fields["trace_id"] = trace.format_trace_id(span_context.trace_id)
        fields["span_id"] = trace.format_span_id(span_context.span_id)
    fields.update(record["extra"])
    fields.setdefault("logger", record["name"])
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
    return json.dumps(_log_fields(record), default=str, ensure_ascii=False)


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


class BackgroundLineWriter:
    """A loguru sink that renders in the caller and writes from a background thread.

    The thread writes whatever is queued every ``interval`` seconds (and once more when
    stopped); queuing a line never wakes it.

    Args:
        stream: Where lines go (``sys.stdout`` in production).
        render: Turns a record into one line of text (without the newline).
        interval: Seconds between writes; a line reaches the stream at most this late.

    Example:
        ```python
        writer = BackgroundLineWriter(sys.stdout, render_json)
        handler_id = logger.add(writer, format="{message}")
        logger.remove(handler_id)  # drains the queue and stops the thread
        ```
    """

    def __init__(
        self, stream: TextIO, render: Callable[[Record], str], *, interval: float = 0.05
    ) -> None:
        self._stream = stream
        self._render = render
        self._interval = interval
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = threading.Thread(
            target=self._drain, name="ctxfy-log-writer", daemon=True
        )
        self._thread.start()

    def write(self, message: Message) -> None:
        """Render ``message.record`` and queue the line; never blocks on I/O."""
        self._queue.put(self._render(message.record) + "\n")

    def stop(self) -> None:
        """Write every queued line, flush, and end the thread (loguru calls this on remove)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join()

    def _drain(self) -> None:
        while True:
            stopping = self._stopping.wait(self._interval)
            lines: list[str] = []
            with contextlib.suppress(queue.Empty):
                while True:
                    lines.append(self._queue.get_nowait())
            if lines:
                try:
                    self._stream.write("".join(lines))
                    self._stream.flush()
                except (OSError, ValueError):  # pragma: no cover - stdout closed: nowhere to write
                    pass
            if stopping:
                return


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
