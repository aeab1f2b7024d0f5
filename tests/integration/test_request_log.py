"""Request lines over real HTTP: one per request, ids that match, metrics that agree."""

import asyncio
import io
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastmcp import Client, Context, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import CallNext, MiddlewareContext
from fastmcp.server.middleware import Middleware as FastMCPMiddleware
from fastmcp.tools import ToolResult
from loguru import logger
from mcp import McpError
from mcp.types import CreateMessageResult, ErrorData, TextContent
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ctxfy.adapters.logging import configure_logging, note_key_id, note_llm_model
from ctxfy.adapters.metrics import build_prometheus_metrics
from ctxfy.adapters.request_log import RequestContextMiddleware, RequestLogMiddleware
from ctxfy.adapters.validation import RequestValidationMiddleware
from ctxfy.core.telemetry import (
    REQUEST_LOG_FIELDS,
    ArgumentLogging,
    MetricsRecorder,
    valid_request_id,
)
from ctxfy.testing import RecordingMetrics

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
REQUEST_EVENTS = {"mcp.request", "http.request"}


class RejectStrict(FastMCPMiddleware):
    """Stands in for argument validation, which answers invalid params with -32602."""

    async def on_get_prompt(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        if context.message.name == "strict":
            raise McpError(ErrorData(code=-32602, message="name: too short"))
        return await call_next(context)


def observed_server(metrics: MetricsRecorder) -> FastMCP:
    mcp = FastMCP(
        "observed",
        middleware=[RequestLogMiddleware(metrics=metrics, log_arguments="sizes"), RejectStrict()],
    )

    @mcp.prompt
    def greet(name: str) -> str:
        return f"Hello {name}"

    @mcp.prompt
    def strict(name: str) -> str:
        return name

    @mcp.tool
    async def draft(task: str, ctx: Context) -> str:
        step = await ctx.sample_step(task)
        note_llm_model(step.response.model)
        return step.text or ""

    @mcp.tool
    def explode() -> str:
        raise ToolError("nope")

    @mcp.custom_route("/hello", methods=["GET"])
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hi")

    @mcp.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return mcp


class FakeAuth:
    """Stands in for API-key auth, which runs inside the request context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            if headers.get("x-deny"):
                logger.bind(event="auth.failed", outcome="denied").warning("audit auth.failed")
                await PlainTextResponse("denied", status_code=401)(scope, receive, send)
                return
            if key := headers.get("x-test-key"):
                note_key_id(key)
        await self.app(scope, receive, send)


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


class Exchanges:
    """httpx hooks that tag some requests with ids and keep every response's headers."""

    def __init__(self) -> None:
        self.sent = 0
        self.seen: list[tuple[str, str, int, str | None, str | None]] = []

    async def tag(self, request: httpx.Request) -> None:
        self.sent += 1
        if self.sent == 5:
            request.headers["X-Request-ID"] = "not a valid id!"
        elif self.sent % 3 == 0:
            request.headers["X-Request-ID"] = f"client-{self.sent}"

    async def keep(self, response: httpx.Response) -> None:
        request = response.request
        self.seen.append(
            (
                request.method,
                request.url.path,
                response.status_code,
                request.headers.get("x-request-id"),
                response.headers.get("x-request-id"),
            )
        )

    def client(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        auth: httpx.Auth | None = None,
        **options: Any,
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers=headers,
            timeout=timeout or httpx.Timeout(30.0),
            auth=auth,
            **options,
            event_hooks={"request": [self.tag], "response": [self.keep]},
        )


async def sample(messages: Any, params: Any, context: Any) -> CreateMessageResult:
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text="a draft"), model="fake-model-1"
    )


def metric_counts(text: str, family: str) -> Counter[tuple[tuple[str, str], ...]]:
    counts: Counter[tuple[tuple[str, str], ...]] = Counter()
    for metrics_family in text_string_to_metric_families(text):
        if metrics_family.name != family:
            continue
        for sample_ in metrics_family.samples:
            if sample_.name == f"{family}_count":
                counts[tuple(sorted(sample_.labels.items()))] += int(sample_.value)
    return counts


