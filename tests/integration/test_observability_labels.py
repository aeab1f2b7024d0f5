"""Metric labels stay bounded whatever clients ask for; library-answered requests are counted."""

import io
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.exceptions import ToolError
from mcp import McpError
from prometheus_client.parser import text_string_to_metric_families

from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.metrics import build_prometheus_metrics
from ctxfy.adapters.request_log import RequestLogMiddleware
from ctxfy.adapters.validation import RequestValidationMiddleware
from ctxfy.core.keys import Scope
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings
from ctxfy.testing import RecordingMetrics
from tests.conftest import ServeHttp
from tests.integration.mcp_session import open_session

OPERATION = "mcp_server_operation_duration_seconds"


@pytest.fixture
def log_sink() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    undo = configure_logging("INFO", "json", sink)
    try:
        yield sink
    finally:
        undo()


def request_lines(sink: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in sink.getvalue().splitlines() if line]
    return [line for line in lines if line["event"] in {"mcp.request", "http.request"}]


def operation_series(text: str) -> set[tuple[tuple[str, str], ...]]:
    return {
        tuple(sorted(sample.labels.items()))
        for family in text_string_to_metric_families(text)
        if family.name == OPERATION
        for sample in family.samples
        if sample.name == f"{OPERATION}_count"
    }


async def test_made_up_names_do_not_create_metric_series(
    serve_http: ServeHttp, log_sink: io.StringIO, tmp_path: Path
) -> None:
    store = InMemoryKeyStore()
    issued = await KeyAdmin(store).create(name="writer", scope=Scope.WRITE)
    metrics = build_prometheus_metrics(process_metrics=False)
    settings = Settings(data_dir=tmp_path, rate_limit="10000/minute")
    mcp = build_server(settings, key_store=store, metrics=metrics.recorder)
    names = [f"rand{secrets.token_hex(4)}" for _ in range(50)]

    async def ask_for(client: Client[Any], name: str) -> None:
        with pytest.raises(McpError):
            await client.get_prompt(name, {})
        with pytest.raises((McpError, ToolError)):
            await client.call_tool(name, {})
        with pytest.raises(McpError):
            await client.read_resource(f"ctxfy://{name}")

    async with serve_http(build_http_app(mcp, settings, metrics=metrics.recorder)) as base:
        transport = StreamableHttpTransport(f"{base}/mcp")
        async with Client(transport, auth=issued.key.text) as client:
            await client.get_prompt("prp", {"feature": "x"})
            with pytest.raises(McpError):
                await client.get_prompt("prp", {})  # a real prompt, refused: keeps its name
            await ask_for(client, names[0])
            after_one = operation_series(metrics.render().decode())
            for name in names[1:]:
                await ask_for(client, name)
    text = metrics.render().decode()

    assert operation_series(text) == after_one
    assert not any(name in text for name in names)
    labels = {dict(series).get("gen_ai_prompt_name") for series in after_one}
    assert {"prp", "_unknown"} <= labels
    assert "_unknown" in {dict(series).get("gen_ai_tool_name") for series in after_one}
    assert "_unknown" in {dict(series).get("mcp_resource_uri") for series in after_one}
    prp_errors = [
        dict(series)
        for series in after_one
        if dict(series).get("gen_ai_prompt_name") == "prp" and dict(series)["error_type"]
    ]
    assert [series["error_type"] for series in prp_errors] == ["invalid_params"]
    # The log lines keep the names the client sent.
    targets = {line["target"] for line in request_lines(log_sink)}
    assert set(names) <= targets
    assert {f"ctxfy://{name}" for name in names} <= targets


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful-sse", "stateless-json"])
async def test_requests_the_mcp_library_refuses_get_their_code_and_are_counted(
    serve_http: ServeHttp, log_sink: io.StringIO, tmp_path: Path, stateless: bool
) -> None:
    store = InMemoryKeyStore()
    issued = await KeyAdmin(store).create(name="reader", scope=Scope.READ)
    metrics = RecordingMetrics()
    settings = Settings(data_dir=tmp_path, stateless_http=stateless, json_response=stateless)
    mcp = build_server(settings, key_store=store, metrics=metrics)
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
        "X-API-Key": issued.key.text,
    }
    refused = [
        {"jsonrpc": "2.0", "id": 1, "method": "foo/bar"},
        {"jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": {"nam": "x"}},
    ]
    async with (
        serve_http(build_http_app(mcp, settings, metrics=metrics)) as base,
        httpx.AsyncClient(base_url=base, headers=headers) as http,
    ):
        if not stateless:
            await open_session(http, request_id=0)
        metrics.calls.clear()
        responses = [await http.post("/mcp", json=body) for body in refused]

    codes = [
        json.loads(response.text.split("data: ", 1)[-1])["error"]["code"] for response in responses
    ]
    assert [response.status_code for response in responses] == [200, 200]
    ids = [response.headers["X-Request-ID"] for response in responses]
    lines = [line for line in request_lines(log_sink) if line["request_id"] in ids]
    assert [
        (line["request_id"], line["event"], line["method"], line["status"], line["error_type"])
        for line in lines
    ] == [
        (ids[0], "mcp.request", "foo/bar", str(codes[0]), "invalid_params"),
        (ids[1], "mcp.request", "prompts/get", str(codes[1]), "invalid_params"),
    ]
    operations = [
        call for call in metrics.named("record_operation") if call["method"] != "initialize"
    ]
    assert [(call["method"], call["target"], call["error_type"]) for call in operations] == [
        ("_unknown", None, "invalid_params"),
        ("prompts/get", None, "invalid_params"),
    ]


