"""Faults: the LLM fallback fails, Redis goes away, the SQLite key store is locked.

Each fault must end in a clear, bounded refusal that is logged and counted, and the server
must keep serving everything that does not depend on the failed part.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.support import (
    CI_TOLERANCE_S,
    CtxfyServer,
    FakeLLM,
    RedisServer,
    Tracker,
    assert_logged_once,
    bearer,
    ctxfy_server,
    metric_sum,
    rpc,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

LLM_TIMEOUT_S = 1.5
PROMPT = rpc("prompts/get", {"name": "context_stack", "arguments": {"objective": "Ship it"}})
GENERATE = rpc("tools/call", {"name": "generate_context_stack", "arguments": {"objective": "x"}})


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        yield llm


@pytest.mark.parametrize(
    ("mode", "message", "error_type"),
    [
        ("error", "answered HTTP 500", "LLMResponseError"),
        ("garbage", "not a chat completion", "LLMResponseError"),
        ("hang", f"did not answer within {LLM_TIMEOUT_S:g} s", "timeout"),
    ],
)
def test_llm_fallback_faults_are_clear_bounded_counted_errors(
    tmp_path: Path, fake_llm: FakeLLM, mode: str, message: str, error_type: str
) -> None:
    tracker = Tracker()
    env = {
        "CTXFY_LLM_BASE_URL": fake_llm.base_url,
        "CTXFY_LLM_MODEL": "fake-reliability-model",
        "CTXFY_LLM_TIMEOUT_S": str(LLM_TIMEOUT_S),
    }
    fake_llm.mode = mode
    bound_s = (LLM_TIMEOUT_S if mode == "hang" else 0.0) + 0.1
    with ctxfy_server(tmp_path, env, tracker) as server:
        _, key = server.create_key("write")
        results: dict[str, Any] = {}

        def generate() -> None:
            with tracker.client(timeout=30) as client:
                started = time.perf_counter()
                response = client.post(f"{server.base}/mcp", json=GENERATE, headers=bearer(key))
                results["elapsed_s"] = time.perf_counter() - started
                results["response"] = response

        thread = threading.Thread(target=generate)
        thread.start()
        # While the fallback misbehaves, everything else is served at once.
        with tracker.client(timeout=5) as client:
            for _ in range(5):
                started = time.perf_counter()
                other = client.post(f"{server.base}/mcp", json=PROMPT, headers=bearer(key))
                assert other.status_code == 200
                assert "result" in other.json()
                assert time.perf_counter() - started < 1.0 + CI_TOLERANCE_S
                time.sleep(0.1)
        thread.join(timeout=30)

        response: httpx.Response = results["response"]
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert result["isError"] is True
        text = result["content"][0]["text"]
        assert message in text, text
        assert results["elapsed_s"] <= bound_s + CI_TOLERANCE_S, results["elapsed_s"]
        samples = server.metrics(key)
        with tracker.client(timeout=5) as client:
            after = client.post(f"{server.base}/mcp", json=PROMPT, headers=bearer(key))
        assert "result" in after.json(), "the server stopped serving after the fault"
        assert server.stop() == 0

    assert fake_llm.calls == 1, "a failed LLM call must not be retried"
    assert (
        metric_sum(samples, "gen_ai_client_operation_duration_seconds_count", error_type=error_type)
        == 1
    )
    tool_lines = [
        line
        for line in server.request_lines()
        if line["event"] == "mcp.request" and line["target"] == "generate_context_stack"
    ]
    assert len(tool_lines) == 1
    assert tool_lines[0]["status"] == "tool_error"
    # Measured in the server, the bound holds without the client's share of the tolerance.
    assert tool_lines[0]["latency_ms"] <= bound_s * 1000 + 50, tool_lines[0]["latency_ms"]
    assert_logged_once(server, tracker.ids)


def _classify(response: httpx.Response) -> str:
    if response.status_code == 503:
        problem = response.json()
        assert "key store is unavailable" in problem["detail"]
        assert response.headers["retry-after"]
        return "key store unavailable (503)"
    assert response.status_code == 200, response.text
    data = response.json()
    if "result" in data:
        return "served"
    assert data["error"]["code"] == -32000, data
    assert "Rate limit unavailable" in data["error"]["message"], data
    return "rate limit unavailable (-32000)"


async def _stream(
    server: CtxfyServer, key: str, tracker: Tracker, seconds: float
) -> tuple[dict[str, int], float]:
    """Four clients sending prompts/get for ``seconds``; outcome counts and slowest answer."""
    outcomes: dict[str, int] = {}
    slowest = 0.0
    deadline = time.monotonic() + seconds

    async def client_loop() -> None:
        nonlocal slowest
        async with tracker.async_client(base_url=server.base, timeout=15) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.post("/mcp", json=PROMPT, headers=bearer(key))
                slowest = max(slowest, time.perf_counter() - started)
                kind = _classify(response)
                outcomes[kind] = outcomes.get(kind, 0) + 1
                await asyncio.sleep(0.02)

    await asyncio.gather(*(client_loop() for _ in range(4)))
    return outcomes, slowest


def test_redis_outage_fails_closed_and_service_resumes(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    tracker = Tracker()
    env = {
        "CTXFY_KEY_STORE": redis.url,
        "CTXFY_RATE_LIMIT_STORAGE": redis.url,
        "CTXFY_RATE_LIMIT": "100000/minute",
    }
    try:
        with ctxfy_server(tmp_path / "ctxfy", env, tracker) as server:
            _, key = server.create_key("write")
            before, _ = asyncio.run(_stream(server, key, tracker, 1.5))
            assert set(before) == {"served"}

            redis.stop()
            # 6 s: longer than the 5 s key cache, so both fail-closed paths are exercised.
            during, slowest = asyncio.run(_stream(server, key, tracker, 6.0))
            assert "served" not in during, f"a request was served without Redis: {during}"
            assert set(during) == {"rate limit unavailable (-32000)", "key store unavailable (503)"}
            # Refusals are prompt: Redis's 2 s socket timeout is the bound, never exceeded.
            assert slowest <= 2.0 + CI_TOLERANCE_S
            with tracker.client(timeout=10) as client:
                assert client.get(f"{server.base}/health").status_code == 200
                ready = client.get(f"{server.base}/ready")
            assert ready.status_code == 503
            assert set(ready.json()["failing"]) == {"key_store", "rate_limit_storage"}

            redis.start()
            resumed_after = _wait_served(server, key, tracker, timeout_s=10.0)
            after, _ = asyncio.run(_stream(server, key, tracker, 1.5))
            assert set(after) == {"served"}
            assert server.stop() == 0
    finally:
        redis.stop()
    print(f"\nredis outage: before {before}, during {during}, resumed in {resumed_after:.2f} s")
    assert_logged_once(server, tracker.ids)


def _wait_served(server: CtxfyServer, key: str, tracker: Tracker, timeout_s: float) -> float:
    started = time.monotonic()
    with tracker.client(timeout=10) as client:
        while True:
            response = client.post(f"{server.base}/mcp", json=PROMPT, headers=bearer(key))
            if _classify(response) == "served":
                return time.monotonic() - started
            assert time.monotonic() - started < timeout_s, "service did not resume"
            time.sleep(0.1)


def test_locked_sqlite_key_store_gives_a_bounded_503_and_no_crash(tmp_path: Path) -> None:
    tracker = Tracker()
    busy_timeout_s = 5.0  # SqliteKeyStore's default busy timeout
    with ctxfy_server(tmp_path, {}, tracker) as server:
        _, key = server.create_key("read")  # never used yet: not in the key cache
        locker = sqlite3.connect(server.data_dir / "ctxfy.db", isolation_level=None)
        try:
            # Another process's writer holding the lock: in exclusive locking mode, readers
            # are shut out too, until the connection closes.
            locker.execute("PRAGMA locking_mode = EXCLUSIVE")
            locker.execute("BEGIN EXCLUSIVE")
            locker.execute("UPDATE api_keys SET name = name")

            async def burst() -> list[tuple[int, float]]:
                async with tracker.async_client(base_url=server.base, timeout=30) as client:

                    async def one() -> tuple[int, float]:
                        started = time.perf_counter()
                        response = await client.post("/mcp", json=PROMPT, headers=bearer(key))
                        return response.status_code, time.perf_counter() - started

                    async def health() -> float:
                        await asyncio.sleep(0.5)
                        started = time.perf_counter()
                        response = await client.get("/health")
                        assert response.status_code == 200
                        return time.perf_counter() - started

                    results = await asyncio.gather(*(one() for _ in range(16)), health())
                    health_s = results[-1]
                    assert isinstance(health_s, float)
                    assert health_s < 1.0 + CI_TOLERANCE_S, "the event loop was blocked"
                    return [r for r in results[:-1] if isinstance(r, tuple)]

            answers = asyncio.run(burst())
        finally:
            locker.close()
        assert {status for status, _ in answers} == {503}
        # 16 concurrent requests for one key share one store read: one busy timeout each.
        assert max(elapsed for _, elapsed in answers) <= busy_timeout_s + 1.0 + CI_TOLERANCE_S
        with tracker.client(timeout=10) as client:
            response = client.post(f"{server.base}/mcp", json=PROMPT, headers=bearer(key))
        assert response.status_code == 200, response.text
        assert "result" in response.json()
        assert server.stop() == 0
    unavailable = [r for r in server.log_records() if r.get("event") == "auth.store_unavailable"]
    assert unavailable, "the store failure was not audited"
    assert_logged_once(server, tracker.ids)