async def test_mixed_workload_gives_one_line_per_request_and_agreeing_metrics(
    unused_port: int,
) -> None:
    metrics = build_prometheus_metrics(process_metrics=False)
    mcp = observed_server(metrics.recorder)
    app = mcp.http_app(path="/mcp", middleware=[Middleware(FakeAuth)])
    app.add_middleware(RequestContextMiddleware, metrics=metrics.recorder)
    stream = io.StringIO()
    undo = configure_logging("DEBUG", "json", stream)
    exchanges = Exchanges()
    try:
        async with serve(app, unused_port) as base:
            transport = StreamableHttpTransport(
                f"{base}/mcp",
                headers={"X-Test-Key": "key-test"},
                httpx_client_factory=exchanges.client,
            )
            async with Client(transport, sampling_handler=sample) as client:
                for name in ("Ada", "Grace", "Edsger"):
                    await client.get_prompt("greet", {"name": name})
                with pytest.raises(McpError):
                    await client.get_prompt("strict", {"name": "x"})
                with pytest.raises(McpError):
                    await client.get_prompt("missing", {})
                assert (await client.call_tool("draft", {"task": "plan"})).data == "a draft"
                assert (await client.call_tool("draft", {"task": "more"})).data == "a draft"
                with pytest.raises(ToolError):
                    await client.call_tool("explode", {})
                await client.list_tools()
            async with exchanges.client() as http:
                for path in ("/hello", "/hello", "/health", "/health", "/missing"):
                    await http.get(f"{base}{path}")
                await http.post(f"{base}/mcp", headers={"X-Deny": "1"}, json={})
    finally:
        undo()

    raw_lines = stream.getvalue().splitlines()
    lines = [json.loads(line) for line in raw_lines]
    for line in lines:
        assert set(REQUEST_LOG_FIELDS) <= set(line), line
        assert TIMESTAMP.fullmatch(line["timestamp"])
    requests = [line for line in lines if line["event"] in REQUEST_EVENTS]

    # One request line per HTTP exchange, with the id its response carried.
    assert len(requests) == len(exchanges.seen)
    header_ids = [response_id for *_, response_id in exchanges.seen if response_id is not None]
    assert len(header_ids) == len(exchanges.seen)
    assert len(set(header_ids)) == len(header_ids)
    assert sorted(line["request_id"] for line in requests) == sorted(header_ids)
    for _method, _path, _status, sent_id, response_id in exchanges.seen:
        if sent_id is not None and valid_request_id(sent_id):
            assert response_id == sent_id
        else:
            assert response_id != sent_id
            assert response_id is not None
            assert valid_request_id(response_id)
    assert any(sent == "not a valid id!" for *_, sent, _ in exchanges.seen)

    mcp_lines = [line for line in requests if line["event"] == "mcp.request"]
    by_call = Counter((line["method"], line["target"], line["status"]) for line in mcp_lines)
    assert by_call[("prompts/get", "greet", "ok")] == 3
    assert by_call[("prompts/get", "strict", "-32602")] == 1
    assert by_call[("prompts/get", "missing", "0")] == 1
    assert by_call[("tools/call", "draft", "ok")] == 2
    assert by_call[("tools/call", "explode", "tool_error")] == 1
    assert by_call[("initialize", None, "ok")] == 1
    assert all(line["key_id"] == "key-test" for line in mcp_lines)
    assert all(line["transport"] == "streamable-http" for line in mcp_lines)
    assert all(isinstance(line["latency_ms"], float) for line in requests)
    for line in requests:
        expected_model = "fake-model-1" if line["target"] == "draft" else None
        assert line["llm_model"] == expected_model, line
    [strict_line] = [line for line in mcp_lines if line["target"] == "strict"]
    assert strict_line["error_type"] == "invalid_params"
    assert [line["arguments"] for line in mcp_lines if line["target"] == "greet"] == [
        {"name": 3},
        {"name": 5},
        {"name": 6},
    ]

    http_lines = [line for line in requests if line["event"] == "http.request"]
    by_route = Counter((line["method"], line["status"], line["level"]) for line in http_lines)
    assert by_route[("GET /hello", "ok", "INFO")] == 2
    assert by_route[("GET /health", "ok", "DEBUG")] == 2
    assert by_route[("GET /missing", "404", "WARNING")] == 1
    assert by_route[("POST /mcp", "401", "WARNING")] == 1
    [denied] = [line for line in http_lines if line["status"] == "401"]
    [audit] = [line for line in lines if line["event"] == "auth.failed"]
    assert audit["request_id"] == denied["request_id"]
    assert denied["error_type"] == "unauthorized"

    # Metrics count exactly what the lines report.
    text = metrics.render().decode()
    operations = metric_counts(text, "mcp_server_operation_duration_seconds")
    assert sum(operations.values()) == len(mcp_lines)
    greet_labels = (
        ("error_type", ""),
        ("gen_ai_prompt_name", "greet"),
        ("gen_ai_tool_name", ""),
        ("mcp_method_name", "prompts/get"),
    )
    assert operations[greet_labels] == 3
    http_counts = metric_counts(text, "http_server_request_duration_seconds")
    assert sum(http_counts.values()) == len(exchanges.seen)
    health = sum(n for labels, n in http_counts.items() if ("http_route", "/health") in labels)
    assert health == 2