async def test_the_label_lookup_is_shared_with_the_layers_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def lookups(*middleware: Any) -> list[str]:
        mcp: FastMCP[Any] = FastMCP("lookups", middleware=list(middleware))

        @mcp.prompt
        def greet(name: str) -> str:
            return f"Hello {name}"

        calls: list[str] = []
        original = mcp.get_prompt

        async def spy(name: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return await original(name, *args, **kwargs)

        monkeypatch.setattr(mcp, "get_prompt", spy)
        async with Client(mcp) as client:
            await client.get_prompt("greet", {"name": "Ada"})
            with pytest.raises(McpError):
                await client.get_prompt("nope", {})
        return calls

    without = await lookups(RequestValidationMiddleware())
    metrics = RecordingMetrics()
    with_log = await lookups(RequestLogMiddleware(metrics=metrics), RequestValidationMiddleware())
    assert with_log == without
    assert [call["target"] for call in metrics.named("record_operation")][-2:] == [
        "greet",
        "_unknown",
    ]


async def test_fastmcp_handler_lines_of_a_stateful_session_carry_the_request_id(
    serve_http: ServeHttp, tmp_path: Path
) -> None:
    store = InMemoryKeyStore()
    issued = await KeyAdmin(store).create(name="reader", scope=Scope.READ)
    settings = Settings(data_dir=tmp_path)
    app = build_http_app(build_server(settings, key_store=store), settings)
    sink = io.StringIO()
    undo = configure_logging("DEBUG", "json", sink)
    try:
        async with serve_http(app) as base:
            transport = StreamableHttpTransport(f"{base}/mcp")
            async with Client(transport, auth=issued.key.text) as client:
                for feature in ("a", "b", "c"):
                    await client.get_prompt("prp", {"feature": feature})
    finally:
        undo()
    lines = [json.loads(line) for line in sink.getvalue().splitlines() if line]
    handler_ids = [
        line["request_id"] for line in lines if "Handler called: get_prompt prp" in line["message"]
    ]
    request_ids = [
        line["request_id"]
        for line in lines
        if line["event"] == "mcp.request" and line["method"] == "prompts/get"
    ]
    assert len(request_ids) == 3
    assert handler_ids == request_ids
