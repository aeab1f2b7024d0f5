"""Bad input at volume: malformed JSON, wrong JSON-RPC shapes, huge bodies, slow clients and
many connections at once. The server must answer each with a client error (never a 5xx),
refuse huge bodies with 413 before reading them, drop slow clients on time, keep serving
everyone else, stay within a bounded amount of memory, and exit cleanly afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ctxfy.adapters.body_limit import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES
from ctxfy.adapters.http_timeouts import DEFAULT_HEADER_TIMEOUT_S
from tests.reliability.support import (
    CI_TOLERANCE_S,
    CtxfyServer,
    Tracker,
    assert_logged_once,
    bearer,
    ctxfy_server,
    rpc,
    rss_mib,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

PROMPT = rpc("prompts/get", {"name": "context_stack", "arguments": {"objective": "Ship it"}})
#: Growth of the server's resident memory allowed while refusing huge bodies.
MEMORY_BOUND_MIB = 100.0
#: Growth allowed with 1000 requests in flight at once (measured: about 120 MiB).
CONCURRENCY_MEMORY_BOUND_MIB = 200.0

MALFORMED: list[bytes] = [
    b"",
    b"{",
    b"not json at all",
    b"\xff\xfe\x00garbage",
    b'{"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "context_st',
    b"[" * 100_000,  # nesting far beyond any parser's depth limit
    b"[" * 3_000 + b"]" * 3_000,  # deep but parseable: valid JSON, not JSON-RPC
    b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    b"1e999999",
    b"null",
    b'"just a string"',
]

WRONG_SHAPES: list[Any] = [
    {"jsonrpc": "1.0", "id": 1, "method": "ping"},
    {"id": 1, "method": "ping"},
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "2.0", "id": 1, "method": 42},
    {"jsonrpc": "2.0", "id": {"nested": True}, "method": "ping"},
    {"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": ["context_stack"]},
    {"jsonrpc": "2.0", "id": 1, "method": "prompts/get"},
    {"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": 7}},
    {"jsonrpc": "2.0", "id": 1, "method": "prompts/get", "params": {"name": "context_stack"}},
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "prompts/get",
        "params": {"name": "context_stack", "arguments": ["objective"]},
    },
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "lint_context_stack"}},
    {"jsonrpc": "2.0", "id": 1, "method": "no/such/method"},
    {"jsonrpc": "2.0", "method": "prompts/get", "params": {"name": "context_stack"}},
    [],
    [rpc("ping", request_id=1), rpc("ping", request_id=2)],
    {"jsonrpc": "2.0", "id": 1, "result": {}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CtxfyServer, str, Tracker]]:
    tracker = Tracker()
    with ctxfy_server(
        tmp_path_factory.mktemp("bad-input"), {"CTXFY_RATE_LIMIT": "1000000/minute"}, tracker
    ) as running:
        _, key = running.create_key("read")
        yield running, key, tracker
        assert running.stop() == 0, running.stderr()[-2000:]
        errors = [
            r
            for r in running.log_records()
            if r["level"] in ("ERROR", "CRITICAL") and not _known_sdk_noise(r)
        ]
        assert not errors, f"the server logged errors: {errors[:3]}"
        assert_logged_once(running, tracker.ids)


def _known_sdk_noise(record: dict[str, Any]) -> bool:
    """The MCP SDK's ERROR lines for a JSON-RPC *response* POSTed to a stateless server.

    The client gets 202 and the server carries on, but the SDK logs the stray response and
    then its per-request session's failure to write a log notification back
    (``docs/reliability.md``, known upstream behaviour).
    """
    message = str(record.get("message"))
    return str(record.get("logger", "")).startswith("mcp.server") and (
        "unknown request ID" in message or message == "Stateless session crashed"
    )


def _no_server_error(response: httpx.Response) -> None:
    """A client error: 4xx, 202 for a message needing no answer, or a JSON-RPC error
    (a tool called with wrong arguments answers with an ``isError`` result, as MCP says)."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code == 200:
        data = response.json()
        items = data if isinstance(data, list) else [data]
        for item in items:
            assert "error" in item or item["result"].get("isError") is True, data


