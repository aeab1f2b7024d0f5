"""``/ready`` checks the prompt catalog without running the MCP middleware."""

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest
from fastmcp import FastMCP

from ctxfy.adapters.health import add_health_routes
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.logging import configure_logging
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings
from tests.conftest import ServeHttp


async def test_readiness_probes_do_not_spend_the_rate_limit(
    tmp_path: Path, serve_http: ServeHttp
) -> None:
    settings = Settings(
        data_dir=tmp_path, rate_limit="2/minute", stateless_http=True, json_response=True
    )
    mcp = build_server(settings, key_store=InMemoryKeyStore())
    async with serve_http(build_http_app(mcp, settings)) as base, httpx.AsyncClient() as client:
        statuses = [(await client.get(f"{base}/ready")).status_code for _ in range(5)]
        body = json.loads((await client.get(f"{base}/ready")).text)
    assert statuses == [200] * 5
    assert body["checks"]["prompt_catalog"] == "ok"


async def test_a_failing_dependency_is_logged_once_without_its_password(
    tmp_path: Path, serve_http: ServeHttp
) -> None:
    down = True

    async def database() -> None:
        if down:
            raise ConnectionError("cannot reach redis://admin:hunter2@db.internal:6379/0")

    settings = Settings(data_dir=tmp_path)
    mcp = build_server(settings, key_store=InMemoryKeyStore(), readiness_checks={"db": database})
    sink = io.StringIO()
    undo = configure_logging("INFO", "json", sink)
    try:
        async with (
            serve_http(build_http_app(mcp, settings)) as base,
            httpx.AsyncClient(base_url=base) as client,
        ):
            statuses = [(await client.get("/ready")).status_code for _ in range(3)]
            down = False
            statuses += [(await client.get("/ready")).status_code for _ in range(2)]
    finally:
        undo()
    assert statuses == [503, 503, 503, 200, 200]
    assert "hunter2" not in sink.getvalue()
    lines = [json.loads(line) for line in sink.getvalue().splitlines() if line]
    [failed] = [line for line in lines if line["event"] == "health.check_failed"]
    [recovered] = [line for line in lines if line["event"] == "health.check_recovered"]
    assert (failed["level"], failed["check"]) == ("WARNING", "db")
    assert failed["detail"] == "ConnectionError: cannot reach redis://***@db.internal:6379/0"
    assert (recovered["level"], recovered["check"]) == ("INFO", "db")
    probes = [line for line in lines if line["event"] == "http.request"]
    # Not-ready answers are visible at the default level; ready ones stay at DEBUG.
    assert [(line["status"], line["level"]) for line in probes] == [("503", "WARNING")] * 3
    assert failed["request_id"] == probes[0]["request_id"]


def health_events(sink: io.StringIO) -> list[tuple[str, str]]:
    lines = [json.loads(line) for line in sink.getvalue().splitlines() if line]
    return [
        (line["event"], line.get("detail", ""))
        for line in lines
        if str(line["event"]).startswith("health.")
    ]


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://:p@ss@db:6379/0", "ss"),
        ("redis://admin:pa/ss@db:6379", "pa/ss"),
    ],
    ids=["at-sign", "slash"],
)
async def test_passwords_holding_url_delimiters_are_hidden_whole(
    serve_http: ServeHttp, url: str, secret: str
) -> None:
    async def database() -> None:
        raise ConnectionError(f"cannot reach {url}")

    mcp: FastMCP = FastMCP("probe")
    add_health_routes(mcp, {"db": database})
    sink = io.StringIO()
    undo = configure_logging("INFO", "json", sink)
    try:
        async with serve_http(mcp.http_app()) as base, httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/ready")).status_code == 503
    finally:
        undo()
    [(event, detail)] = health_events(sink)
    assert event == "health.check_failed"
    assert detail.startswith("ConnectionError: cannot reach redis://***@db:6379")
    assert secret not in detail.removeprefix("ConnectionError: cannot reach redis://***@")


async def test_a_slow_stale_failure_does_not_override_a_newer_success(
    serve_http: ServeHttp,
) -> None:
    first_started = asyncio.Event()
    release_first = asyncio.Event()
    calls = 0

    async def database() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # started while the dependency was down; answers last
            first_started.set()
            await release_first.wait()
            raise ConnectionError("down")

    mcp: FastMCP = FastMCP("probe")
    add_health_routes(mcp, {"db": database}, check_timeout_s=30)
    sink = io.StringIO()
    undo = configure_logging("INFO", "json", sink)
    try:
        async with serve_http(mcp.http_app()) as base, httpx.AsyncClient(base_url=base) as client:
            stale = asyncio.create_task(client.get("/ready"))
            await first_started.wait()
            newer = await client.get("/ready")
            release_first.set()
            statuses = [newer.status_code, (await stale).status_code]
            statuses.append((await client.get("/ready")).status_code)
    finally:
        undo()
    assert statuses == [200, 503, 200]
    # The failure was already outdated when it came in: neither it nor a recovery is logged.
    assert health_events(sink) == []
