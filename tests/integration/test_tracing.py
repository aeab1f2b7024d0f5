"""Traces: an incoming traceparent reaches spans and log lines; OTLP set-up from OTEL_*."""

import asyncio
import io
import json
import sys
import types
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.request_log import RequestContextMiddleware, RequestLogMiddleware
from ctxfy.adapters.tracing import build_otlp_tracer_provider, configure_tracing
from ctxfy.core.errors import ConfigurationError

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Record every span in memory through the global tracer provider FastMCP uses."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The API sets the global provider only once per process; tests swap it instead.
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


@asynccontextmanager
async def serve(app: ASGIApp, port: int) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def traced_app() -> ASGIApp:
    mcp = FastMCP("traced", middleware=[RequestLogMiddleware()])

    @mcp.prompt
    def greet(name: str) -> str:
        return f"Hello {name}"

    @mcp.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = mcp.http_app(path="/mcp")
    app.add_middleware(RequestContextMiddleware)
    return app


def hex_id(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


async def test_traceparent_continues_into_fastmcp_spans_and_log_lines(
    spans: InMemorySpanExporter, unused_port: int
) -> None:
    stream = io.StringIO()
    undo = configure_logging("DEBUG", "json", stream)
    try:
        async with serve(traced_app(), unused_port) as base:
            transport = StreamableHttpTransport(f"{base}/mcp", headers={"traceparent": TRACEPARENT})
            async with Client(transport) as client:
                await client.get_prompt("greet", {"name": "Ada"})
            async with httpx.AsyncClient() as http:
                await http.get(f"{base}/health", headers={"traceparent": TRACEPARENT})
    finally:
        undo()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [prompt_line] = [line for line in lines if line["method"] == "prompts/get"]
    [health_line] = [line for line in lines if line["method"] == "GET /health"]
    finished: Sequence[ReadableSpan] = spans.get_finished_spans()

    assert prompt_line["trace_id"] == TRACE_ID
    [http_span] = [
        span
        for span in finished
        if span.context is not None and hex_id(span.context.span_id, 16) == prompt_line["span_id"]
    ]
    assert http_span.kind is trace.SpanKind.SERVER
    assert http_span.name == "POST /mcp"
    assert http_span.parent is not None
    assert hex_id(http_span.parent.span_id, 16) == PARENT_ID

    # FastMCP's own span is a child of the HTTP span, although stateful sessions run the
    # handler in another task.
    [prompt_span] = [
        span
        for span in finished
        if span.name == "prompts/get greet" and span.kind is trace.SpanKind.SERVER
    ]
    assert prompt_span.context is not None
    assert hex_id(prompt_span.context.trace_id, 32) == TRACE_ID
    assert prompt_span.parent is not None
    assert hex_id(prompt_span.parent.span_id, 16) == prompt_line["span_id"]

    # Health probes continue the trace in their log line but make no span of their own.
    assert (health_line["trace_id"], health_line["span_id"]) == (TRACE_ID, PARENT_ID)
    assert not [span for span in finished if "/health" in span.name]


async def test_requests_without_traceparent_start_their_own_trace(
    spans: InMemorySpanExporter, unused_port: int
) -> None:
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with serve(traced_app(), unused_port) as base, Client(f"{base}/mcp") as client:
            await client.get_prompt("greet", {"name": "Ada"})
    finally:
        undo()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [prompt_line] = [line for line in lines if line["method"] == "prompts/get"]
    assert prompt_line["trace_id"] not in (None, TRACE_ID)
    assert len(prompt_line["trace_id"]) == 32


def test_tracing_is_off_without_an_endpoint() -> None:
    before = trace.get_tracer_provider()
    assert build_otlp_tracer_provider({}) is None
    assert configure_tracing({"OTEL_SERVICE_NAME": "x"}) is None
    assert trace.get_tracer_provider() is before


def test_disabled_sdk_wins_over_an_endpoint() -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    assert build_otlp_tracer_provider(environ) is None


def test_a_missing_otlp_extra_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, OTLP_MODULE, None)
    with pytest.raises(ConfigurationError, match=r"OTEL_EXPORTER_OTLP_ENDPOINT.*ctxfy\[otlp\]"):
        build_otlp_tracer_provider({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})


class FakeOTLPExporter(SpanExporter):
    endpoints: list[str] = []  # noqa: RUF012 - collects constructor calls for the test

    def __init__(self, endpoint: str) -> None:
        self.endpoints.append(endpoint)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"},
            "http://127.0.0.1:4318/v1/traces",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9999/custom",
            },
            "http://127.0.0.1:9999/custom",
        ),
    ],
)
def test_otlp_exporter_gets_the_traces_endpoint(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], endpoint: str
) -> None:
    module: Any = types.ModuleType(OTLP_MODULE)
    module.OTLPSpanExporter = FakeOTLPExporter
    monkeypatch.setitem(sys.modules, OTLP_MODULE, module)
    monkeypatch.setattr(FakeOTLPExporter, "endpoints", [])
    provider = build_otlp_tracer_provider({**environ, "OTEL_SERVICE_NAME": "ctxfy-test"})
    assert provider is not None
    try:
        assert FakeOTLPExporter.endpoints == [endpoint]
        assert provider.resource.attributes["service.name"] == "ctxfy-test"
    finally:
        provider.shutdown()
