"""The REST façade over real HTTP: same auth, scopes, limits and validation as MCP."""

import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp import McpError
from mcp.types import ErrorData

from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.rest_facade import register_rest_api
from ctxfy.core.keys import ApiKey, Scope
from ctxfy.core.params import validate_arguments
from ctxfy.prompts import CONTEXT_STACK
from ctxfy.settings import Settings
from ctxfy.testing import RecordingMetrics, ScriptedLLM
from tests.integration.access_support import serve_app
from tests.integration.rest_support import rest_server, write_prompt_dir

PROBLEM = "application/problem+json"
ROUTES = [
    ("GET", "/v1/prompts"),
    ("POST", "/v1/prompts/prp"),
    ("GET", "/v1/tools"),
    ("POST", "/v1/tools/lint_context_stack"),
]


@pytest.fixture
def log_sink() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    undo = configure_logging("INFO", "json", sink)
    try:
        yield sink
    finally:
        undo()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


async def test_prompt_list_has_every_prompt_with_its_declared_schema(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        response = await http.get("/v1/prompts")
    assert response.status_code == 200
    prompts = {p["name"]: p for p in response.json()["prompts"]}
    assert {"context_stack", "prp", "technical_spec"} <= set(prompts)
    entry = prompts["context_stack"]
    declared = CONTEXT_STACK.arguments_schema()
    assert entry["schema"]["required"] == declared["required"] == ["objective"]
    assert set(entry["schema"]["properties"]) == {p.name for p in CONTEXT_STACK.params}
    assert entry["description"] == CONTEXT_STACK.description
    assert [a["name"] for a in entry["arguments"]] == [p.name for p in CONTEXT_STACK.params]
    assert response.headers["RateLimit-Limit"] == "120"


async def test_posting_typed_arguments_renders_the_prompt(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        response = await http.post(
            "/v1/prompts/context_stack", json={"objective": "Ship the REST façade"}
        )
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == CONTEXT_STACK.description
    [message] = body["messages"]
    assert message["role"] == "user"
    assert message["content"]["type"] == "text"
    assert (
        '<user_input name="objective">\nShip the REST façade\n</user_input>'
        in message["content"]["text"]
    )


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_requests_without_a_valid_key_get_a_401_problem(
    tmp_path: Path, method: str, path: str
) -> None:
    async with rest_server(tmp_path) as server, server.client(None) as http:
        missing = await http.request(method, path, json={})
        wrong = await http.request(
            method, path, json={}, headers={"X-API-Key": "ctxfy_" + "a" * 12 + "_" + "b" * 43}
        )
    for response in (missing, wrong):
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_bearer_and_x_api_key_are_both_accepted(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, httpx.AsyncClient(base_url=server.url) as http:
        bearer = await http.get("/v1/tools", headers=server.headers(bearer=True))
        header = await http.get("/v1/tools", headers=server.headers())
    assert bearer.status_code == header.status_code == 200


async def test_invalid_arguments_get_a_422_with_the_validators_error_list(
    tmp_path: Path,
) -> None:
    arguments = {"objective": "   ", "task_type": "x" * 101, "colour": "blue"}
    async with rest_server(tmp_path) as server, server.client() as http:
        response = await http.post("/v1/prompts/context_stack", json=arguments)
    body = assert_problem(response, 422)
    expected = validate_arguments(CONTEXT_STACK.params, arguments).errors
    assert body["errors"] == [e.to_dict() for e in expected]
    assert {e["rule"] for e in body["errors"]} == {"required", "max_length", "unknown"}


async def test_wrong_json_types_are_refused_naming_each_field(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", prompts_dir=write_prompt_dir(tmp_path / "p"))
    async with rest_server(tmp_path, settings=settings) as server, server.client() as http:
        builtin = await http.post(
            "/v1/prompts/context_stack", json={"objective": 5, "domain": None}
        )
        user = await http.post(
            "/v1/prompts/release_notes", json={"changes": "one change", "limit": "12"}
        )
    assert [(e["field"], e["rule"]) for e in assert_problem(builtin, 422)["errors"]] == [
        ("objective", "type"),
        ("domain", "type"),
    ]
    assert [(e["field"], e["rule"]) for e in assert_problem(user, 422)["errors"]] == [
        ("changes", "type"),
        ("limit", "type"),
    ]


async def test_malformed_bodies_get_problems(tmp_path: Path) -> None:
    path = "/v1/prompts/prp"
    json_type = {"Content-Type": "application/json"}
    async with rest_server(tmp_path) as server, server.client() as http:
        not_json = await http.post(path, content=b"{nope", headers=json_type)
        not_object = await http.post(path, json=["feature"])
        too_deep = await http.post(path, content=b"[" * 200_000, headers=json_type)
        wrong_type = await http.post(
            path, content=b"feature=x", headers={"Content-Type": "text/plain"}
        )
    assert_problem(not_json, 400)
    assert_problem(too_deep, 400)
    assert_problem(not_object, 400)
    assert_problem(wrong_type, 415)


@pytest.mark.parametrize("streamed", [False, True])
async def test_the_body_limit_is_the_servers_max_body_bytes(tmp_path: Path, streamed: bool) -> None:
    limit = 3 * 1024 * 1024  # above the 2 MiB the façade once fixed, below the default
    settings = Settings(data_dir=tmp_path / "data", max_body_bytes=limit)

    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        yield data[:1024]
        yield data[1024:]

    def body(size: int) -> bytes | AsyncIterator[bytes]:
        data = b"{" + b" " * (size - 2) + b"}"
        return chunks(data) if streamed else data  # streamed: no Content-Length

    json_type = {"Content-Type": "application/json"}
    async with rest_server(tmp_path, settings=settings) as server, server.client() as http:
        at_limit = await http.post("/v1/prompts/prp", content=body(limit), headers=json_type)
        over = await http.post("/v1/prompts/prp", content=body(limit + 1), headers=json_type)
    assert [e["field"] for e in assert_problem(at_limit, 422)["errors"]] == ["feature"]
    assert str(limit) in assert_problem(over, 413)["detail"]


async def test_unknown_prompts_and_tools_are_404(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        prompt = await http.post("/v1/prompts/nothing", json={})
        tool = await http.post("/v1/tools/nothing", json={})
    assert "nothing" in assert_problem(prompt, 404)["detail"]
    assert "nothing" in assert_problem(tool, 404)["detail"]


async def test_tool_list_is_filtered_by_the_keys_scope(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, server.client() as reader:
        read = (await reader.get("/v1/tools")).json()["tools"]
        write = (await reader.get("/v1/tools", headers=server.headers(Scope.WRITE))).json()
    assert [t["name"] for t in read] == ["lint_context_stack"]
    tools = {t["name"]: t for t in write["tools"]}
    assert set(tools) == {"lint_context_stack", "generate_context_stack"}
    assert tools["generate_context_stack"]["scope"] == "write"
    assert tools["generate_context_stack"]["needs_llm"] is True


async def test_lint_tool_answers_what_mcp_tools_call_returns(
    tmp_path: Path, seed_text: str
) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        response = await http.post("/v1/tools/lint_context_stack", json={"markdown": seed_text})
        transport = StreamableHttpTransport(f"{server.url}/mcp", headers=server.headers())
        async with Client(transport) as client:
            result = await client.call_tool("lint_context_stack", {"markdown": seed_text})
    assert response.status_code == 200
    assert response.json() == result.structured_content
    assert response.json()["report"]["score"] > 0


async def test_llm_tool_needs_the_write_scope(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        response = await http.post("/v1/tools/generate_context_stack", json={"objective": "x"})
    assert_problem(response, 403)
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_llm_tool_without_a_fallback_answers_501_saying_how_to_configure(
    tmp_path: Path,
) -> None:
    async with rest_server(tmp_path) as server, server.client(Scope.WRITE) as http:
        response = await http.post("/v1/tools/generate_context_stack", json={"objective": "x"})
    detail = assert_problem(response, 501)["detail"]
    assert "CTXFY_LLM_BASE_URL" in detail
    assert "CTXFY_LLM_MODEL" in detail


async def test_llm_tool_uses_the_server_side_fallback(tmp_path: Path, seed_text: str) -> None:
    llm = ScriptedLLM([seed_text], model="fallback-7")
    async with (
        rest_server(tmp_path, llm_fallback=llm) as server,
        server.client(Scope.WRITE) as http,
    ):
        response = await http.post(
            "/v1/tools/generate_context_stack", json={"objective": "Ship the façade"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "fallback-7"
    assert "Ship the façade" in llm.requests[0].messages[0].text


async def test_rest_and_mcp_share_one_rate_limit_counted_once_per_request(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", rate_limit="4/minute")
    async with rest_server(tmp_path, settings=settings) as server, server.client() as http:
        listing = await http.get("/v1/prompts")
        rendered = await http.post("/v1/prompts/prp", json={"feature": "Rotate keys"})
        refused_at_edge = await http.post(
            "/v1/prompts/prp", content=b"{", headers={"Content-Type": "application/json"}
        )
        invalid = await http.post("/v1/prompts/prp", json={})
        over = await http.post("/v1/prompts/prp", json={"feature": "Rotate keys"})
        transport = StreamableHttpTransport(f"{server.url}/mcp", headers=server.headers())
        with pytest.raises(McpError, match=r"Rate limit exceeded"):
            async with Client(transport) as client:
                await client.list_prompts()
    remaining = [
        r.headers["RateLimit-Remaining"] for r in (listing, rendered, refused_at_edge, invalid)
    ]
    assert remaining == ["3", "2", "1", "0"]
    assert_problem(over, 429)
    assert int(over.headers["Retry-After"]) >= 1
    assert over.headers["RateLimit-Remaining"] == "0"


class Spy(Middleware):
    """Records what reaches the middleware chain; refuses prompt ``strict``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, Any]] = []

    async def on_request(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        self.seen.append((context.method, getattr(context.message, "arguments", None)))
        if getattr(context.message, "name", None) == "strict":
            raise McpError(
                ErrorData(
                    code=-32602,
                    message="bad",
                    data={"errors": [{"field": "a", "rule": "r", "message": "m"}]},
                )
            )
        return await call_next(context)


async def test_rest_routes_dispatch_through_the_servers_middleware_chain() -> None:
    spy = Spy()
    mcp: FastMCP[Any] = FastMCP("plain", middleware=[spy])

    @mcp.prompt
    def greet(name: str, times: int = 1) -> str:
        return f"Hello {name} " * times

    @mcp.prompt
    def strict(a: str) -> str:
        return a

    register_rest_api(mcp, auth=False)
    async with serve_app(mcp.http_app()) as url, httpx.AsyncClient(base_url=url) as http:
        listed = await http.get("/v1/prompts")
        greeted = await http.post("/v1/prompts/greet", json={"name": "Ada", "times": "2"})
        refused = await http.post("/v1/prompts/strict", json={"a": "x"})
    assert listed.status_code == 200
    assert greeted.json()["messages"][0]["content"]["text"] == "Hello Ada Hello Ada "
    assert assert_problem(refused, 422)["errors"] == [{"field": "a", "rule": "r", "message": "m"}]
    assert spy.seen == [
        ("prompts/list", None),
        ("prompts/get", {"name": "Ada", "times": "2"}),
        ("prompts/get", {"a": "x"}),
    ]


async def test_each_rest_request_writes_exactly_one_request_line(
    tmp_path: Path, log_sink: io.StringIO
) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        ok = await http.post("/v1/prompts/prp", json={"feature": "Rotate keys"})
        invalid = await http.post("/v1/prompts/prp", json={})
    lines = [json.loads(line) for line in log_sink.getvalue().splitlines()]
    requests = [line for line in lines if line.get("event") in {"http.request", "mcp.request"}]
    assert [(r["event"], r["request_id"]) for r in requests] == [
        ("http.request", ok.headers["X-Request-ID"]),
        ("http.request", invalid.headers["X-Request-ID"]),
    ]
    assert [r["status"] for r in requests] == ["ok", "422"]


async def test_with_auth_off_rest_routes_serve_anonymous_requests(tmp_path: Path) -> None:
    settings = Settings(auth=False, data_dir=tmp_path / "data")
    async with rest_server(tmp_path, settings=settings) as server, server.client(None) as http:
        response = await http.post("/v1/prompts/prp", json={"feature": "Rotate keys"})
    assert response.status_code == 200


async def test_request_lines_carry_the_key_id_for_both_key_headers(
    tmp_path: Path, log_sink: io.StringIO
) -> None:
    async with rest_server(tmp_path) as server, httpx.AsyncClient(base_url=server.url) as http:
        for bearer in (False, True):
            response = await http.get("/v1/prompts", headers=server.headers(bearer=bearer))
            assert response.status_code == 200
        transport = StreamableHttpTransport(f"{server.url}/mcp", headers=server.headers())
        async with Client(transport) as client:
            await client.get_prompt("prp", {"feature": "Rotate keys"})
    key_id = ApiKey.parse(server.keys[Scope.READ]).key_id
    lines = [json.loads(line) for line in log_sink.getvalue().splitlines()]
    rest = [line for line in lines if line.get("method") == "GET /v1/prompts"]
    mcp = [
        line for line in lines if (line.get("method"), line.get("target")) == ("prompts/get", "prp")
    ]
    assert [line["key_id"] for line in rest] == [key_id, key_id]
    assert [line["key_id"] for line in mcp] == [key_id]


async def test_rest_calls_record_the_per_prompt_and_per_tool_operation_metric(
    tmp_path: Path, seed_text: str
) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        assert isinstance(server.metrics, RecordingMetrics)
        await http.get("/v1/prompts")
        await http.post("/v1/prompts/prp", json={"feature": "Rotate keys"})
        await http.post("/v1/prompts/prp", json={})
        await http.post("/v1/tools/lint_context_stack", json={"markdown": seed_text})
        operations = server.metrics.named("record_operation")
    assert [(op["method"], op["target"], op["error_type"]) for op in operations] == [
        ("prompts/list", None, None),
        ("prompts/get", "prp", None),
        ("prompts/get", "prp", "invalid_params"),
        ("tools/call", "lint_context_stack", None),
    ]
    assert [op["target_kind"] for op in operations] == [None, "prompt", "prompt", "tool"]


async def test_wrong_json_types_count_as_validation_rejections(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        assert isinstance(server.metrics, RecordingMetrics)
        mistyped = await http.post("/v1/prompts/context_stack", json={"objective": 5})
        blank = await http.post("/v1/prompts/context_stack", json={"objective": ""})
        rejections = server.metrics.named("count_validation_rejection")
        operations = server.metrics.named("record_operation")
    assert (mistyped.status_code, blank.status_code) == (422, 422)
    assert rejections == [{"rule": "type"}, {"rule": "required"}]
    assert [(op["target"], op["error_type"]) for op in operations] == [
        ("context_stack", "invalid_params"),
        ("context_stack", "invalid_params"),
    ]


async def test_a_tool_argument_refused_by_validation_counts_as_invalid_params(
    tmp_path: Path,
) -> None:
    async with rest_server(tmp_path) as server, server.client() as http:
        assert isinstance(server.metrics, RecordingMetrics)
        refused = await http.post("/v1/tools/lint_context_stack", json={"markdown": "a\u0000b"})
        operations = server.metrics.named("record_operation")
    assert refused.status_code == 422
    # The same name MCP's tools/call line and metric give this refusal.
    assert [(op["target"], op["error_type"]) for op in operations] == [
        ("lint_context_stack", "invalid_params")
    ]


async def test_unknown_routes_and_methods_under_v1_are_problems(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, server.client(None) as http:
        wrong_method = await http.get("/v1/prompts/context_stack")
        no_route = await http.get("/v1/nothing")
        mcp_wrong_method = await http.put("/mcp")
        elsewhere = await http.get("/nothing")
    assert "GET" in assert_problem(wrong_method, 405)["detail"]
    assert wrong_method.headers["Allow"] == "POST"
    assert assert_problem(no_route, 404)["detail"]
    # Outside the REST prefix Starlette's and the MCP endpoint's answers are unchanged.
    assert (mcp_wrong_method.status_code, elsewhere.status_code) == (405, 404)
    assert not mcp_wrong_method.headers["content-type"].startswith(PROBLEM)
    assert elsewhere.headers["content-type"].startswith("text/plain")
