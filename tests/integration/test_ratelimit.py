"""Per-key rate limits: the limiter, MCP errors, REST headers, two replicas on one Redis."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from loguru import logger
from mcp import McpError

import ctxfy
from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.keystore_redis import RedisKeyStore
from ctxfy.adapters.logging import render_json
from ctxfy.adapters.ratelimit import KeyRateLimiter, rate_limit_headers
from ctxfy.core.errors import ConfigurationError, RateLimitUnavailableError
from ctxfy.core.keys import Scope
from ctxfy.settings import Settings
from ctxfy.testing import free_tcp_port
from tests.integration.access_support import (
    FakeClock,
    Ticker,
    build_access_mcp,
    serve_app,
)
from tests.integration.rest_support import rest_server

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


@pytest.fixture
def audit_events() -> Iterator[list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    handler = logger.add(lambda m: events.append(dict(m.record["extra"])), level="DEBUG")
    yield events
    logger.remove(handler)


async def test_limiter_counts_per_key_and_honours_overrides(
    audit_events: list[dict[str, Any]],
) -> None:
    limiter = KeyRateLimiter("3/minute")
    decisions = [await limiter.hit("key-a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].retry_after >= 1
    assert (await limiter.hit("key-b")).allowed
    assert [(await limiter.hit("key-c", "1/minute")).allowed for _ in range(2)] == [True, False]
    blocked = [e for e in audit_events if e.get("event") == "ratelimit.blocked"]
    assert [e["key_id"] for e in blocked] == ["key-a", "key-c"]


async def test_a_corrupt_override_falls_back_to_the_default() -> None:
    limiter = KeyRateLimiter("2/minute")
    assert [(await limiter.hit("k", "lots")).allowed for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    ("default", "storage", "variable"),
    [
        ("often", "memory://", "CTXFY_RATE_LIMIT"),
        ("0/minute", "memory://", "CTXFY_RATE_LIMIT"),
        ("10/minute;100/day", "memory://", "CTXFY_RATE_LIMIT"),
        ("10/minute", "memcached://127.0.0.1", "CTXFY_RATE_LIMIT_STORAGE"),
        ("10/minute", "127.0.0.1:6379", "CTXFY_RATE_LIMIT_STORAGE"),
    ],
)
def test_bad_configuration_names_the_variable(default: str, storage: str, variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        KeyRateLimiter(default, storage)


async def test_storage_failure_refuses_and_is_audited(audit_events: list[dict[str, Any]]) -> None:
    limiter = KeyRateLimiter("10/minute", f"redis://127.0.0.1:{free_tcp_port()}/0", timeout=0.5)
    with pytest.raises(RateLimitUnavailableError):
        await limiter.hit("key-a")
    with pytest.raises(RateLimitUnavailableError):
        await limiter.ping()
    assert any(e.get("event") == "ratelimit.unavailable" for e in audit_events)


def test_rest_headers_follow_the_decision() -> None:
    from ctxfy.core.access import RateLimitDecision

    allowed = rate_limit_headers(RateLimitDecision(True, 10, 4, 30))
    assert allowed == {"RateLimit-Limit": "10", "RateLimit-Remaining": "4", "RateLimit-Reset": "30"}
    refused = rate_limit_headers(RateLimitDecision(False, 10, 0, 30))
    assert refused["Retry-After"] == "30"


async def test_mcp_requests_over_the_limit_get_a_json_rpc_error_with_retry_time() -> None:
    store = InMemoryKeyStore()
    limiter = KeyRateLimiter("3/minute")
    mcp, admin, _ = build_access_mcp(store, clock=FakeClock(), ticker=Ticker(), limiter=limiter)
    key = (await admin.create(name="busy", scope=Scope.READ)).key.text
    async with (
        serve_app(mcp.http_app(path="/mcp")) as url,
        Client(f"{url}/mcp", auth=key) as client,  # initialize counts as one request
    ):
        await client.list_tools()
        await client.call_tool("lint_context_stack", {"text": "x"})
        with pytest.raises(McpError, match="retry after") as info:
            await client.list_tools()
    assert info.value.error.code == -32000
    assert isinstance(info.value.error.data, dict)
    assert info.value.error.data["retry_after"] >= 1


def _rpc_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a streamable-HTTP answer (plain JSON or one SSE event)."""
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        body: dict[str, Any] = json.loads(data[-1])
        return body
    return dict(response.json())


async def test_a_tool_call_over_the_limit_gets_the_same_json_rpc_error() -> None:
    store = InMemoryKeyStore()
    limiter = KeyRateLimiter("3/minute")
    mcp, admin, _ = build_access_mcp(store, clock=FakeClock(), ticker=Ticker(), limiter=limiter)
    key = (await admin.create(name="busy", scope=Scope.READ)).key.text
    headers = {"X-API-Key": key, "Accept": "application/json, text/event-stream"}
    call = {"name": "lint_context_stack", "arguments": {"text": "x"}}
    async with (
        serve_app(mcp.http_app(path="/mcp")) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http,
    ):
        started = await http.post("/mcp", json=INITIALIZE)  # request 1
        assert "result" in _rpc_body(started)
        headers["Mcp-Session-Id"] = started.headers["mcp-session-id"]
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await http.post("/mcp", json=initialized, headers=headers)
        # No tools/list first: the MCP SDK then lists tools itself inside the first
        # tools/call, which must not count as a request of its own.
        answers = [
            _rpc_body(
                await http.post(
                    "/mcp",
                    json={"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": call},
                    headers=headers,
                )
            )
            for n in (2, 3, 4)
        ]
    assert [a["result"]["isError"] for a in answers[:2]] == [False, False]
    refused = answers[2]
    assert "result" not in refused  # a JSON-RPC error, not a tool result with isError
    assert refused["error"]["code"] == -32000
    assert refused["error"]["data"]["retry_after"] >= 1
    assert refused["error"]["data"]["limit"] == 3
    assert "retry after" in refused["error"]["message"]