def test_malformed_json_and_wrong_shapes_get_client_errors(
    server: tuple[CtxfyServer, str, Tracker],
) -> None:
    running, key, tracker = server
    with tracker.client(base_url=running.base, timeout=10) as client:
        for _ in range(10):
            for body in MALFORMED:
                started = time.perf_counter()
                response = client.post("/mcp", content=body, headers=bearer(key))
                assert time.perf_counter() - started < 2.0 + CI_TOLERANCE_S
                _no_server_error(response)
                assert response.status_code != 200 or "error" in response.json()
            for shape in WRONG_SHAPES:
                response = client.post("/mcp", content=json.dumps(shape), headers=bearer(key))
                _no_server_error(response)
        no_accept = {**bearer(key), "Accept": "text/html"}
        assert client.post("/mcp", json=PROMPT, headers=no_accept).status_code == 406
        plain = {**bearer(key), "Content-Type": "text/plain"}
        assert client.post("/mcp", json=PROMPT, headers=plain).status_code in {400, 415}
        assert client.post("/mcp", json=PROMPT, headers=bearer(key)).status_code == 200


async def _raw(port: int, data: bytes, *, read_s: float) -> tuple[int | None, float]:
    """Send ``data`` on a new connection; return (status or None if closed, seconds)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), read_s)
        return int(head.split()[1]), time.perf_counter() - started
    except (asyncio.IncompleteReadError, ConnectionError):
        return None, time.perf_counter() - started
    finally:
        writer.close()


def _count_413(server: CtxfyServer) -> int:
    return sum(1 for line in server.request_lines() if line.get("http_status") == 413)


async def _wait_for_413_lines(server: CtxfyServer, expected: int) -> None:
    """Wait (the log is written every 50 ms) until ``expected`` 413 request lines exist."""
    deadline = time.monotonic() + 5
    while _count_413(server) < expected:
        assert time.monotonic() < deadline, "the refused request has no 413 log line"
        await asyncio.sleep(0.05)


def _head(key: str, extra: str) -> bytes:
    lines = ["POST /mcp HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in bearer(key).items()]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def test_huge_bodies_are_refused_with_413_before_being_read(
    server: tuple[CtxfyServer, str, Tracker],
) -> None:
    running, key, _ = server

    async def scenario() -> None:
        logged = _count_413(running)
        # Only the headers are sent: a 413 proves the server did not wait for the body.
        declared = _head(key, "Content-Length: 104857600\r\n")
        for _ in range(20):
            status, elapsed = await _raw(running.port, declared, read_s=5)
            assert status == 413
            assert elapsed < 1.0 + CI_TOLERANCE_S
        just_over = _head(key, f"Content-Length: {DEFAULT_MAX_BODY_BYTES + 1}\r\n")
        assert (await _raw(running.port, just_over, read_s=5))[0] == 413
        await _wait_for_413_lines(running, logged + 21)  # each refusal has its log line

        # Chunked, no length: refused once the limit is passed, the rest left unread. The
        # client offers 16 times the limit; it must be stopped long before (loopback buffers
        # hold a few MiB). The server closes with the rest unread, so its reset may overtake
        # the 413 on the client side: then the 413 is found in the server's log instead.
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        answer = asyncio.create_task(reader.readuntil(b"\r\n"))
        writer.write(_head(key, "Transfer-Encoding: chunked\r\n"))
        chunk, offered = b"x" * 65536, 16 * DEFAULT_MAX_BODY_BYTES
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < offered and not answer.done():
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent += len(chunk)
                await asyncio.sleep(0)  # let the answer be read as soon as it arrives
        assert sent < offered, "the server read the whole body"
        try:
            head: bytes | None = await asyncio.wait_for(answer, 5)
        except ConnectionError:
            head = None
        writer.close()
        assert head is None or head.split()[1] == b"413", head
        await _wait_for_413_lines(running, logged + 22)

    before = rss_mib(running.pid)
    asyncio.run(scenario())
    assert rss_mib(running.pid) - before < MEMORY_BOUND_MIB
    with httpx.Client(timeout=5) as client:  # a valid large request is still accepted
        big = rpc(
            "tools/call",
            {"name": "lint_context_stack", "arguments": {"markdown": "# Stack\n" + "a" * 150_000}},
        )
        response = client.post(f"{running.base}/mcp", json=big, headers=bearer(key))
    assert response.status_code == 200, response.text
    assert "result" in response.json()


def test_slow_clients_are_dropped_on_time_while_others_are_served(
    server: tuple[CtxfyServer, str, Tracker],
) -> None:
    running, key, tracker = server

    async def scenario() -> tuple[list[tuple[int | None, float]], list[tuple[int | None, float]]]:
        # Slowloris: half a request, then nothing.
        slow_headers = [
            _raw(running.port, b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow", read_s=30)
            for _ in range(50)
        ]
        # Headers complete, body promised but stalled after 10 bytes.
        stalled = _head(key, "Content-Length: 1000\r\n") + b'{"jsonrpc"'
        slow_bodies = [_raw(running.port, stalled, read_s=30) for _ in range(20)]
        slow = asyncio.gather(asyncio.gather(*slow_headers), asyncio.gather(*slow_bodies))

        async with tracker.async_client(base_url=running.base, timeout=10) as client:
            for _ in range(40):  # 8 s of normal traffic meanwhile
                started = time.perf_counter()
                response = await client.post("/mcp", json=PROMPT, headers=bearer(key))
                assert response.status_code == 200
                assert time.perf_counter() - started < 1.0 + CI_TOLERANCE_S
                await asyncio.sleep(0.2)
        headers_done, bodies_done = await slow
        return headers_done, bodies_done

    headers_done, bodies_done = asyncio.run(scenario())
    for status, elapsed in headers_done:
        assert status == 408
        assert DEFAULT_HEADER_TIMEOUT_S - 0.5 <= elapsed <= DEFAULT_HEADER_TIMEOUT_S + 1.5
    for status, elapsed in bodies_done:
        assert status == 408
        assert DEFAULT_BODY_TIMEOUT_S - 0.5 <= elapsed <= DEFAULT_BODY_TIMEOUT_S + 1.5


def test_a_thousand_concurrent_connections_are_all_served_in_bounded_memory(
    server: tuple[CtxfyServer, str, Tracker],
) -> None:
    running, key, _ = server
    body = json.dumps(PROMPT).encode()
    request = _head(key, f"Content-Length: {len(body)}\r\n") + body

    async def burst() -> list[tuple[int | None, float]]:
        return await asyncio.gather(*(_raw(running.port, request, read_s=90) for _ in range(1000)))

    before = rss_mib(running.pid)
    sizes = []
    for _ in range(2):
        results = asyncio.run(burst())
        statuses = [status for status, _ in results]
        assert statuses.count(200) == 1000, {s: statuses.count(s) for s in set(statuses)}
        sizes.append(rss_mib(running.pid))
    print(
        f"\n1000 concurrent: slowest {max(t for _, t in results):.1f} s; RSS {before:.0f} MiB, "
        f"then {sizes[0]:.0f} and {sizes[1]:.0f} MiB after each burst"
    )
    # Memory follows the number of requests in flight (about 120 KiB each), not their total:
    # a second identical burst needs (almost) nothing more.
    assert sizes[0] - before < CONCURRENCY_MEMORY_BOUND_MIB
    assert sizes[1] - sizes[0] < 40
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{running.base}/health").status_code == 200
