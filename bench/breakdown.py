"""Where ctxfy's extra CPU time per request goes: features switched off one after another.

Starting from ctxfy as ``python -m ctxfy`` builds it (``build_server`` + ``build_http_app``,
JSON logs to a file, everything on), each step switches one more feature off, down to
ctxfy's own prompts and tools on FastMCP with nothing of the production kit; the bare
FastMCP server A closes the list. Every variant is driven in process (no sockets, no HTTP
parser) with the ``prompts/get context_stack`` request of the load runs, and measured as
CPU time per request (``time.process_time``, so the log writer thread counts). The cost of
a step is the time of the variant before it minus its own: the costs add up exactly to the
difference between B and A (the order of the steps decides how interactions are shared).
Variants are interleaved, and each figure is the minimum over many short rounds.

Run alone: ``python bench/breakdown.py [--smoke]`` prints JSON. The figures are only
meaningful on an otherwise idle machine.
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

#: The steps, in order: what each one switches off (on top of the previous ones).
STEPS = {
    "security headers": "SecurityHeadersMiddleware",
    "body limit": "BodyLimitMiddleware",
    "host/origin guard": "FastMCP's Host/Origin validation, as ctxfy configures it",
    "request context": "RequestContextMiddleware (request id, trace span, HTTP line/metric)",
    "metrics": "every metric (a null recorder)",
    "request log line": "the JSON log line (no loguru sink)",
    "rate limit": "KeyRateLimitMiddleware",
    "validation": "RequestValidationMiddleware (limits, typed checks, injection screening)",
    "scopes": "ScopeAuthMiddleware (a second component lookup per request)",
    "auth": "API keys (ctxfy's verifier, FastMCP's auth middleware)",
}
_MCP_MIDDLEWARE = {
    "rate limit": "KeyRateLimitMiddleware",
    "validation": "RequestValidationMiddleware",
    "scopes": "ScopeAuthMiddleware",
}
_ASGI_MIDDLEWARE = {
    "security headers": ("ctxfy", "SecurityHeadersMiddleware"),
    "body limit": ("ctxfy", "BodyLimitMiddleware"),
    "host/origin guard": ("fastmcp", "HostOriginGuardMiddleware"),
    "request context": ("ctxfy", "RequestContextMiddleware"),
}
FULL = "B: ctxfy, everything on"
BARE = "A: bare FastMCP"


def _build(off: frozenset[str], data_dir: Path) -> Starlette:
    """ctxfy's app with the features in ``off`` switched off."""
    settings = Settings(
        stateless_http=True,
        json_response=True,
        rate_limit="1000000/minute",
        data_dir=data_dir,
        auth="auth" not in off,
    )
    metrics = NullMetricsRecorder() if "metrics" in off else build_prometheus_metrics()
    mcp = build_server(settings, metrics=metrics)
    dropped = {_MCP_MIDDLEWARE[step] for step in off if step in _MCP_MIDDLEWARE}
    mcp.middleware[:] = [m for m in mcp.middleware if type(m).__name__ not in dropped]
    app = build_http_app(mcp, settings, metrics=metrics)
    for step in off & set(_ASGI_MIDDLEWARE):
        package, name = _ASGI_MIDDLEWARE[step]
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
    names = [FULL, *(f"- {step}" for step in STEPS), BARE]
    with tempfile.TemporaryDirectory() as tmp, (Path(tmp) / "log.jsonl").open("w") as sink:
        data_dir = Path(tmp)
        store = open_key_store(f"sqlite:///{data_dir / 'ctxfy.db'}")
        issued = await KeyAdmin(store).create(name="bench", scope=Scope.WRITE)
        await store.aclose()
        key = str(issued.as_json()["key"])
        undo = configure_logging("INFO", "json", sink)
        try:
            apps: dict[str, Starlette] = {FULL: _build(frozenset(), data_dir)}
            offs: dict[str, frozenset[str]] = {FULL: frozenset()}
            off: frozenset[str] = frozenset()
            for step in STEPS:
                off = off | {step}
                apps[f"- {step}"] = _build(off, data_dir)
                offs[f"- {step}"] = off
            apps[BARE] = bare_server.build().http_app(
                path="/mcp", stateless_http=True, json_response=True
            )
            offs[BARE] = frozenset(STEPS)
            samples: dict[str, list[float]] = {name: [] for name in names}
            async with contextlib.AsyncExitStack() as stack:
                for app in apps.values():
                    await stack.enter_async_context(app.router.lifespan_context(app))
                for _ in range(rounds):
                    for name in names:
                        quiet = "request log line" in offs[name]
                        headers = (
                            []
                            if "auth" in offs[name]
                            else [(b"authorization", f"Bearer {key}".encode())]
                        )
                        if quiet:
                            logger.remove()
                        samples[name].append(await _drive(apps[name], body, headers, n))
                        if quiet:
                            undo = configure_logging("INFO", "json", sink)
        finally:
            undo()
    best = {name: min(values) for name, values in samples.items()}
    steps: dict[str, Any] = {}
    previous = best[FULL]
    for step, what in STEPS.items():
        current = best[f"- {step}"]
        steps[step] = {"switched_off": what, "cost_us": round((previous - current) * 1e6, 1)}
        previous = current
    steps["ctxfy's prompt vs bare FastMCP's"] = {
        "switched_off": "ctxfy's SpecPrompt (validates its arguments) for a plain function prompt",
        "cost_us": round((previous - best[BARE]) * 1e6, 1),
    }
    return {
        "method": "in-process ASGI, CPU time per prompts/get, min over rounds",
        "rounds": rounds,
        "requests_per_round": n,
        "A_us": round(best[BARE] * 1e6, 1),
        "B_us": round(best[FULL] * 1e6, 1),
        "overhead_us": round((best[FULL] - best[BARE]) * 1e6, 1),
        "variants_us": {name: round(value * 1e6, 1) for name, value in best.items()},
        "features": steps,
    }


def measure(*, smoke: bool = False) -> dict[str, Any]:
    """Run the breakdown (a few seconds in smoke mode, about two minutes otherwise)."""
    # Many short rounds: the minimum then comes from a quiet moment even on a busy machine.
    rounds, n = (1, 50) if smoke else (15, 400)
    return asyncio.run(_measure(rounds, n))


if __name__ == "__main__":
    print(json.dumps(measure(smoke="--smoke" in sys.argv), indent=2))