async def test_in_memory_requests_get_their_own_ids_and_no_internal_lines() -> None:
    metrics = build_prometheus_metrics(process_metrics=False)
    mcp = observed_server(metrics.recorder)
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with Client(mcp) as client:
            # call_tool_mcp: the client does not list tools itself, but the SDK's tool
            # cache is cold, so the server runs tools/list internally before the call.
            result = await client.call_tool_mcp("explode", {})
            assert result.isError
            await client.get_prompt("greet", {"name": "Ada"})
    finally:
        undo()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [line for line in lines if line["event"] == "mcp.request"]
    assert [(line["method"], line["status"]) for line in requests] == [
        ("initialize", "ok"),
        ("tools/call", "tool_error"),
        ("prompts/get", "ok"),
    ]
    assert len({line["request_id"] for line in requests}) == 3
    assert {line["transport"] for line in requests} == {"memory"}
    operations = metric_counts(metrics.render().decode(), "mcp_server_operation_duration_seconds")
    assert sum(operations.values()) == 3


def request_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["event"] in REQUEST_EVENTS]


async def test_http_lines_name_the_route_and_metrics_use_its_template() -> None:
    async def item(request: Request) -> Response:
        return PlainTextResponse(request.path_params["item_id"])

    async def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    metrics = RecordingMetrics()
    app = Starlette(routes=[Route("/items/{item_id}", item), Route("/broken", broken)])
    app.add_middleware(RequestContextMiddleware, metrics=metrics, quiet_paths=())
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            ok = await http.get("/items/7")
            missing = await http.get("/nowhere", headers={"X-Request-ID": "mine-1"})
            failed = await http.get("/broken")
    finally:
        undo()
    assert (ok.status_code, missing.status_code, failed.status_code) == (200, 404, 500)
    assert missing.headers["X-Request-ID"] == "mine-1"
    assert valid_request_id(ok.headers["X-Request-ID"])
    assert [
        (call["method"], call["route"], call["status"]) for call in metrics.named("record_http")
    ] == [("GET", "/items/{item_id}", 200), ("GET", None, 404), ("GET", "/broken", 500)]
    lines = request_lines(stream)
    assert [(line["method"], line["status"], line["error_type"]) for line in lines] == [
        ("GET /items/7", "ok", None),
        ("GET /nowhere", "404", "not_found"),
        ("GET /broken", "500", "RuntimeError"),
    ]
    assert [line["level"] for line in lines] == ["INFO", "WARNING", "ERROR"]
    assert lines[0]["request_id"] == ok.headers["X-Request-ID"]


async def test_health_probes_are_logged_at_debug_but_still_counted() -> None:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    metrics = RecordingMetrics()
    app = Starlette(routes=[Route("/health", health)])
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/health")
    finally:
        undo()
    assert response.headers["X-Request-ID"]
    assert request_lines(stream) == []
    assert [call["route"] for call in metrics.named("record_http")] == ["/health"]


async def test_a_rest_route_calling_into_fastmcp_keeps_a_single_line() -> None:
    metrics = RecordingMetrics()
    mcp = observed_server(metrics)

    @mcp.custom_route("/v1/greet", methods=["GET"])
    async def rest_greet(request: Request) -> Response:
        result = await mcp.render_prompt("greet", {"name": "Ada"})
        return PlainTextResponse(str(result.messages[0].content))

    app = mcp.http_app(path="/mcp")
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get("/v1/greet")
    finally:
        undo()
    assert response.status_code == 200
    [line] = request_lines(stream)
    assert (line["event"], line["method"], line["target"]) == (
        "http.request",
        "GET /v1/greet",
        "greet",
    )
    assert metrics.named("record_operation") == []


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("off", None), ("sizes", {"name": 3}), ("full", {"name": "Ada"})],
)
async def test_prompt_arguments_are_logged_only_as_configured(
    mode: ArgumentLogging, expected: dict[str, object] | None
) -> None:
    mcp = FastMCP("args", middleware=[RequestLogMiddleware(log_arguments=mode)])

    @mcp.prompt
    def greet(name: str) -> str:
        return f"Hello {name}"

    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with Client(mcp) as client:
            await client.get_prompt("greet", {"name": "Ada"})
    finally:
        undo()
    [line] = [line for line in request_lines(stream) if line["method"] == "prompts/get"]
    assert line.get("arguments") == expected
    if mode != "full":
        assert "Ada" not in stream.getvalue()


