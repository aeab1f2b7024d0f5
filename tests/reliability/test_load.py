"""Load: 60 s at 32 connections of mixed traffic with several keys.

Checks, for the whole run: no unexpected error; exactly one request line in the log per
response the clients received; the HTTP request count in ``/metrics`` equals the number of
requests served (and the MCP operation count equals the number of MCP request lines); every
request id unique. ``CTXFY_RELIABILITY_LOAD_S`` shortens the run for local iterations.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.support import (
    SEED_STACK,
    CtxfyServer,
    Tracker,
    bearer,
    ctxfy_server,
    metric_sum,
    rpc,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]

LOAD_S = float(os.environ.get("CTXFY_RELIABILITY_LOAD_S", "60"))
CONNECTIONS = 32
BAD_KEY = "ctxfy_aaaaaaaaaaaa_" + "x" * 43

PROMPT_ARGS = {
    "objective": "Add per-key rate limits to the MCP server",
    "domain": "Platform engineering",
    "success_criteria": "p95 overhead under 1 ms per request",
}
SMALL_STACK = SEED_STACK[:2500]

Check = Callable[[httpx.Response], str | None]


@dataclass(frozen=True)
class Operation:
    """One kind of request in the mix, and what a correct answer looks like."""

    name: str
    weight: int
    method: str
    path: str
    json: dict[str, Any] | None
    auth: str  # "key" (the worker's key), "none" or "bad"
    check: Check


def _mcp_ok(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    data = response.json()
    if "error" in data:
        return f"JSON-RPC error {data['error']}"
    if data["result"].get("isError"):
        return f"tool error {str(data['result'])[:200]}"
    return None


def _mcp_invalid_params(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    code = response.json().get("error", {}).get("code")
    return None if code == -32602 else f"expected -32602, got {response.text[:200]}"


def _status(expected: int) -> Check:
    def check(response: httpx.Response) -> str | None:
        if response.status_code != expected:
            return f"expected HTTP {expected}, got {response.status_code}: {response.text[:200]}"
        return None

    return check


OPERATIONS = (
    Operation(
        "prompts/get",
        30,
        "POST",
        "/mcp",
        rpc("prompts/get", {"name": "context_stack", "arguments": PROMPT_ARGS}),
        "key",
        _mcp_ok,
    ),
    Operation(
        "tools/call lint",
        12,
        "POST",
        "/mcp",
        rpc("tools/call", {"name": "lint_context_stack", "arguments": {"markdown": SMALL_STACK}}),
        "key",
        _mcp_ok,
    ),
    Operation("prompts/list", 8, "POST", "/mcp", rpc("prompts/list"), "key", _mcp_ok),
    Operation("tools/list", 5, "POST", "/mcp", rpc("tools/list"), "key", _mcp_ok),
    Operation(
        "resources/read",
        5,
        "POST",
        "/mcp",
        rpc("resources/read", {"uri": "ctxfy://templates/context-stack"}),
        "key",
        _mcp_ok,
    ),
    Operation(
        "REST prompt", 10, "POST", "/v1/prompts/context_stack", PROMPT_ARGS, "key", _status(200)
    ),
    Operation("REST list", 5, "GET", "/v1/prompts", None, "key", _status(200)),
    Operation("health", 12, "GET", "/health", None, "none", _status(200)),
    Operation("ready", 5, "GET", "/ready", None, "none", _status(200)),
    Operation(
        "invalid params (expected -32602)",
        4,
        "POST",
        "/mcp",
        rpc("prompts/get", {"name": "context_stack", "arguments": {"domain": "x"}}),
        "key",
        _mcp_invalid_params,
    ),
    Operation("bad key (expected 401)", 4, "POST", "/mcp", rpc("ping"), "bad", _status(401)),
)


@dataclass
class Totals:
    """What the clients saw."""

    by_operation: dict[str, int]
    unexpected: list[str]
    latencies_s: list[float]


async def _worker(
    index: int, *, server: CtxfyServer, key: str, tracker: Tracker, deadline: float, totals: Totals
) -> None:
    rng = random.Random(index)  # noqa: S311 - a reproducible mix, not a secret
    weights = [op.weight for op in OPERATIONS]
    async with tracker.async_client(
        base_url=server.base, timeout=30, limits=httpx.Limits(max_connections=1)
    ) as client:
        while time.monotonic() < deadline:
            op = rng.choices(OPERATIONS, weights)[0]
            headers = {"Content-Type": "application/json"}
            if op.path == "/mcp":
                headers = bearer(BAD_KEY if op.auth == "bad" else key)
            elif op.auth == "key":
                headers["Authorization"] = f"Bearer {key}"
            started = time.perf_counter()
            try:
                response = await client.request(op.method, op.path, json=op.json, headers=headers)
            except httpx.HTTPError as exc:
                totals.unexpected.append(f"{op.name}: {type(exc).__name__}: {exc}")
                continue
            totals.latencies_s.append(time.perf_counter() - started)
            problem = op.check(response)
            if problem is not None:
                totals.unexpected.append(f"{op.name}: {problem}")
            totals.by_operation[op.name] = totals.by_operation.get(op.name, 0) + 1


async def _run_load(server: CtxfyServer, keys: list[str], tracker: Tracker) -> Totals:
    totals = Totals({}, [], [])
    deadline = time.monotonic() + LOAD_S
    await asyncio.gather(
        *(
            _worker(
                i,
                server=server,
                key=keys[i % len(keys)],
                tracker=tracker,
                deadline=deadline,
                totals=totals,
            )
            for i in range(CONNECTIONS)
        )
    )
    return totals


def test_mixed_load_is_served_logged_and_counted_exactly(tmp_path: Path) -> None:
    tracker = Tracker()
    env = {"CTXFY_RATE_LIMIT": "1000000/minute"}
    with ctxfy_server(tmp_path, env, tracker) as server:
        keys = [server.create_key("write")[1] for _ in range(4)]
        keys += [server.create_key("read")[1] for _ in range(2)]
        totals = asyncio.run(_run_load(server, keys, tracker))
        served_before_scrape = len(tracker.ids)
        samples = server.metrics(keys[0])
        assert server.stop() == 0, server.stderr()[-2000:]

    served = sum(totals.by_operation.values())
    latencies = sorted(totals.latencies_s)
    print(
        f"\nload: {served} requests in {LOAD_S:g} s ({served / LOAD_S:.0f}/s) over "
        f"{CONNECTIONS} connections; client p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms; mix {totals.by_operation}"
    )
    assert not totals.unexpected, (
        f"{len(totals.unexpected)} unexpected answers: {totals.unexpected[:5]}"
    )
    assert set(totals.by_operation) == {op.name for op in OPERATIONS}

    ids = tracker.ids
    assert len(ids) == len(set(ids)), "request ids are not unique"
    lines = server.request_lines()
    logged = [line["request_id"] for line in lines]
    assert len(logged) == len(set(logged)), "a request has several request lines"
    assert sorted(logged) == sorted(ids), (
        f"{len(logged)} request lines for {len(ids)} responses; "
        f"unlogged {list(set(ids) - set(logged))[:3]}, unknown {list(set(logged) - set(ids))[:3]}"
    )

    # The scrape does not count itself: every response received before it is in /metrics.
    http_count = metric_sum(samples, "http_server_request_duration_seconds_count")
    assert http_count == served_before_scrape
    # MCP operations: one per mcp.request line, plus one per REST prompt or list call
    # (the REST façade records the operation MCP would have run).
    mcp_lines = sum(1 for line in lines if line["event"] == "mcp.request")
    rest_operations = totals.by_operation["REST prompt"] + totals.by_operation["REST list"]
    assert (
        metric_sum(samples, "mcp_server_operation_duration_seconds_count")
        == mcp_lines + rest_operations
    )
