"""``/ready`` checks the prompt catalog without running the MCP middleware."""

import json
from pathlib import Path

import httpx

from ctxfy.adapters.keystore_memory import InMemoryKeyStore
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