async def test_nested_calls_inside_a_request_write_no_line_of_their_own() -> None:
    metrics = RecordingMetrics()
    mcp = observed_server(metrics)

    @mcp.tool
    def echo(text: str) -> str:
        return text

    @mcp.tool
    async def outer() -> str:
        # Same method as the request itself (tools/call) and another one (prompts/get).
        await mcp.render_prompt("greet", {"name": "inner"})
        result = await mcp.call_tool("echo", {"text": "inner"})
        return str(result.content[0])

    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with Client(mcp) as client:
            await client.call_tool_mcp("outer", {})
    finally:
        undo()
    # The client lists tools after the call to read the output schema: a request of its own.
    methods = [line["method"] for line in request_lines(stream)]
    assert methods == ["initialize", "tools/call", "tools/list"]
    assert [call["method"] for call in metrics.named("record_operation")] == methods


async def test_a_missing_resource_reports_the_code_the_client_receives() -> None:
    mcp = FastMCP("resources", middleware=[RequestLogMiddleware()])
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with Client(mcp) as client:
            with pytest.raises(McpError) as raised:
                await client.read_resource("res://nothing")
    finally:
        undo()
    [line] = [line for line in request_lines(stream) if line["method"] == "resources/read"]
    assert raised.value.error.code == -32002
    assert (line["status"], line["target"], line["error_type"]) == (
        "-32002",
        "res://nothing",
        "NotFoundError",
    )


async def test_tool_results_that_report_an_error_are_not_logged_as_ok() -> None:
    # A tool may answer isError without raising: ctxfy's validation middleware does so for
    # invalid arguments (MCP 2025-11-25), and so may any tool returning a ToolResult.
    metrics = RecordingMetrics()
    mcp = FastMCP(
        "errors", middleware=[RequestLogMiddleware(metrics=metrics), RequestValidationMiddleware()]
    )

    @mcp.tool
    def echo(text: str) -> str:
        return text

    @mcp.tool
    def refuse() -> ToolResult:
        return ToolResult(content=[TextContent(type="text", text="no")], is_error=True)

    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with Client(mcp) as client:
            invalid = await client.call_tool_mcp("echo", {"text": "a\x00b"})
            refused = await client.call_tool_mcp("refuse", {})
            fine = await client.call_tool_mcp("echo", {"text": "ok"})
    finally:
        undo()
    assert (invalid.isError, refused.isError, fine.isError) == (True, True, False)
    lines = [line for line in request_lines(stream) if line["method"] == "tools/call"]
    assert [(line["target"], line["status"], line["error_type"]) for line in lines] == [
        ("echo", "tool_error", "invalid_params"),
        ("refuse", "tool_error", "tool_error"),
        ("echo", "ok", None),
    ]
    calls = [c for c in metrics.named("record_operation") if c["method"] == "tools/call"]
    assert [call["error_type"] for call in calls] == ["invalid_params", "tool_error", None]


async def test_every_line_of_a_request_carries_the_target_cut_to_size() -> None:
    class SayInside(FastMCPMiddleware):
        async def on_request(
            self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
        ) -> Any:
            logger.bind(event="test.inside").info("inside {}", context.method)
            return await call_next(context)

    mcp = FastMCP("long", middleware=[RequestLogMiddleware(), SayInside()])
    name = "p" * 10_000
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with Client(mcp) as client:
            with pytest.raises(McpError):
                await client.get_prompt(name, {})
    finally:
        undo()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    carrying = [line for line in lines if line.get("target") is not None]
    assert {line["event"] for line in carrying} >= {"test.inside", "mcp.request"}
    assert {line["target"] for line in carrying} == {"p" * 200 + "..."}
