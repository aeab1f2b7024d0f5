"""``/ready`` checks the prompt catalog without running the MCP middleware."""

import io
import json
from pathlib import Path

import httpx

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
