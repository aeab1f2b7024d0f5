"""Requests that reuse a JSON-RPC id are each counted by the rate limiter and each logged."""

import asyncio
import io
import json
from typing import Any

import httpx
import pytest
from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.ratelimit import KeyRateLimiter, KeyRateLimitMiddleware
from ctxfy.adapters.request_log import RequestLogMiddleware
from ctxfy.core.access import RateLimitDecision
from tests.integration.access_support import serve_app

ACCEPT = {"Accept": "application/json, text/event-stream"}


class CountingLimiter(KeyRateLimiter):
    def __init__(self) -> None:
        super().__init__("100/minute")
        self.hits = 0

    async def hit(self, identity: str, override: str | None = None) -> RateLimitDecision:
        self.hits += 1
        return await super().hit(identity, override)


class OverlapGate(Middleware):
    """Holds the prompt request until the tool call (same id) has arrived, and vice versa.

    So both requests are in flight on the session at once, the prompt request's own
    middleware running after the tool call arrived.
    """

    def __init__(self) -> None:
        self.prompt_waiting = asyncio.Event()
        self.call_arrived = asyncio.Event()
        self.prompt_done = asyncio.Event()
        self.call_done = asyncio.Event()

    async def on_request(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        if context.method == "prompts/get":
            self.prompt_waiting.set()
            await self.call_arrived.wait()
            try:
                return await call_next(context)
            finally:
                self.prompt_done.set()
        if context.method == "tools/call":
            self.call_arrived.set()
            await self.prompt_done.wait()
            try:
                return await call_next(context)
            finally:
                self.call_done.set()
        return await call_next(context)


def rpc(request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


# The MCP SDK's HTTP transport keeps one answer stream per request id; the second request
# replaces the first one's stream, which is then collected unclosed.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_two_requests_sharing_an_id_on_one_session_are_both_counted_and_logged() -> None:
    gate = OverlapGate()
    limiter = CountingLimiter()
    mcp = FastMCP("ids", middleware=[gate, RequestLogMiddleware(), KeyRateLimitMiddleware(limiter)])

    @mcp.prompt
    def greet(name: str) -> str:
        return f"Hello {name}"

    @mcp.tool
    def echo(text: str) -> str:
        return text

    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with (
            serve_app(mcp.http_app(path="/mcp")) as url,
            httpx.AsyncClient(base_url=url, headers=ACCEPT, timeout=10) as http,
        ):
            opened = await http.post(
                "/mcp",
                json=rpc(
                    1,
                    "initialize",
                    {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"},
                    },
                ),
            )
            headers = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
            await http.post(
                "/mcp",
                json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                headers=headers,
            )
            prompt = asyncio.create_task(
                http.post(
                    "/mcp",
                    json=rpc(7, "prompts/get", {"name": "greet", "arguments": {"name": "A"}}),
                    headers=headers,
                )
            )
            await gate.prompt_waiting.wait()
            # Same id while the first is in flight; no tools/list before it, so the MCP
            # SDK lists tools itself inside the call (not a request of its own).
            call = asyncio.create_task(
                http.post(
                    "/mcp",
                    json=rpc(7, "tools/call", {"name": "echo", "arguments": {"text": "B"}}),
                    headers=headers,
                )
            )
            # The HTTP transport routes answers by id too, so one POST may never get its
            # answer: wait for both handlers to finish instead.
            await gate.call_done.wait()
            for post in (prompt, call):
                post.cancel()
            await asyncio.gather(prompt, call, return_exceptions=True)
    finally:
        undo()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    methods = sorted(line["method"] for line in lines if line["event"] == "mcp.request")
    assert methods == ["initialize", "prompts/get", "tools/call"]
    assert limiter.hits == 3
