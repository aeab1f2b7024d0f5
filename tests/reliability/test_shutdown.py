"""Shutdown: SIGTERM during load.

In-flight requests complete, new connections are refused, the process exits with code 0
within ``CTXFY_SHUTDOWN_GRACE_S``, and every answered request has its log line. When
in-flight work outlasts the grace period, the process still exits 0 on time and the cut
requests are logged as cancelled.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.support import (
    CI_TOLERANCE_S,
    CtxfyServer,
    FakeLLM,
    Tracker,
    assert_logged_once,
    bearer,
    rpc,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

PROMPT = rpc("prompts/get", {"name": "context_stack", "arguments": {"objective": "Ship it"}})
GENERATE = rpc("tools/call", {"name": "generate_context_stack", "arguments": {"objective": "x"}})


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def _server(tmp_path: Path, llm: FakeLLM, grace_s: float, tracker: Tracker) -> CtxfyServer:
    env = {
        "CTXFY_LLM_BASE_URL": llm.base_url,
        "CTXFY_LLM_MODEL": "fake-reliability-model",
        "CTXFY_LLM_TIMEOUT_S": "60",
        "CTXFY_SHUTDOWN_GRACE_S": str(grace_s),
        "CTXFY_RATE_LIMIT": "1000000/minute",
    }
    return CtxfyServer(tmp_path, env, tracker).start()


def test_sigterm_drains_in_flight_refuses_new_and_exits_zero(tmp_path: Path) -> None:
    grace_s = 6.0
    tracker = Tracker()
    with FakeLLM() as llm:
        llm.mode, llm.delay_s = "slow", 2.0
        server = _server(tmp_path, llm, grace_s, tracker)
        try:
            _, key = server.create_key("write")

            async def scenario() -> tuple[list[httpx.Response], dict[str, int], float, float]:
                outcomes: dict[str, int] = {}
                stopping = asyncio.Event()

                async def generate() -> httpx.Response:
                    async with tracker.async_client(base_url=server.base, timeout=30) as client:
                        return await client.post("/mcp", json=GENERATE, headers=bearer(key))

                async def prompts() -> None:
                    async with tracker.async_client(base_url=server.base, timeout=10) as client:
                        while server.process is not None and server.process.poll() is None:
                            try:
                                response = await client.post(
                                    "/mcp", json=PROMPT, headers=bearer(key)
                                )
                            except httpx.TransportError:
                                # Refused or closed by the stopping server: expected only then.
                                kind = "refused" if stopping.is_set() else "error before SIGTERM"
                                outcomes[kind] = outcomes.get(kind, 0) + 1
                                await asyncio.sleep(0.05)
                                continue
                            ok = response.status_code == 200 and "result" in response.json()
                            kind = "served" if ok else f"unexpected {response.status_code}"
                            outcomes[kind] = outcomes.get(kind, 0) + 1

                slow = [asyncio.create_task(generate()) for _ in range(4)]
                load = [asyncio.create_task(prompts()) for _ in range(6)]
                await asyncio.sleep(0.7)  # the slow calls are now waiting for the LLM
                assert llm.calls == 4
                stopping.set()
                server.signal(signal.SIGTERM)
                sent = time.monotonic()
                await asyncio.sleep(0.3)
                assert _refused(server.port), "a new connection was accepted after SIGTERM"
                exit_code = await asyncio.to_thread(server.wait, grace_s + 10)
                exited_after = time.monotonic() - sent
                assert exit_code == 0, server.stderr()[-2000:]
                responses = await asyncio.gather(*slow)
                await asyncio.gather(*load)
                return responses, outcomes, exited_after, sent

            responses, outcomes, exited_after, _ = asyncio.run(scenario())
        finally:
            server.kill()

    for response in responses:  # in flight at SIGTERM: completed, not cut
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert result["isError"] is False, result
    assert set(outcomes) <= {"served", "refused"}, outcomes
    assert outcomes.get("served", 0) > 0
    assert exited_after <= grace_s + CI_TOLERANCE_S, exited_after
    assert exited_after >= 1.0, "exited before the in-flight requests could finish"
    print(f"\nshutdown: exited {exited_after:.2f} s after SIGTERM; prompts/get {outcomes}")
    assert_logged_once(server, tracker.ids)  # no lost log line


def test_work_longer_than_the_grace_period_is_cut_logged_and_exit_is_zero(
    tmp_path: Path,
) -> None:
    grace_s = 2.0
    tracker = Tracker()
    with FakeLLM() as llm:
        llm.mode, llm.hang_s = "hang", 30.0
        server = _server(tmp_path, llm, grace_s, tracker)
        try:
            _, key = server.create_key("write")

            async def scenario() -> tuple[float, list[BaseException | httpx.Response]]:
                async def generate() -> httpx.Response:
                    async with tracker.async_client(base_url=server.base, timeout=30) as client:
                        return await client.post("/mcp", json=GENERATE, headers=bearer(key))

                slow = [asyncio.create_task(generate()) for _ in range(2)]
                await asyncio.sleep(0.7)
                server.signal(signal.SIGTERM)
                sent = time.monotonic()
                code = await asyncio.to_thread(server.wait, grace_s + 15)
                assert code == 0, server.stderr()[-2000:]
                exited_after = time.monotonic() - sent
                results = await asyncio.gather(*slow, return_exceptions=True)
                return exited_after, results

            exited_after, results = asyncio.run(scenario())
        finally:
            server.kill()

    # uvicorn rounds the grace period up to whole seconds, then cancels what is left.
    assert exited_after <= grace_s + 1.0 + CI_TOLERANCE_S, exited_after
    # Cut before answering: uvicorn answers 500 itself (or the connection just closes).
    for result in results:
        if isinstance(result, httpx.Response):
            assert result.status_code == 500, result.text
        else:
            assert isinstance(result, httpx.TransportError), result
    cut = [
        line
        for line in server.request_lines()
        if line["event"] == "mcp.request" and line["target"] == "generate_context_stack"
    ]
    assert [line["status"] for line in cut] == ["cancelled", "cancelled"]
    assert_logged_once(server, tracker.ids)
