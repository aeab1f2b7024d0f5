"""Add ctxfy's production kit to an existing FastMCP server, piece by piece.

Run it:

    python examples/embed_production_kit.py            # serve on http://127.0.0.1:8000/mcp
    python examples/embed_production_kit.py --check    # exercise itself over HTTP, exit 0

The server below is someone else's: one prompt and two tools. It gets API keys with scopes
(``ApiKeyVerifier``, ``ScopeAuthMiddleware``), per-key rate limits
(``KeyRateLimitMiddleware``), argument validation (``RequestValidationMiddleware``), one
JSON log line per request with Prometheus metrics (``RequestLogMiddleware``,
``RequestContextMiddleware``), ``/health`` (answered early by ``LivenessProbeMiddleware``)
and ``/ready``, and security headers. No ctxfy
server and no ``Settings``: only ``ctxfy.adapters``.

Keys live in the store named by ``CTXFY_KEY_STORE`` (default: SQLite in ``.ctxfy-example/``),
so ctxfy's own CLI manages them:

    CTXFY_KEY_STORE=sqlite:///$PWD/.ctxfy-example/keys.db ctxfy keys create --name me --scope read
"""

import argparse
import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError
from mcp import McpError
from starlette.applications import Starlette

from ctxfy.adapters.auth import ApiKeyVerifier
from ctxfy.adapters.health import add_health_routes
from ctxfy.adapters.health_fastpath import LivenessProbeMiddleware
from ctxfy.adapters.http_security import SameOriginMiddleware, SecurityHeadersMiddleware
from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.keystores import open_key_store
from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.metrics import PrometheusMetrics, build_prometheus_metrics
from ctxfy.adapters.ratelimit import KeyRateLimiter, KeyRateLimitMiddleware
from ctxfy.adapters.request_log import RequestContextMiddleware, RequestLogMiddleware
from ctxfy.adapters.scopes import ScopeAuthMiddleware
from ctxfy.adapters.validation import RequestValidationMiddleware
from ctxfy.core.keys import KeyStore, Scope


def build(store: KeyStore, metrics: PrometheusMetrics, rate: str = "120/minute") -> FastMCP:
    """Your server, with ctxfy's pieces added where FastMCP expects them."""
    limiter = KeyRateLimiter(rate, "memory://")  # "redis://..." to share across replicas
    mcp = FastMCP(
        "my-server",
        auth=ApiKeyVerifier(store),  # Authorization: Bearer <key> or X-API-Key: <key>
        middleware=[
            # Outermost first: the log line times and sees everything after it.
            RequestLogMiddleware(metrics=metrics.recorder),
            KeyRateLimitMiddleware(limiter),
            ScopeAuthMiddleware(),  # read < write < admin, by component tag
            RequestValidationMiddleware(),
        ],
    )

    @mcp.prompt
    def review(code: str) -> str:
        """Ask for a code review."""
        return f"Review this code for bugs:\n\n{code}"

    @mcp.tool
    def word_count(text: str) -> int:
        """Count the words of a text (any key)."""
        return len(text.split())

    @mcp.tool(tags={"llm"})  # the "llm" tag needs a write key
    def summarise(text: str) -> str:
        """Pretend to summarise a text with an LLM (write keys only)."""
        return text[:40]

    add_health_routes(mcp, {"key_store": store.ping, "rate_limits": limiter.ping})
    # /metrics is open, like /health: keep it on a private network or behind your proxy.
    mcp.custom_route("/metrics", methods=["GET"])(metrics.endpoint)
    return mcp


def http_app(mcp: FastMCP, metrics: PrometheusMetrics) -> Starlette:
    """The ASGI app: request context around auth, so auth failures get a log line too."""
    app = mcp.http_app(path="/mcp")
    # A browser page from another site gets 403 on /mcp, on any bind (DNS rebinding, CSRF).
    app.add_middleware(SameOriginMiddleware, paths=["/mcp"])
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=metrics.recorder, mcp_path="/mcp")
    # Added last, so outermost: plain GET /health probes are answered before everything else.
    app.add_middleware(LivenessProbeMiddleware, metrics=metrics.recorder)
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port for the duration of the block."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def check() -> int:
    """Run the server on 127.0.0.1 and use it as a client would, with and without keys."""
    store = InMemoryKeyStore()
    admin = KeyAdmin(store)
    reader = (await admin.create(name="reader", scope=Scope.READ)).key.text
    writer = (await admin.create(name="writer", scope=Scope.WRITE)).key.text
    metrics = build_prometheus_metrics()
    results: dict[str, bool] = {}
    undo = configure_logging("WARNING", "json")  # only refusals; INFO has one line per request
    try:
        async with serving(http_app(build(store, metrics, rate="6/minute"), metrics)) as base:
            async with httpx.AsyncClient(base_url=base) as http:
                anonymous = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1})
                results["no key: 401"] = anonymous.status_code == 401
                results["/ready: 200"] = (await http.get("/ready")).status_code == 200
                foreign = await http.post(
                    "/mcp",
                    json={"jsonrpc": "2.0", "id": 1},
                    headers={"Origin": "https://evil.example", "Authorization": f"Bearer {reader}"},
                )
                results["foreign Origin: 403"] = foreign.status_code == 403
                probe = await http.get("/health")
                results["/health: 200 with a request id and security headers"] = (
                    probe.status_code == 200
                    and len(probe.headers.get("x-request-id", "")) == 32
                    and probe.headers.get("x-content-type-options") == "nosniff"
                )
                scrape = await http.get("/metrics")
                results["/metrics: the 401 counted"] = (
                    'http_response_status_code="401"' in scrape.text
                )
            async with Client(f"{base}/mcp", auth=reader) as client:
                tools = {tool.name for tool in await client.list_tools()}
                results["read key sees word_count only"] = tools == {"word_count"}
                prompt = await client.get_prompt("review", {"code": "print(1)"})
                results["read key gets the prompt"] = len(prompt.messages) == 1
                try:
                    await client.call_tool("summarise", {"text": "x"})
                    results["read key refused summarise"] = False
                except ToolError:
                    results["read key refused summarise"] = True
                blocked = False
                for _ in range(6):  # 6/minute, some already spent: one of these is refused
                    try:
                        await client.call_tool("word_count", {"text": "one two"})
                    except (McpError, ToolError):
                        blocked = True
                        break
                results["rate limit refuses the 7th request"] = blocked
            async with Client(f"{base}/mcp", auth=writer) as client:
                summary = await client.call_tool("summarise", {"text": "a long text"})
                results["write key calls summarise"] = summary.data == "a long text"
    finally:
        undo()
        metrics.shutdown()
    for name, ok in results.items():
        print(f"{'ok' if ok else 'FAILED'}: {name}")
    ok = all(results.values())
    print("check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="run on 127.0.0.1 and exit")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.check:
        return asyncio.run(check())
    data = Path(".ctxfy-example").resolve()
    data.mkdir(mode=0o700, exist_ok=True)
    store = open_key_store(os.environ.get("CTXFY_KEY_STORE") or f"sqlite:///{data / 'keys.db'}")
    metrics = build_prometheus_metrics()
    app = http_app(build(store, metrics), metrics)
    undo = configure_logging("INFO", "json")
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False)
    finally:
        metrics.shutdown()
        undo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
