"""Add ctxfy's request logs and Prometheus metrics to a plain FastMCP server.

Run it:

    python examples/embed_request_log.py            # serve on http://127.0.0.1:8000/mcp
    python examples/embed_request_log.py --check    # exercise itself in memory, exit 0

Each MCP request and each HTTP route writes one JSON line on stdout; ``/metrics`` serves
the Prometheus text format. Only ``ctxfy.adapters.*`` is used: no ctxfy server, no settings.
"""

import argparse
import asyncio
import io
import json
import sys

import httpx
import uvicorn
from fastmcp import Client, FastMCP
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.metrics import PrometheusMetrics, build_prometheus_metrics
from ctxfy.adapters.request_log import RequestContextMiddleware, RequestLogMiddleware


def build(metrics: PrometheusMetrics) -> FastMCP:
    """A server of your own, with the request-log middleware first in its chain."""
    mcp = FastMCP("my-server", middleware=[RequestLogMiddleware(metrics=metrics.recorder)])

    @mcp.prompt
    def review(code: str) -> str:
        return f"Review this code for bugs:\n\n{code}"

    @mcp.tool
    def add(a: int, b: int) -> int:
        return a + b

    # /metrics is a plain route: keep it on a private network or behind your proxy.
    mcp.custom_route("/metrics", methods=["GET"])(metrics.endpoint)
    return mcp


def http_app(mcp: FastMCP, metrics: PrometheusMetrics) -> Starlette:
    app = mcp.http_app(path="/mcp")
    # Outermost, so auth and every route run inside the request context.
    app.add_middleware(RequestContextMiddleware, metrics=metrics.recorder)
    return app


async def check() -> int:
    """Drive the server in memory and over ASGI; verify lines and metrics agree."""
    metrics = build_prometheus_metrics()
    mcp = build(metrics)
    stream = io.StringIO()
    undo = configure_logging("INFO", "json", stream)
    try:
        async with Client(mcp) as client:
            await client.get_prompt("review", {"code": "print(1)"})
            await client.call_tool_mcp("add", {"a": 1, "b": 2})
        transport = httpx.ASGITransport(app=http_app(mcp, metrics))
        async with httpx.AsyncClient(transport=transport, base_url="http://example") as http:
            scrape = await http.get("/metrics")
    finally:
        undo()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [line for line in lines if line["event"] in {"mcp.request", "http.request"}]
    for line in requests:
        print(json.dumps(line))
    methods = [line["method"] for line in requests]
    operations = sum(
        sample.value
        for family in text_string_to_metric_families(scrape.text)
        if family.name == "mcp_server_operation_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    )
    ok = (
        {"initialize", "prompts/get", "tools/call", "GET /metrics"} <= set(methods)
        and operations == sum(line["event"] == "mcp.request" for line in requests)
        and scrape.status_code == 200
        and "X-Request-ID" in scrape.headers
    )
    print("check:", "ok" if ok else f"FAILED (saw {methods}, HTTP {scrape.status_code})")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="run in memory and exit")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.check:
        return asyncio.run(check())
    metrics = build_prometheus_metrics()
    app = http_app(build(metrics), metrics)
    undo = configure_logging("INFO", "json")
    try:
        # log_config=None and access_log=False: ctxfy writes the one line per request.
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False)
    finally:
        metrics.shutdown()
        undo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
