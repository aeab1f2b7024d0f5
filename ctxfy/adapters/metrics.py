"""OpenTelemetry metrics exported in the Prometheus text format.

:class:`OtelMetricsRecorder` implements the core ``MetricsRecorder`` port with
instruments named by the OpenTelemetry semantic conventions for MCP, GenAI and HTTP.
:func:`build_prometheus_metrics` (called by the entry point, never on import) creates a
``MeterProvider`` whose ``PrometheusMetricReader`` writes to a registry of its own, adds
the process, platform and GC collectors to it, and serves it at ``/metrics``. Nothing is
registered globally, so several servers (or tests) can live in one process.

The exporter turns dotted names into Prometheus names and appends the unit and
``_total``: ``mcp.server.operation.duration`` (unit ``s``) becomes
``mcp_server_operation_duration_seconds_bucket`` and friends, and the counter
``ctxfy.auth.failures`` becomes ``ctxfy_auth_failures_total``.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio.to_thread
import attrs
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import MeterProvider as MeterProviderApi
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ctxfy.__about__ import __version__
from ctxfy.core.telemetry import TargetKind

__all__ = [
    "LLM_DURATION_BUCKETS",
    "PROMETHEUS_TEXT_CONTENT_TYPE",
    "REQUEST_DURATION_BUCKETS",
    "OtelMetricsRecorder",
    "PrometheusMetrics",
    "build_prometheus_metrics",
    "metric_views",
]

REQUEST_DURATION_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds; from half a millisecond (a cached prompt render) to ten seconds."""

LLM_DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
"""Seconds; the boundaries the GenAI semantic conventions advise for LLM calls."""

# The classic text format, which every Prometheus version scrapes; generate_latest writes
# it (names are legacy-valid, so the 1.0.0 escaping changes nothing).
PROMETHEUS_TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_OPERATION = "mcp.server.operation.duration"
_LLM = "gen_ai.client.operation.duration"
_HTTP = "http.server.request.duration"
_TARGET_ATTRIBUTE: dict[TargetKind, str] = {
    "tool": "gen_ai.tool.name",
    "prompt": "gen_ai.prompt.name",
    "resource": "mcp.resource.uri",
}


def metric_views() -> list[View]:
    """Return the views that give each duration histogram its bucket boundaries."""
    return [
        View(
            instrument_name=name,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=buckets),
        )
        for name, buckets in (
            (_OPERATION, REQUEST_DURATION_BUCKETS),
            (_HTTP, REQUEST_DURATION_BUCKETS),
            (_LLM, LLM_DURATION_BUCKETS),
        )
    ]


