"""``/openapi.json`` and ``/docs``: a valid OpenAPI 3.1 document of the live registry."""

import re
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS31Validator
from openapi_schema_validator import validate as validate_value
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from ctxfy.adapters.docs_ui import DOCS_CSP
from ctxfy.adapters.mcp_prompts import SpecPrompt
from ctxfy.adapters.mcp_tools import GENERATE_TOOL, LINT_TOOL
from ctxfy.adapters.openapi import build_openapi
from ctxfy.core.keys import Scope
from ctxfy.core.params import ParamSpec
from ctxfy.core.prompt import PromptSpec
from ctxfy.prompts import BUILTIN_PROMPTS, CONTEXT_STACK
from ctxfy.settings import Settings
from ctxfy.testing import ScriptedLLM
from tests.integration.rest_support import rest_server, write_prompt_dir

SECURED: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyAuth": []}]


async def fetch_spec(
    tmp_path: Path, settings: Settings | None = None, *, prometheus: bool = False
) -> dict[str, Any]:
    async with (
        rest_server(tmp_path, settings=settings, prometheus=prometheus) as server,
        server.client(None) as http,
    ):
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def request_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    assert isinstance(body, dict)
    return body


async def test_the_document_is_valid_openapi_3_1(tmp_path: Path) -> None:
    spec = await fetch_spec(tmp_path)
    assert spec["openapi"] == "3.1.0"
    validate(spec, cls=OpenAPIV31SpecValidator)


async def test_each_prompt_is_one_typed_operation_with_its_declared_schema(
    tmp_path: Path,
) -> None:
    spec = await fetch_spec(tmp_path)
    operation_ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for prompt in BUILTIN_PROMPTS:
        path = f"/v1/prompts/{prompt.name}"
        operation = spec["paths"][path]["post"]
        assert operation["operationId"] == f"prompt_{prompt.name}"
        body = request_schema(spec, path)
        declared: dict[str, Any] = prompt.arguments_schema()
        assert body["schema"]["required"] == declared["required"]
        assert body["schema"]["properties"].keys() == declared["properties"].keys()
        assert body["schema"]["additionalProperties"] is False
        validate_value(body["example"], body["schema"], cls=OAS31Validator)
        examples = {p.name: p.example for p in prompt.params if p.example is not None}
        assert body["example"] == examples
        assert set(operation["responses"]) >= {"200", "401", "403", "422", "429"}
        assert operation["security"] == SECURED
    result = spec["paths"]["/v1/prompts/prp"]["post"]["responses"]["200"]
    assert result["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PromptResult"
    }


async def test_tools_are_operations_and_llm_tools_document_501(tmp_path: Path) -> None:
    spec = await fetch_spec(tmp_path)
    lint = spec["paths"]["/v1/tools/lint_context_stack"]["post"]
    generate = spec["paths"]["/v1/tools/generate_context_stack"]["post"]
    assert request_schema(spec, "/v1/tools/lint_context_stack")["schema"]["required"] == [
        "markdown"
    ]
    assert "501" not in lint["responses"]
    assert "501" in generate["responses"]
    assert "CTXFY_LLM_BASE_URL" in generate["description"]


async def test_security_schemes_are_bearer_and_x_api_key(tmp_path: Path) -> None:
    spec = await fetch_spec(tmp_path, prometheus=True)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyAuth"]["in"] == "header"
    assert schemes["apiKeyAuth"]["name"] == "X-API-Key"
    for path in ("/health", "/ready", "/metrics"):
        assert spec["paths"][path]["get"]["security"] == []
    for path in ("/v1/prompts", "/v1/tools", "/v1/keys"):
        assert spec["paths"][path]["get"]["security"] == SECURED


async def test_mcp_is_documented_with_an_example_request_per_prompt(tmp_path: Path) -> None:
    spec = await fetch_spec(tmp_path)
    operation = spec["paths"]["/mcp"]["post"]
    assert {p["name"] for p in operation["parameters"]} == {
        "Mcp-Session-Id",
        "MCP-Protocol-Version",
    }
    examples = request_schema(spec, "/mcp")["examples"]
    for prompt in BUILTIN_PROMPTS:
        value = examples[f"prompts_get_{prompt.name}"]["value"]
        assert value["method"] == "prompts/get"
        assert value["params"]["name"] == prompt.name
        assert all(isinstance(v, str) for v in value["params"]["arguments"].values())
    assert examples["tools_call_lint_context_stack"]["value"]["method"] == "tools/call"
    assert "text/event-stream" in operation["responses"]["200"]["content"]


