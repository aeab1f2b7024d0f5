"""OpenTelemetry tracing: an OTLP tracer provider when asked for, and HTTP span helpers.

FastMCP 3 already opens a SERVER span per MCP operation (``tools/call <name>``...) with
the API only; spans are recorded once a tracer provider is set. :func:`configure_tracing`
sets one when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
is set, exporting over OTLP/HTTP (extra ``otlp``). FastMCP does not read the
``traceparent`` HTTP header; ctxfy's ``RequestContextMiddleware`` does, with
:func:`http_server_span`, and the MCP middleware re-enters that context so FastMCP's
spans become its children, even in stateful sessions whose handlers run in another task.
Without a tracer provider it only makes the incoming span current: no tracer is looked up
and no no-op span is started per request (:func:`tracing_enabled`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from ctxfy.__about__ import __version__
from ctxfy.core.errors import ConfigurationError

__all__ = [
    "build_otlp_tracer_provider",
    "build_tracer_provider",
    "configure_tracing",
    "http_server_span",
    "tracing_enabled",
]

_TRUE = frozenset({"1", "true", "yes", "on"})


def build_tracer_provider(
    exporter: SpanExporter, *, service_name: str = "ctxfy", service_version: str = __version__
) -> TracerProvider:
    """Build a tracer provider that batches spans to ``exporter``.

    Args:
        exporter: Where finished spans go (OTLP in production, in memory in tests).
        service_name: The ``service.name`` resource attribute.
        service_version: The ``service.version`` resource attribute.

    Returns:
        A provider that is not yet global; pass it to ``trace.set_tracer_provider``.

    Example:
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter,
        ... )
        >>> provider = build_tracer_provider(InMemorySpanExporter())
    """
    resource = Resource.create({"service.name": service_name, "service.version": service_version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def build_otlp_tracer_provider(environ: Mapping[str, str]) -> TracerProvider | None:
    """Build an OTLP/HTTP tracer provider from the standard ``OTEL_*`` variables.

    Args:
        environ: The environment; tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set and ``OTEL_SDK_DISABLED`` is not
            true. ``OTEL_SERVICE_NAME`` overrides the service name. Headers, timeout and
            compression are read by the exporter from ``OTEL_EXPORTER_OTLP_*`` itself.

    Returns:
        The provider, or ``None`` when tracing is off.

    Raises:
        ConfigurationError: If an endpoint is set but the ``otlp`` extra is not installed.
    """
    traces_endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base_endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not (traces_endpoint or base_endpoint):
        return None
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return None
    try:
        exporter_module = importlib.import_module(
            "opentelemetry.exporter.otlp.proto.http.trace_exporter"
        )
    except ImportError as exc:
        raise ConfigurationError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed; "
            "install it with: pip install 'ctxfy[otlp]'"
        ) from exc
    # An explicit endpoint argument is used verbatim, so add the signal path as the
    # exporter itself would for OTEL_EXPORTER_OTLP_ENDPOINT.
    endpoint = traces_endpoint or f"{base_endpoint.rstrip('/')}/v1/traces"
    service_name = environ.get("OTEL_SERVICE_NAME", "").strip() or "ctxfy"
    exporter: SpanExporter = exporter_module.OTLPSpanExporter(endpoint=endpoint)
    return build_tracer_provider(exporter, service_name=service_name)


def configure_tracing(environ: Mapping[str, str]) -> Callable[[], None] | None:
    """Set the global tracer provider when OTLP export is configured (entry point only).

    Args:
        environ: The environment, see :func:`build_otlp_tracer_provider`.

    Returns:
        A function that flushes and shuts the provider down, or ``None`` when tracing
        is off (FastMCP's spans then stay no-ops).

    Raises:
        ConfigurationError: If an endpoint is set but the ``otlp`` extra is not installed.

    Example:
        ```python
        shutdown = configure_tracing(os.environ)
        try:
            serve()
        finally:
            if shutdown is not None:
                shutdown()
        ```
    """
    provider = build_otlp_tracer_provider(environ)
    if provider is None:
        return None
    trace.set_tracer_provider(provider)
    return provider.shutdown


@contextmanager
def http_server_span(
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    record: bool = True,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[trace.Span]:
    """Open the SERVER span of one HTTP request, continuing an incoming ``traceparent``.

    Args:
        headers: The request headers (lower-case names), read by the global propagator.
        method: The HTTP method, which names the span until the route is known.
        path: The request path (``url.path``).
        record: ``False`` only continues the incoming context without a new span, for
            cheap routes such as ``/health``.
        tracer_provider: A provider to use instead of the global one (tests).

    Yields:
        The span (non-recording when tracing is off; it still carries the incoming ids).
    """
    parent = propagate.extract(headers)
    if not record:
        token = otel_context.attach(parent)
        try:
            yield trace.get_current_span()
        finally:
            otel_context.detach(token)
        return
    if not tracing_enabled(tracer_provider):
        # What the no-op tracer's start_as_current_span does, without a tracer per request:
        # the "span" is the incoming one (or the invalid span), made current.
        span = trace.get_current_span(parent)
        if not isinstance(span, trace.NonRecordingSpan):
            span = trace.NonRecordingSpan(span.get_span_context())
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield span
        finally:
            otel_context.detach(token)
        return
    tracer = trace.get_tracer("ctxfy", __version__, tracer_provider)
    attributes = {"http.request.method": method, "url.path": path}
    with tracer.start_as_current_span(
        method, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


def tracing_enabled(tracer_provider: trace.TracerProvider | None = None) -> bool:
    """Tell whether spans started through ``tracer_provider`` can be recorded.

    Args:
        tracer_provider: A provider, or ``None`` for the global one.

    Returns:
        ``False`` for the API's no-op provider and for the global proxy before a real
        provider is set (no ``configure_tracing``); ``True`` otherwise.

    Example:
        >>> tracing_enabled(trace.NoOpTracerProvider())
        False
    """
    if tracer_provider is None or isinstance(tracer_provider, trace.ProxyTracerProvider):
        # The proxy hands out real tracers once a global provider is set: ask it again.
        tracer_provider = trace.get_tracer_provider()
    return not isinstance(tracer_provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
