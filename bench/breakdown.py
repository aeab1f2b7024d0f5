"""Where ctxfy's extra CPU time per request goes: one feature switched off at a time.

Each variant is ctxfy's ASGI app (``build_server`` + ``build_http_app``, as ``python -m ctxfy``
builds it, JSON logs to a file) with *one* feature removed, driven in process (no sockets,
no HTTP parser) with the ``prompts/get context_stack`` request of the load runs. The cost
of a feature is the CPU time per request of the full app minus that of the variant without
it (``time.process_time``, so the log writer thread counts). Variants are interleaved and
each figure is the minimum over the rounds, which filters out other processes' noise.

Run alone: ``python bench/breakdown.py [--smoke]`` prints JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bare_server
import payloads
from loguru import logger
from starlette.applications import Starlette
from starlette.types import Message

from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystores import open_key_store
from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.metrics import build_prometheus_metrics
from ctxfy.core.keys import Scope
from ctxfy.core.telemetry import NullMetricsRecorder
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings

#: Variant -> what it switches off.
VARIANTS = {
    "A (bare FastMCP)": "the baseline server A, for reference",
    "B (ctxfy, everything on)": "nothing",
    "auth": "API keys: ctxfy's verifier and FastMCP's auth middleware (and scope checks)",
    "scopes": "ScopeAuthMiddleware (its extra component lookup)",
    "validation": "RequestValidationMiddleware (limits, typed validation, injection screening)",
    "rate limit": "KeyRateLimitMiddleware",
    "request log line": "the JSON log line (loguru sink removed)",
    "request context": "RequestContextMiddleware (request id, trace span, HTTP metric)",
    "metrics": "all metrics (a null recorder)",
    "security headers": "SecurityHeadersMiddleware",
    "body limit": "BodyLimitMiddleware",
    "host/origin guard": "FastMCP's Host/Origin validation (as ctxfy configures it)",
}
_DROP_MCP = {
    "auth": "ScopeAuthMiddleware",
    "scopes": "ScopeAuthMiddleware",
    "validation": "RequestValidationMiddleware",
    "rate limit": "KeyRateLimitMiddleware",
}
_DROP_ASGI = {
    "request context": ("ctxfy", "RequestContextMiddleware"),
    "security headers": ("ctxfy", "SecurityHeadersMiddleware"),
    "body limit": ("ctxfy", "BodyLimitMiddleware"),
    "host/origin guard": ("fastmcp", "HostOriginGuardMiddleware"),
}


def _build(variant: str, data_dir: Path) -> Starlette:
    if variant.startswith("A "):
        return bare_server.build().http_app(path="/mcp", stateless_http=True, json_response=True)
    settings = Settings(
        stateless_http=True,
        json_response=True,
        rate_limit="1000000/minute",
        data_dir=data_dir,
        auth=variant != "auth",
    )
    metrics = NullMetricsRecorder() if variant == "metrics" else build_prometheus_metrics()
    mcp = build_server(settings, metrics=metrics)
    if variant in _DROP_MCP:
        mcp.middleware[:] = [m for m in mcp.middleware if type(m).__name__ != _DROP_MCP[variant]]
    app = build_http_app(mcp, settings, metrics=metrics)
    if variant in _DROP_ASGI:
        package, name = _DROP_ASGI[variant]
        app.user_middleware[:] = [
            m
            for m in app.user_middleware
            if not (m.cls.__name__ == name and m.cls.__module__.startswith(package))
        ]
    return app


async def _drive(app: Starlette, body: bytes, headers: list[tuple[bytes, bytes]], n: int) -> float:
    """CPU seconds per request over ``n`` sequential requests."""
    raw_headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"mcp-protocol-version", b"2025-06-18"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]

    async def one() -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/mcp",
            "raw_path": b"/mcp",
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent = False
        status = 0

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    if await one() != 200:
        raise RuntimeError("the breakdown request failed")
    gc.collect()
    started = time.process_time()
    for _ in range(n):
        await one()
    return (time.process_time() - started) / n


async def _measure(rounds: int, n: int) -> dict[str, Any]:
    body = payloads.body_bytes("prompts_get")
    with tempfile.TemporaryDirectory() as tmp, (Path(tmp) / "log.jsonl").open("w") as sink:
        data_dir = Path(tmp)
        store = open_key_store(f"sqlite:///{data_dir / 'ctxfy.db'}")
        issued = await KeyAdmin(store).create(name="bench", scope=Scope.WRITE)
        await store.aclose()
        key = str(issued.as_json()["key"])
        undo = configure_logging("INFO", "json", sink)
        try:
            apps = {v: _build(v, data_dir) for v in VARIANTS}
            samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
            async with contextlib.AsyncExitStack() as stack:
                for app in apps.values():
                    await stack.enter_async_context(app.router.lifespan_context(app))
                for _ in range(rounds):
                    for variant, app in apps.items():
                        auth = [] if variant in {"auth", "A (bare FastMCP)"} else [key]
                        headers = [(b"authorization", f"Bearer {k}".encode()) for k in auth]
                        handler = None
                        if variant == "request log line":
                            logger.remove()
                        samples[variant].append(await _drive(app, body, headers, n))
                        if variant == "request log line":
                            undo = configure_logging("INFO", "json", sink)
                        del handler
        finally:
            undo()
    full = min(samples["B (ctxfy, everything on)"])
    bare = min(samples["A (bare FastMCP)"])
    result: dict[str, Any] = {
        "method": "in-process ASGI, CPU time per prompts/get, min over rounds",
        "rounds": rounds,
        "requests_per_round": n,
        "A_us": round(bare * 1e6, 1),
        "B_us": round(full * 1e6, 1),
        "overhead_us": round((full - bare) * 1e6, 1),
        "features": {},
    }
    for variant, what in VARIANTS.items():
        if variant.startswith(("A ", "B ")):
            continue
        cost = full - min(samples[variant])
        result["features"][variant] = {"switched_off": what, "cost_us": round(cost * 1e6, 1)}
    return result


def measure(*, smoke: bool = False) -> dict[str, Any]:
    """Run the breakdown (a few seconds in smoke mode, about two minutes otherwise)."""
    rounds, n = (1, 50) if smoke else (5, 1000)
    return asyncio.run(_measure(rounds, n))


if __name__ == "__main__":
    print(json.dumps(measure(smoke="--smoke" in sys.argv), indent=2))
