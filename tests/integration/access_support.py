"""Helpers for access-control tests: fake clocks, an in-loop uvicorn, a test server."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import uvicorn
from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from ctxfy.adapters.audit import AuditLog
from ctxfy.adapters.auth import ApiKeyVerifier
from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keys_routes import register_key_routes
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.ratelimit import KeyRateLimiter, KeyRateLimitMiddleware
from ctxfy.adapters.scopes import ScopeAuthMiddleware
from ctxfy.core.keys import KeyStore, Scope
from ctxfy.testing import free_tcp_port


class FakeClock:
    """A settable UTC clock for key expiry and rotation grace."""

    def __init__(self) -> None:
        # Start at the real time: the MCP SDK also compares token expiry with time.time().
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Ticker:
    """A settable monotonic clock for the verifier's record cache."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@asynccontextmanager
async def serve_app(app: ASGIApp) -> AsyncIterator[str]:
    """Run an ASGI app with uvicorn on a free 127.0.0.1 port in this event loop."""
    port = free_tcp_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=1,
        h11_max_incomplete_event_size=64 * 1024,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 15
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@attrs.define
class AccessServer:
    """A running test server with ctxfy's access-control pieces wired in."""

    url: str
    store: InMemoryKeyStore
    admin: KeyAdmin
    verifier: ApiKeyVerifier
    clock: FakeClock
    ticker: Ticker

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    async def key(self, scope: Scope = Scope.READ, **options: Any) -> str:
        issued = await self.admin.create(name=f"{scope.value} key", scope=scope, **options)
        return issued.key.text


def build_access_mcp(
    store: KeyStore,
    *,
    clock: FakeClock,
    ticker: Ticker,
    limiter: KeyRateLimiter | None = None,
) -> tuple[FastMCP[Any], KeyAdmin, ApiKeyVerifier]:
    """A FastMCP server like ctxfy's: a read tool, an LLM tool, a prompt, a resource."""
    audit = AuditLog()
    verifier = ApiKeyVerifier(store, audit=audit, clock=clock, monotonic=ticker)
    middleware: list[Any] = [ScopeAuthMiddleware(audit=audit)]
    if limiter is not None:
        middleware.append(KeyRateLimitMiddleware(limiter))
    mcp: FastMCP[Any] = FastMCP("access-test", auth=verifier, middleware=middleware)

    @mcp.tool
    def lint_context_stack(text: str) -> str:
        return f"linted {len(text)} characters"

    @mcp.tool(tags={"llm"})
    def generate_context_stack(task: str) -> str:
        return f"stack for {task}"

    @mcp.prompt
    def greeting(name: str) -> str:
        return f"Hello {name}"

    @mcp.resource("ctxfy://about")
    def about() -> str:
        return "ctxfy"

    @mcp.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    admin = KeyAdmin(store, clock=clock, audit=audit)
    register_key_routes(mcp, admin, verifier=verifier, limiter=limiter, audit=audit)
    return mcp, admin, verifier