async def test_user_prompt_files_appear_like_built_ins_with_typed_examples(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", prompts_dir=write_prompt_dir(tmp_path / "p"))
    spec = await fetch_spec(tmp_path, settings)
    body = request_schema(spec, "/v1/prompts/release_notes")
    assert body["example"] == {
        "changes": ["Add key rotation", "Fix the SQLite lock"],
        "tone": "friendly",
        "limit": 12,
    }
    assert body["schema"]["properties"]["limit"]["examples"] == [12]
    validate_value(body["example"], body["schema"], cls=OAS31Validator)
    validate(spec, cls=OpenAPIV31SpecValidator)


async def test_the_document_follows_the_live_registry(tmp_path: Path) -> None:
    extra = PromptSpec(
        name="added_later",
        description="Registered after start.",
        params=(ParamSpec("topic", required=True, example="keys"),),
        template="Write about {{topic}}.",
    )
    async with rest_server(tmp_path) as server, server.client(None) as http:
        before = (await http.get("/openapi.json")).json()
        server.mcp.add_prompt(SpecPrompt.from_spec(extra))
        after = (await http.get("/openapi.json")).json()
    assert "/v1/prompts/added_later" not in before["paths"]
    assert request_schema(after, "/v1/prompts/added_later")["example"] == {"topic": "keys"}


async def test_only_routes_the_app_serves_are_documented(tmp_path: Path) -> None:
    spec = await fetch_spec(tmp_path, Settings(auth=False, data_dir=tmp_path / "data"))
    assert "/v1/keys" not in spec["paths"]
    assert "/metrics" not in spec["paths"]  # in-memory metrics: no /metrics route
    assert "securitySchemes" not in spec["components"]
    assert "security" not in spec["paths"]["/v1/prompts"]["get"]
    assert "401" not in spec["paths"]["/v1/prompts/prp"]["post"]["responses"]
    validate(spec, cls=OpenAPIV31SpecValidator)


def test_build_openapi_is_a_pure_function_of_its_inputs() -> None:
    first = build_openapi([], title="t", version="1")
    second = build_openapi([], title="t", version="1")
    assert first == second
    assert first["info"] == {**first["info"], "title": "t", "version": "1"}
    assert set(first["paths"]) >= {"/v1/prompts", "/v1/tools", "/mcp", "/health"}


async def test_docs_page_is_served_offline_under_a_strict_policy(tmp_path: Path) -> None:
    async with rest_server(tmp_path) as server, server.client(None) as http:
        page = await http.get("/docs")
        script = await http.get("/docs/ctxfy-docs.js")
        bundle = await http.get("/docs/assets/swagger-ui-bundle.js")
        css = await http.get("/docs/assets/swagger-ui.css")
        unknown = await http.get("/docs/assets/index.html")
        traversal = await http.get("/docs/assets/..%2F__init__.py")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == DOCS_CSP
    assert "default-src 'none'" in DOCS_CSP
    assert "script-src 'self';" in DOCS_CSP
    assert "connect-src 'self';" in DOCS_CSP
    assert "<script>" not in page.text
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["Content-Security-Policy"] == DOCS_CSP
    assert "SwaggerUIBundle" in script.text
    assert bundle.status_code == css.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert css.headers["content-type"].startswith("text/css")
    assert unknown.status_code == traversal.status_code == 404


async def test_document_is_public_on_loopback_and_needs_a_read_key_elsewhere(
    tmp_path: Path,
) -> None:
    exposed = Settings(host="0.0.0.0", data_dir=tmp_path / "data")
    async with rest_server(tmp_path, settings=exposed) as server, server.client(None) as http:
        anonymous = await http.get("/openapi.json")
        with_key = await http.get("/openapi.json", headers=server.headers())
        page = await http.get("/docs")
    assert anonymous.status_code == 401
    assert with_key.status_code == 200
    assert with_key.json()["paths"]["/openapi.json"]["get"]["security"] == SECURED
    assert page.status_code == 200
    public = await fetch_spec(tmp_path, Settings(data_dir=tmp_path / "data2"))
    assert public["paths"]["/openapi.json"]["get"]["security"] == []


async def test_context_stack_example_renders_over_rest(tmp_path: Path) -> None:
    spec = await fetch_spec(tmp_path)
    example = request_schema(spec, "/v1/prompts/context_stack")["example"]
    async with rest_server(tmp_path) as server, server.client() as http:
        response = await http.post("/v1/prompts/context_stack", json=example)
    assert response.status_code == 200
    assert CONTEXT_STACK.params[0].example in response.json()["messages"][0]["content"]["text"]


async def test_metrics_route_is_documented_as_it_is_guarded(tmp_path: Path) -> None:
    guarded = Settings(data_dir=tmp_path / "data", metrics_public=False)
    async with (
        rest_server(tmp_path, settings=guarded, prometheus=True) as server,
        server.client(None) as http,
    ):
        spec = (await http.get("/openapi.json")).json()
        anonymous = await http.get("/metrics")
        with_key = await http.get("/metrics", headers=server.headers())
    assert (anonymous.status_code, with_key.status_code) == (401, 200)
    metrics = spec["paths"]["/metrics"]["get"]
    assert metrics["security"] == SECURED
    assert set(metrics["responses"]) == {"200", "401", "429", "503"}
    assert "WWW-Authenticate" in str(spec["components"]["responses"]["Unauthorized"])
    validate(spec, cls=OpenAPIV31SpecValidator)
    public = await fetch_spec(tmp_path, Settings(data_dir=tmp_path / "d2"), prometheus=True)
    assert public["paths"]["/metrics"]["get"]["security"] == []
    assert set(public["paths"]["/metrics"]["get"]["responses"]) == {"200"}


async def test_tool_results_are_documented_with_their_declared_schema(
    tmp_path: Path, seed_text: str
) -> None:
    llm = ScriptedLLM([seed_text], model="fallback-1")
    async with (
        rest_server(tmp_path, llm_fallback=llm) as server,
        server.client(Scope.WRITE) as http,
    ):
        spec = (await http.get("/openapi.json")).json()
        linted = [
            await http.post("/v1/tools/lint_context_stack", json={"markdown": text})
            for text in (seed_text, "just a sentence", "# CONTEXT STACK: {{title}}")
        ]
        generated = await http.post("/v1/tools/generate_context_stack", json={"objective": "x"})
    for name, tool, results in (
        ("lint_context_stack", LINT_TOOL, linted),
        ("generate_context_stack", GENERATE_TOOL, [generated]),
    ):
        ok = spec["paths"][f"/v1/tools/{name}"]["post"]["responses"]["200"]
        schema = ok["content"]["application/json"]["schema"]
        assert schema == tool.output_schema
        for response in results:
            assert response.status_code == 200, response.text
            validate_value(response.json(), schema, cls=OAS31Validator)
    assert {r.json()["stack"] is None for r in linted} == {True, False}
