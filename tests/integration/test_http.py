"""The server over real streamable HTTP on 127.0.0.1, with the routes around it."""

from typing import Any

import httpx
from fastmcp import Client
from mcp.types import CreateMessageResult, TextContent

from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings

SETTINGS = Settings(auth=False)


def app_for(**overrides: Any) -> Any:
    return build_http_app(build_server(SETTINGS, **overrides), SETTINGS)


async def test_prompts_over_http_and_health_routes(serve_http: Any) -> None:
    async with serve_http(app_for()) as base:
        async with Client(f"{base}/mcp") as client:
            names = {p.name for p in await client.list_prompts()}
            result = await client.get_prompt("prp", {"feature": "Rotate keys"})
        async with httpx.AsyncClient(base_url=base) as http:
            health = await http.get("/health")
            ready = await http.get("/ready")
    assert {"context_stack", "prp", "technical_spec"} <= names
    assert "Rotate keys" in result.messages[0].content.text
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"prompt_catalog": "ok", "rate_limit_storage": "ok"}


async def test_ready_answers_503_naming_the_failing_dependency(serve_http: Any) -> None:
    async def broken() -> None:
        raise ConnectionError("down")

    app = app_for(readiness_checks={"key_store": broken})
    async with serve_http(app) as base, httpx.AsyncClient() as http:
        ready = await http.get(f"{base}/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["failing"] == {"key_store": "ConnectionError"}
    assert body["checks"]["prompt_catalog"] == "ok"


async def test_sampling_reaches_the_clients_llm_over_http(serve_http: Any, seed_text: str) -> None:
    async def handler(messages: Any, params: Any, context: Any) -> CreateMessageResult:
        return CreateMessageResult(
            role="assistant",
            content=TextContent(type="text", text=seed_text),
            model="http-client-model",
        )

    async with (
        serve_http(app_for()) as base,
        Client(f"{base}/mcp", sampling_handler=handler) as client,
    ):
        result = await client.call_tool("generate_context_stack", {"objective": "Ship"})
    assert result.structured_content["model"] == "http-client-model"
