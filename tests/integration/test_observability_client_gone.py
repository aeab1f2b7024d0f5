"""A client leaving an MCP event stream before its answer still gets exactly one line."""

import asyncio
import io
import json
from typing import Any

import httpx
from fastmcp import FastMCP

from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.request_log import RequestContextMiddleware, RequestLogMiddleware
from ctxfy.core.telemetry import TargetKind
from ctxfy.testing import RecordingMetrics
from tests.conftest import ServeHttp
from tests.integration.mcp_session import open_session

HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


class SignallingMetrics(RecordingMetrics):
    """Recording metrics that say when the HTTP layer and the MCP layer have finished."""

    def __init__(self) -> None:
        super().__init__()
        self.http_posts = 0
        self.third_post_done = asyncio.Event()
        self.call_done = asyncio.Event()

    def record_http(
        self, *, method: str, route: str | None, status: int, duration_s: float
    ) -> None:
        super().record_http(method=method, route=route, status=status, duration_s=duration_s)
        self.http_posts += method == "POST"
        if self.http_posts == 3:
            self.third_post_done.set()

    def record_operation(
        self,
        *,
        method: str,
        target_kind: TargetKind | None,
        target: str | None,
        duration_s: float,
        error_type: str | None,
    ) -> None:
        super().record_operation(
            method=method,
            target_kind=target_kind,
            target=target,
            duration_s=duration_s,
            error_type=error_type,
        )
        if method == "tools/call":
            self.call_done.set()


async def test_a_client_leaving_before_its_answer_gets_one_line_saying_so(
    serve_http: ServeHttp,
) -> None:
    metrics = SignallingMetrics()
    release = asyncio.Event()
    mcp = FastMCP("gone", middleware=[RequestLogMiddleware(metrics=metrics)])

    @mcp.tool
    async def slow() -> str:
        await release.wait()
        return "done"

    app = mcp.http_app(path="/mcp")
    app.add_middleware(RequestContextMiddleware, metrics=metrics, mcp_path="/mcp")
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with (
            serve_http(app) as base,
            httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=10) as http,
        ):
            await open_session(http, request_id=1)
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow"}}
            async with http.stream("POST", "/mcp", json=call) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                request_id = response.headers["X-Request-ID"]
            # Leaving the block unread closes the connection: the client is gone.
            await metrics.third_post_done.wait()
            release.set()
            await metrics.call_done.wait()
    finally:
        undo()
    lines: list[dict[str, Any]] = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [
        line
        for line in lines
        if line["request_id"] == request_id and line["event"] in {"mcp.request", "http.request"}
    ]
    assert [
        (line["event"], line["method"], line["status"], line["error_type"]) for line in mine
    ] == [("mcp.request", "tools/call", "499", "client_gone")]
    [operation] = metrics.named("record_operation")[-1:]
    assert operation["error_type"] == "client_gone"
