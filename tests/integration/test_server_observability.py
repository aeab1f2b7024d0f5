"""The assembled server's request log and metrics over real HTTP, with auth on."""

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp.types import CreateMessageResult, TextContent

from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.logging import configure_logging
from ctxfy.core.keys import Scope
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings
from ctxfy.testing import RecordingMetrics


@pytest.fixture
def log_sink() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    undo = configure_logging("INFO", "json", sink)
    try:
        yield sink
    finally:
        undo()


async def test_llm_tool_lines_carry_the_model_and_metrics_agree(
    serve_http: Any, log_sink: io.StringIO, seed_text: str, tmp_path: Path
) -> None:
    store = InMemoryKeyStore()
    issued = await KeyAdmin(store).create(name="writer", scope=Scope.WRITE)
    metrics = RecordingMetrics()
    settings = Settings(data_dir=tmp_path)
    mcp = build_server(settings, key_store=store, metrics=metrics)
    app = build_http_app(mcp, settings, metrics=metrics)

    async def handler(messages: Any, params: Any, context: Any) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=seed_text), model="m-42"
        )

    async with serve_http(app) as base:
        transport = StreamableHttpTransport(
            f"{base}/mcp", headers={"X-Request-ID": "client-chosen-id"}
        )
        async with Client(transport, auth=issued.key.text, sampling_handler=handler) as client:
            await client.call_tool("generate_context_stack", {"objective": "Ship"})
            await client.get_prompt("prp", {"feature": "x"})
        async with httpx.AsyncClient() as http:
            denied = await http.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1})
    assert denied.status_code == 401

    lines = [json.loads(line) for line in log_sink.getvalue().splitlines() if line]
    requests = [line for line in lines if line["event"] in {"mcp.request", "http.request"}]
    by_method = {(line["method"], line["target"]): line for line in requests}
    tool_line = by_method[("tools/call", "generate_context_stack")]
    assert tool_line["llm_model"] == "m-42"
    assert tool_line["key_id"] == issued.record.key_id
    assert tool_line["status"] == "ok"
    assert by_method[("prompts/get", "prp")]["llm_model"] is None
    assert any(line["status"] == "401" for line in requests)
    assert all(issued.key.text not in json.dumps(line) for line in lines)
    assert [c["model"] for c in metrics.named("record_llm_call")] == ["m-42"]
    operations = metrics.named("record_operation")
    assert len([line for line in requests if line["event"] == "mcp.request"]) == len(operations)


@pytest.mark.parametrize(("public", "anonymous_status"), [(True, 200), (False, 401)])
async def test_metrics_need_a_key_only_when_configured(
    serve_http: Any, tmp_path: Path, public: bool, anonymous_status: int
) -> None:
    store = InMemoryKeyStore()
    issued = await KeyAdmin(store).create(name="scraper", scope=Scope.READ)
    settings = Settings(data_dir=tmp_path, metrics_public=public)
    app = build_http_app(build_server(settings, key_store=store), settings)
    async with serve_http(app) as base, httpx.AsyncClient(base_url=base) as http:
        anonymous = await http.get("/metrics")
        keyed = await http.get("/metrics", headers={"X-API-Key": issued.key.text})
        # What Prometheus sends with `authorization: credentials_file` (the docs' example).
        bearer = await http.get("/metrics", headers={"Authorization": f"Bearer {issued.key.text}"})
    assert anonymous.status_code == anonymous_status
    assert keyed.status_code == 200
    assert bearer.status_code == 200
    assert "mcp_server_operation_duration" in keyed.text or "process_" in keyed.text


async def test_auth_failures_and_rate_limit_blocks_are_counted(
    serve_http: Any, tmp_path: Path
) -> None:
    store = InMemoryKeyStore()
    reader = await KeyAdmin(store).create(name="reader", scope=Scope.READ)
    metrics = RecordingMetrics()
    settings = Settings(data_dir=tmp_path, rate_limit="2/minute")
    app = build_http_app(build_server(settings, key_store=store, metrics=metrics), settings)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    async with serve_http(app) as base, httpx.AsyncClient(base_url=base, headers=headers) as http:
        unknown = await http.post("/mcp", json=body, headers={"X-API-Key": "ctxfy_nope_x"})
        denied = await http.post(
            "/v1/keys",
            json={"name": "x", "scope": "read"},
            headers={"X-API-Key": reader.key.text},
        )
        statuses = [
            (await http.get("/v1/prompts", headers={"X-API-Key": reader.key.text})).status_code
            for _ in range(3)
        ]
    assert unknown.status_code == 401
    assert denied.status_code == 403
    assert statuses[-1] == 429
    reasons = [call["reason"] for call in metrics.named("count_auth_failure")]
    assert "scope" in reasons
    assert len(reasons) >= 2
    assert len(metrics.named("count_rate_limited")) >= 1