class OtelMetricsRecorder:
    """The ``MetricsRecorder`` port on OpenTelemetry instruments.

    Args:
        meter_provider: Any OpenTelemetry meter provider; give it :func:`metric_views`
            for millisecond-friendly buckets.

    Example:
        >>> from opentelemetry.sdk.metrics import MeterProvider
        >>> recorder = OtelMetricsRecorder(MeterProvider(views=metric_views()))
        >>> recorder.count_rate_limited()
    """

    def __init__(self, meter_provider: MeterProviderApi) -> None:
        meter = meter_provider.get_meter("ctxfy", __version__)
        self._operation = meter.create_histogram(
            _OPERATION, unit="s", description="Duration of MCP requests handled by the server."
        )
        self._llm = meter.create_histogram(
            _LLM, unit="s", description="Duration of LLM calls made for tools."
        )
        self._http = meter.create_histogram(
            _HTTP, unit="s", description="Duration of HTTP requests, MCP endpoint included."
        )
        self._auth_failures = meter.create_counter(
            "ctxfy.auth.failures", unit="{failure}", description="Rejected credentials."
        )
        self._rate_limited = meter.create_counter(
            "ctxfy.rate_limit.blocks", unit="{request}", description="Requests rate limited."
        )
        self._validation = meter.create_counter(
            "ctxfy.validation.rejections",
            unit="{request}",
            description="Requests refused by argument validation.",
        )
        self._injection = meter.create_counter(
            "ctxfy.injection.flags",
            unit="{flag}",
            description="Arguments flagged as possible prompt injection.",
        )

    def record_operation(
        self,
        *,
        method: str,
        target_kind: TargetKind | None,
        target: str | None,
        duration_s: float,
        error_type: str | None,
    ) -> None:
        """Record ``mcp.server.operation.duration``."""
        attributes = {"mcp.method.name": method}
        if target_kind is not None and target is not None:
            attributes[_TARGET_ATTRIBUTE[target_kind]] = target
        if error_type is not None:
            attributes["error.type"] = error_type
        self._operation.record(duration_s, attributes)

    def record_llm_call(self, *, model: str, duration_s: float, error_type: str | None) -> None:
        """Record ``gen_ai.client.operation.duration``."""
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        if error_type is not None:
            attributes["error.type"] = error_type
        self._llm.record(duration_s, attributes)

    def record_http(
        self, *, method: str, route: str | None, status: int, duration_s: float
    ) -> None:
        """Record ``http.server.request.duration``."""
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "http.response.status_code": status,
        }
        if route is not None:
            attributes["http.route"] = route
        if status >= 500:
            attributes["error.type"] = str(status)
        self._http.record(duration_s, attributes)

    def count_auth_failure(self, reason: str) -> None:
        """Count ``ctxfy.auth.failures`` by ``reason``."""
        self._auth_failures.add(1, {"reason": reason})

    def count_rate_limited(self) -> None:
        """Count ``ctxfy.rate_limit.blocks``."""
        self._rate_limited.add(1)

    def count_validation_rejection(self, rule: str) -> None:
        """Count ``ctxfy.validation.rejections`` by ``rule``."""
        self._validation.add(1, {"rule": rule})

    def count_injection_flag(self, pattern: str) -> None:
        """Count ``ctxfy.injection.flags`` by ``pattern``."""
        self._injection.add(1, {"pattern": pattern})


@attrs.frozen
class PrometheusMetrics:
    """A recorder, its meter provider and the Prometheus registry they export to.

    Attributes:
        recorder: Pass it to the middlewares and adapters that record metrics.
        meter_provider: The provider; call :meth:`shutdown` when the server stops.
        registry: The registry ``/metrics`` serves (OpenTelemetry and process metrics).
    """

    recorder: OtelMetricsRecorder
    meter_provider: MeterProvider
    registry: CollectorRegistry

    def render(self) -> bytes:
        """Return the current metrics in the Prometheus text format."""
        return bytes(generate_latest(self.registry))

    async def endpoint(self, request: Request) -> Response:
        """Serve :meth:`render` (a Starlette endpoint; rendering runs off the event loop)."""
        body = await anyio.to_thread.run_sync(self.render)
        return Response(body, media_type=PROMETHEUS_TEXT_CONTENT_TYPE)

    def route(self, path: str = "/metrics") -> Route:
        """Return a ``GET`` route serving the metrics at ``path``."""
        return Route(path, self.endpoint, methods=["GET"], name="metrics")

    def shutdown(self) -> None:
        """Stop the meter provider and detach it from the registry."""
        self.meter_provider.shutdown()


def build_prometheus_metrics(
    *,
    service_name: str = "ctxfy",
    process_metrics: bool = True,
    views: Sequence[View] | None = None,
) -> PrometheusMetrics:
    """Create a meter provider exporting to a new Prometheus registry.

    Args:
        service_name: The ``service.name`` resource attribute (shown in ``target_info``).
        process_metrics: Add the ``process_*``, ``python_info`` and ``python_gc_*`` metrics.
        views: Views to use instead of :func:`metric_views`.

    Returns:
        The recorder, provider and registry.

    Example:
        >>> metrics = build_prometheus_metrics()
        >>> metrics.recorder.count_auth_failure("invalid")
        >>> b"ctxfy_auth_failures_total" in metrics.render()
        True
    """
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
    provider = MeterProvider(
        metric_readers=[reader],
        views=list(metric_views() if views is None else views),
        resource=Resource.create({"service.name": service_name, "service.version": __version__}),
        # The Prometheus exporter drops exemplars: sampling them (for every measurement
        # made inside a sampled trace) would only cost time.
        exemplar_filter=AlwaysOffExemplarFilter(),
    )
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return PrometheusMetrics(
        recorder=OtelMetricsRecorder(provider), meter_provider=provider, registry=registry
    )
