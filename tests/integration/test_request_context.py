"""The HTTP request context keeps what users see while taking the cheap paths.

Without a tracer provider the middleware starts no (no-op) span, yet the incoming trace
still reaches log lines and the OpenTelemetry context; request ids are random version 4
UUIDs; the request id header is read from one pass over the raw headers.
"""

import asyncio
import io
import json
import uuid
from typing import Any

import httpx
import pytest
from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from loguru import logger
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.request_log import (
    RequestContextMiddleware,
    RequestLogMiddleware,
    new_request_id,
)
from ctxfy.adapters.tracing import http_server_span, tracing_enabled
from tests.conftest import ServeHttp
from tests.integration.mcp_session import open_session

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def no_global_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as a process without ``configure_tracing``: the API's proxy provider."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)


async def echo_span(request: Request) -> Response:
    ids = trace.get_current_span().get_span_context()
    return JSONResponse(
        {
            "trace_id": trace.format_trace_id(ids.trace_id),
            "span_id": trace.format_span_id(ids.span_id),
            "recording": trace.get_current_span().is_recording(),
        }
    )


def app(provider: trace.TracerProvider | None = None) -> RequestContextMiddleware:
    return RequestContextMiddleware(
        Starlette(routes=[Route("/echo", echo_span)]), tracer_provider=provider
    )


async def get(
    asgi: RequestContextMiddleware, headers: dict[str, str]
) -> tuple[httpx.Response, list[dict[str, object]]]:
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/echo", headers=headers)
    finally:
        undo()
    return response, [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("no_global_provider")
async def test_an_incoming_trace_reaches_the_line_and_the_context_without_a_provider() -> None:
    response, lines = await get(app(), {"traceparent": TRACEPARENT})
    [line] = lines
    assert (line["trace_id"], line["span_id"]) == (TRACE_ID, PARENT_ID)
    assert response.json() == {"trace_id": TRACE_ID, "span_id": PARENT_ID, "recording": False}


@pytest.mark.usefixtures("no_global_provider")
async def test_without_an_incoming_trace_there_are_no_ids() -> None:
    response, [line] = await get(app(), {})
    assert (line["trace_id"], line["span_id"]) == (None, None)
    assert response.json()["trace_id"] == "0" * 32


async def test_a_provider_given_to_the_middleware_records_the_server_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    response, [line] = await get(app(provider), {"traceparent": TRACEPARENT})
    [span] = exporter.get_finished_spans()
    assert span.name == "GET /echo"
    assert span.context is not None
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert line["span_id"] == format(span.context.span_id, "016x") != PARENT_ID
    assert response.json()["recording"] is True


@pytest.mark.usefixtures("no_global_provider")
def test_a_no_op_span_is_the_incoming_one_made_current() -> None:
    with http_server_span({"traceparent": TRACEPARENT}, method="GET", path="/") as span:
        assert trace.get_current_span() is span
        assert not span.is_recording()
        assert trace.format_trace_id(span.get_span_context().trace_id) == TRACE_ID
    assert trace.get_current_span() is trace.INVALID_SPAN


@pytest.mark.usefixtures("no_global_provider")
def test_tracing_is_off_until_a_real_provider_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not tracing_enabled()
    assert not tracing_enabled(trace.NoOpTracerProvider())
    assert not tracing_enabled(trace.ProxyTracerProvider())
    provider = TracerProvider()
    assert tracing_enabled(provider)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    assert tracing_enabled()
    assert tracing_enabled(trace.ProxyTracerProvider())  # the proxy now hands out real tracers


def test_request_ids_are_random_version_4_uuids() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert (parsed.hex, parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_request_id_bits_outside_version_and_variant_vary() -> None:
    ids = [new_request_id() for _ in range(200)]
    values = [int(text, 16) for text in ids]
    fixed = {76, 77, 78, 79, 62, 63}  # version nibble and variant bits
    for bit in set(range(128)) - fixed:
        assert len({(value >> bit) & 1 for value in values}) == 2, bit


async def test_the_first_of_repeated_request_id_headers_is_adopted() -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(
            "/echo", headers=[("X-Request-ID", "first-id"), ("X-Request-ID", "second-id")]
        )
    assert response.headers.get_list("x-request-id") == ["first-id"]


class HoldFirstRequest:
    """ASGI middleware keeping the first request open after its answer was sent."""

    def __init__(self, app: ASGIApp, *, release: asyncio.Event) -> None:
        self.app = app
        self.release = release
        self._held = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = scope["type"] == "http" and not self._held
        self._held = self._held or first
        await self.app(scope, receive, send)
        if first:
            await self.release.wait()


class SayEarly(Middleware):
    """Logs a line before RequestLogMiddleware binds the request's context."""

    async def on_request(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        logger.bind(event="test.early").info("early line of {}", context.method)
        return await call_next(context)


async def test_early_lines_of_a_session_request_carry_its_own_id(serve_http: ServeHttp) -> None:
    mcp = FastMCP("ids", middleware=[SayEarly(), RequestLogMiddleware()])

    @mcp.prompt
    def greet(name: str) -> str:
        return f"Hello {name}"

    release = asyncio.Event()
    app = mcp.http_app(path="/mcp")
    app.add_middleware(HoldFirstRequest, release=release)
    app.add_middleware(RequestContextMiddleware, mcp_path="/mcp")
    headers = {"Accept": "application/json, text/event-stream"}
    sink = io.StringIO()
    undo = configure_logging("INFO", "json", sink)
    try:
        async with (
            serve_http(app) as base,
            httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http,
        ):
            # The initialize POST is answered, but its request is not over yet.
            opened = await open_session(http, request_id=1)
            get = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "prompts/get",
                "params": {"name": "greet", "arguments": {"name": "Ada"}},
            }
            answered = await http.post("/mcp", json=get)
            release.set()
    finally:
        undo()
    lines = [json.loads(line) for line in sink.getvalue().splitlines() if line]
    [early] = [line for line in lines if line["message"] == "early line of prompts/get"]
    assert early["request_id"] == answered.headers["X-Request-ID"]
    assert early["request_id"] != opened.headers["X-Request-ID"]
