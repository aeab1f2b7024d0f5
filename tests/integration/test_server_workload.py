"""The assembled server under a mixed workload: lines, request ids, headers and metrics agree.

``test_request_log.py`` checks the same agreement on a small FastMCP server with ctxfy's
logging middlewares; this test runs it on what ``python -m ctxfy`` serves
(``build_server`` + ``build_http_app`` with the Prometheus exporter): real API keys, scopes,
validation, the REST façade, the liveness fast path, and ``promtool`` on the scrape.
"""

import asyncio
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.exceptions import ToolError
from mcp import McpError
from mcp.types import CreateMessageResult, TextContent
from prometheus_client.parser import text_string_to_metric_families

from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.metrics import build_prometheus_metrics
from ctxfy.core.keys import Scope
from ctxfy.core.telemetry import REQUEST_LOG_FIELDS, valid_request_id
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings
from tests.integration.test_metrics import promtool, promtool_check
from tests.integration.test_request_log import Exchanges, metric_counts

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
REQUEST_EVENTS = {"mcp.request", "http.request"}


async def test_mixed_workload_on_the_real_server_agrees_everywhere(
    serve_http: Any, seed_text: str, tmp_path: Path
) -> None:
    binary = promtool()
    store = InMemoryKeyStore()
    admin = KeyAdmin(store)
    writer = (await admin.create(name="writer", scope=Scope.WRITE)).key.text
    reader = (await admin.create(name="reader", scope=Scope.READ)).key.text
    metrics = build_prometheus_metrics(process_metrics=False)
    settings = Settings(data_dir=tmp_path, metrics_public=False)
    mcp = build_server(settings, key_store=store, metrics=metrics)
    app = build_http_app(mcp, settings, metrics=metrics)

    async def llm(messages: Any, params: Any, context: Any) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=seed_text), model="m-7"
        )

    stream = io.StringIO()
    undo = configure_logging("DEBUG", "json", stream)
    exchanges = Exchanges()
    try:
        async with serve_http(app) as base:
            transport = StreamableHttpTransport(
                f"{base}/mcp", httpx_client_factory=exchanges.client
            )
            async with Client(transport, auth=writer, sampling_handler=llm) as client:
                await client.list_prompts()
                for objective in ("Ship the billing export", "Cut p99 latency"):
                    await client.get_prompt("context_stack", {"objective": objective})
                with pytest.raises(McpError):
                    await client.get_prompt("context_stack", {"domain": "no objective"})
                with pytest.raises(McpError):
                    await client.get_prompt("no_such_prompt", {})
                await client.call_tool("lint_context_stack", {"markdown": seed_text})
                with pytest.raises(ToolError):
                    await client.call_tool("lint_context_stack", {"markdown": "a\x00b"})
                await client.call_tool("generate_context_stack", {"objective": "Ship it"})
            rest = {"Authorization": f"Bearer {writer}"}
            async with exchanges.client(base_url=base) as http:
                assert (await http.get("/v1/prompts", headers=rest)).status_code == 200
                rendered = await http.post(
                    "/v1/prompts/prp", json={"feature": "Exports"}, headers=rest
                )
                assert rendered.status_code == 200
                invalid = await http.post("/v1/prompts/prp", json={"feature": 5}, headers=rest)
                assert invalid.status_code == 422
                anonymous = await http.get("/v1/prompts")
                assert anonymous.status_code == 401
                denied = await http.post(
                    "/v1/keys",
                    json={"name": "x", "scope": "read"},
                    headers={"X-API-Key": reader},
                )
                assert denied.status_code == 403
                for path in ("/health", "/health", "/ready"):
                    assert (await http.get(path)).status_code == 200
                served_before_scrape = len(exchanges.seen)
                scrape = await http.get("/metrics", headers={"X-API-Key": reader})
                assert scrape.status_code == 200
    finally:
        undo()

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    for line in lines:
        assert set(REQUEST_LOG_FIELDS) <= set(line), line
        assert TIMESTAMP.fullmatch(line["timestamp"]), line
    requests = [line for line in lines if line["event"] in REQUEST_EVENTS]

    # Exactly one line per HTTP exchange, carrying the id its response header carried.
    header_ids = [response_id or "" for *_, response_id in exchanges.seen]
    assert all(valid_request_id(i) for i in header_ids)
    assert len(set(header_ids)) == len(header_ids)
    assert sorted(line["request_id"] for line in requests) == sorted(header_ids)

    mcp_lines = [line for line in requests if line["event"] == "mcp.request"]
    calls = Counter(
        (line["method"], line["target"], line["status"], line["error_type"]) for line in mcp_lines
    )
    assert calls[("prompts/get", "context_stack", "ok", None)] == 2
    assert calls[("prompts/get", "context_stack", "-32602", "invalid_params")] == 1
    assert calls[("tools/call", "lint_context_stack", "ok", None)] == 1
    assert calls[("tools/call", "lint_context_stack", "tool_error", "invalid_params")] == 1
    assert calls[("tools/call", "generate_context_stack", "ok", None)] == 1
    [unknown] = [line for line in mcp_lines if line["target"] == "no_such_prompt"]
    assert unknown["status"] != "ok"
    for line in mcp_lines:
        assert line["llm_model"] == ("m-7" if line["target"] == "generate_context_stack" else None)
    writer_id = writer.split("_")[1]
    assert {line["key_id"] for line in mcp_lines if line["method"] != "initialize"} == {writer_id}
    http_lines = [line for line in requests if line["event"] == "http.request"]
    statuses = Counter((line["method"], line["status"]) for line in http_lines)
    assert statuses[("GET /v1/prompts", "401")] == 1
    assert statuses[("POST /v1/keys", "403")] == 1
    assert statuses[("POST /v1/prompts/prp", "422")] == 1
    assert statuses[("GET /health", "ok")] == 2

    # The metrics count what the lines report.
    text = scrape.text
    operations = metric_counts(text, "mcp_server_operation_duration_seconds")
    rest_operations = 3  # GET /v1/prompts, the rendered prp and the refused one
    assert sum(operations.values()) == len(mcp_lines) + rest_operations
    assert all(("gen_ai_prompt_name", "no_such_prompt") not in labels for labels in operations)
    http_counts = metric_counts(text, "http_server_request_duration_seconds")
    assert sum(http_counts.values()) == served_before_scrape
    assert _counter_total(text, "ctxfy_auth_failures_total") == 2  # the 401 and the 403
    llm_calls = metric_counts(text, "gen_ai_client_operation_duration_seconds")
    assert sum(n for labels, n in llm_calls.items() if ("gen_ai_request_model", "m-7") in labels)
    result = await asyncio.to_thread(promtool_check, binary, text)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""


def _counter_total(text: str, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )
