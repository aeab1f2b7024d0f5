"""The request-header timeout: slow clients are dropped, normal ones are not affected."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.h11_impl import H11Protocol

from ctxfy.adapters.http_timeouts import with_header_timeout
from ctxfy.testing import free_tcp_port

TIMEOUT_S = 0.4


async def _hello(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """uvicorn on a free port with a 0.4 s header timeout."""
    app = Starlette(routes=[Route("/", _hello)])
    chosen = free_tcp_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=chosen,
        log_config=None,
        http=with_header_timeout(H11Protocol, TIMEOUT_S),
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield chosen
    finally:
        server.should_exit = True
        await task


async def _read_all(reader: asyncio.StreamReader, limit_s: float = 5.0) -> bytes:
    return await asyncio.wait_for(reader.read(), limit_s)


async def test_incomplete_headers_get_408_and_the_connection_closes(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    answer = await _read_all(reader)
    elapsed = time.perf_counter() - started
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + 1.0


async def test_a_silent_connection_is_closed_too(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await _read_all(reader)).startswith(b"HTTP/1.1 408")
    writer.close()


async def test_trickling_headers_do_not_extend_the_deadline(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(reader.read(4096))  # read while writing: see the 408 first
    started = time.perf_counter()
    for byte in b"GET / HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n":
        if answer.done():
            break
        with contextlib.suppress(ConnectionError):
            writer.write(bytes([byte]))
            await writer.drain()
        await asyncio.sleep(0.05)
    head = await asyncio.wait_for(answer, 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408")
    assert time.perf_counter() - started < TIMEOUT_S + 1.0


async def test_complete_requests_on_a_kept_alive_connection_are_unaffected(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(3):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(5) == b"hello"
        await asyncio.sleep(TIMEOUT_S * 1.5)  # idle between requests: keep-alive's business
    # A half-sent second request on the same connection is timed out like a first one.
    writer.write(b"GET / HTTP/1.1\r\n")
    assert (await _read_all(reader)).startswith(b"HTTP/1.1 408")
    writer.close()


def test_the_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        with_header_timeout(AutoHTTPProtocol, 0)


def test_the_class_derives_from_the_protocol_it_wraps() -> None:
    protocol = with_header_timeout(AutoHTTPProtocol)
    assert issubclass(protocol, AutoHTTPProtocol)
    assert protocol.__qualname__ == f"HeaderTimeout{AutoHTTPProtocol.__name__}"
