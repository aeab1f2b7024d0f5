"""Fixtures for access-control tests: a real redis-server, an access-controlled server."""

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from ctxfy.adapters.http_security import SecurityHeadersMiddleware, host_origin_options
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.testing import free_tcp_port
from tests.integration.access_support import (
    AccessServer,
    FakeClock,
    Ticker,
    build_access_mcp,
    serve_app,
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server started for this test session on a free 127.0.0.1 port.

    Skips (only) when the ``redis-server`` binary is not installed.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_tcp_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied for this test."""
    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server


@pytest.fixture
async def access_server() -> AsyncIterator[AccessServer]:
    """ctxfy's verifier, scope middleware, key routes and HTTP hardening over real HTTP."""
    store, clock, ticker = InMemoryKeyStore(), FakeClock(), Ticker()
    mcp, admin, verifier = build_access_mcp(store, clock=clock, ticker=ticker)
    app = mcp.http_app(path="/mcp", **host_origin_options())
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: covers every refusal too
    async with serve_app(app) as url:
        yield AccessServer(url, store, admin, verifier, clock, ticker)