async def test_a_refused_tool_call_is_audited_with_its_request_id(tmp_path: Path) -> None:
    lines: list[dict[str, Any]] = []
    sink = logger.add(lambda m: lines.append(json.loads(render_json(m.record))), level="INFO")
    settings = Settings(data_dir=tmp_path / "data", rate_limit="2/minute")
    call = {"name": "lint_context_stack", "arguments": {"text": "x"}}
    try:
        async with rest_server(tmp_path, settings=settings) as server:
            headers = {**server.headers(), "Accept": "application/json, text/event-stream"}
            async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
                started = await http.post("/mcp", json=INITIALIZE)
                headers["Mcp-Session-Id"] = started.headers["mcp-session-id"]
                for n in (2, 3):
                    refused = _rpc_body(
                        await http.post(
                            "/mcp",
                            json={
                                "jsonrpc": "2.0",
                                "id": n,
                                "method": "tools/call",
                                "params": call,
                            },
                            headers=headers,
                        )
                    )
    finally:
        logger.remove(sink)
    assert refused["error"]["code"] == -32000
    [blocked] = [line for line in lines if line.get("event") == "ratelimit.blocked"]
    [logged] = [
        line
        for line in lines
        if line.get("event") == "mcp.request"
        and line.get("method") == "tools/call"
        and line.get("status") == "-32000"
    ]
    assert blocked["request_id"] is not None
    assert blocked["request_id"] == logged["request_id"]
    assert blocked["key_id"] == server.keys[Scope.READ].split("_")[1]


async def test_rest_routes_answer_429_with_retry_after_and_ratelimit_headers() -> None:
    store = InMemoryKeyStore()
    limiter = KeyRateLimiter("2/minute")
    mcp, admin, _ = build_access_mcp(store, clock=FakeClock(), ticker=Ticker(), limiter=limiter)
    key = (await admin.create(name="admin", scope=Scope.ADMIN)).key.text
    async with (
        serve_app(mcp.http_app(path="/mcp")) as url,
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as http,
    ):
        responses = [await http.get("/v1/keys") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses] == ["1", "0", "0"]
    assert responses[0].headers["ratelimit-limit"] == "2"
    refused = responses[2]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["content-type"] == "application/problem+json"
    assert "retry after" in refused.json()["detail"]


async def test_a_per_key_override_is_enforced_over_http() -> None:
    store = InMemoryKeyStore()
    limiter = KeyRateLimiter("100/minute")
    mcp, admin, _ = build_access_mcp(store, clock=FakeClock(), ticker=Ticker(), limiter=limiter)
    key = (await admin.create(name="slow", scope=Scope.ADMIN, rate_limit="1/minute")).key.text
    async with (
        serve_app(mcp.http_app(path="/mcp")) as url,
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as http,
    ):
        statuses = [(await http.get("/v1/keys")).status_code for _ in range(2)]
    assert statuses == [200, 429]


# --- two replicas sharing one Redis ---------------------------------------------------


def start_replica(port: int, redis_url: str, rate: str, log: Path) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("ratelimit_server.py")
    root = str(Path(next(iter(ctxfy.__path__))).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would stall the replica
        return subprocess.Popen(
            [sys.executable, str(script), str(port), redis_url, rate],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replica exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("replica did not become healthy")


def list_tools(url: str, key: str) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={
            "X-API-Key": key,
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _create_shared_key(redis_url: str) -> str:
    store = RedisKeyStore(redis_url)
    try:
        return (await KeyAdmin(store).create(name="shared", scope=Scope.READ)).key.text
    finally:
        await store.aclose()


@pytest.mark.redis
def test_two_server_processes_enforce_one_combined_count(redis_url: str, tmp_path: Path) -> None:
    key = asyncio.run(_create_shared_key(redis_url))
    ports = [free_tcp_port(), free_tcp_port()]
    logs = [tmp_path / f"replica-{port}.log" for port in ports]
    replicas = [
        start_replica(port, redis_url, "5/minute", log)
        for port, log in zip(ports, logs, strict=True)
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for process, url, log in zip(replicas, urls, logs, strict=True):
            wait_healthy(process, url, log)
        first = [list_tools(urls[0], key) for _ in range(3)]
        second = [list_tools(urls[1], key) for _ in range(2)]
        assert all("result" in body for body in first + second)
        for url in urls:
            refused = list_tools(url, key)
            assert refused["error"]["code"] == -32000
            assert refused["error"]["data"]["retry_after"] >= 1
    finally:
        for process in replicas:
            process.terminate()
        for process in replicas:
            process.wait(timeout=10)
    assert key not in "".join(log.read_text() for log in logs)
