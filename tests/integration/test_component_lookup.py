"""One component lookup and one argument validation per request, without losing a check."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import AuthorizationError, ToolError
from fastmcp.prompts import PromptResult
from fastmcp.server.auth import AccessToken
from fastmcp.server.context import Context, _current_transport
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from mcp import McpError
from mcp.types import CallToolRequestParams, GetPromptRequestParams

from ctxfy.adapters import component_lookup
from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.adapters.component_lookup import (
    find_prompt,
    prevalidated_values,
    request_scope,
    validated_arguments,
)
from ctxfy.adapters.mcp_prompts import SpecPrompt
from ctxfy.adapters.mcp_tools import LintContextStackTool
from ctxfy.adapters.rest_api import RestApi
from ctxfy.adapters.scopes import ScopeAuthMiddleware
from ctxfy.adapters.validation import RequestValidationMiddleware
from ctxfy.core.params import DEFAULT_MAX_REQUEST_CHARS, ValidationResult, validate_arguments
from ctxfy.prompts import CONTEXT_STACK, builtin_blocks

GOOD_PROMPT = {"objective": "Rotate the API keys"}
GOOD_TOOL = {"markdown": "# CONTEXT STACK: x"}


def build(*, middleware: bool = True) -> FastMCP[Any]:
    mcp: FastMCP[Any] = FastMCP("someone-else")
    if middleware:
        mcp.add_middleware(ScopeAuthMiddleware())
        mcp.add_middleware(RequestValidationMiddleware())
    mcp.add_prompt(SpecPrompt.from_spec(CONTEXT_STACK, builtin_blocks()))
    mcp.add_tool(LintContextStackTool.create())

    @mcp.prompt
    def review(code: str) -> str:
        return f"Review:\n{code}"

    return mcp


def count_calls(monkeypatch: pytest.MonkeyPatch, mcp: FastMCP[Any], method: str) -> list[str]:
    """Record every ``mcp.<method>(name)`` FastMCP and ctxfy make."""
    calls: list[str] = []
    original: Callable[..., Awaitable[Any]] = getattr(mcp, method)

    async def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return await original(name, *args, **kwargs)

    monkeypatch.setattr(mcp, method, spy)
    return calls


def count_validations(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record the core validations ctxfy's components run themselves (``validate_once``)."""
    calls: list[object] = []
    original = validate_arguments  # the name component_lookup uses, patched there

    def spy(*args: Any, **kwargs: Any) -> ValidationResult:
        calls.append(args[1])
        result: ValidationResult = original(*args, **kwargs)
        return result

    monkeypatch.setattr(component_lookup, "validate_arguments", spy)
    return calls


# --- one lookup per request ---------------------------------------------------------------


async def test_prompts_get_looks_the_prompt_up_once_besides_fastmcp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mcp = build()
    calls = count_calls(monkeypatch, mcp, "get_prompt")
    async with Client(mcp) as client:
        await client.get_prompt("context_stack", GOOD_PROMPT)
        first = len(calls)
        await client.get_prompt("review", {"code": "x = 1"})
    # One for ctxfy's scope check and validator together, one inside FastMCP's render.
    assert first == 2
    assert calls == ["context_stack", "context_stack", "review", "review"]


async def test_tools_call_looks_the_tool_up_once_besides_fastmcp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mcp = build()
    calls = count_calls(monkeypatch, mcp, "get_tool")
    async with Client(mcp) as client:
        await client.call_tool("lint_context_stack", GOOD_TOOL)
    assert calls == ["lint_context_stack", "lint_context_stack"]


async def test_a_lookup_is_never_reused_by_the_next_request() -> None:
    mcp = build()
    async with Client(mcp) as client:
        await client.get_prompt("review", {"code": "x = 1"})
        mcp.disable(names={"review"})
        with pytest.raises(McpError, match="Unknown prompt: 'review'"):
            await client.get_prompt("review", {"code": "x = 1"})


async def test_find_prompt_remembers_per_context_only(monkeypatch: pytest.MonkeyPatch) -> None:
    mcp = build()
    calls = count_calls(monkeypatch, mcp, "get_prompt")
    first, second = Context(fastmcp=mcp), Context(fastmcp=mcp)
    assert await find_prompt(mcp, first, "review") is await find_prompt(mcp, first, "review")
    assert await find_prompt(mcp, first, "nope") is None
    assert await find_prompt(mcp, first, "nope") is None
    await find_prompt(mcp, second, "review")
    await find_prompt(mcp, first, "review")  # the memo now belongs to ``second``
    await find_prompt(mcp, None, "review")  # no request, no scope: not remembered
    await find_prompt(mcp, None, "review")
    assert calls == ["review", "nope", "review", "review", "review", "review"]


async def test_a_request_scope_is_adopted_by_the_first_context_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mcp = build()
    calls = count_calls(monkeypatch, mcp, "get_prompt")
    with request_scope(mcp):
        before = await find_prompt(mcp, None, "review")
        ctx = Context(fastmcp=mcp)
        assert await find_prompt(mcp, ctx, "review") is before
        await find_prompt(mcp, Context(fastmcp=mcp), "review")  # another request
    await find_prompt(mcp, None, "review")  # the scope is closed
    assert calls == ["review", "review", "review"]


class _Recorded(AuditLog):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def record(self, event: AuditEvent, *, outcome: str, **details: Any) -> None:
        self.events.append({"event": str(event), "outcome": outcome, **details})


async def test_a_scope_denial_is_audited_without_another_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit = _Recorded()
    mcp: FastMCP[Any] = FastMCP("someone-else", middleware=[ScopeAuthMiddleware(audit=audit)])

    @mcp.tool(tags={"llm"})
    def draft() -> str:
        return "draft"

    token = AccessToken(token="t", client_id="key-1", scopes=["read"])
    for module in ("ctxfy.adapters.scopes", "fastmcp.server.middleware.authorization"):
        monkeypatch.setattr(f"{module}.get_access_token", lambda: token)
    calls = count_calls(monkeypatch, mcp, "get_tool")
    async with Client(mcp) as client:
        with pytest.raises(ToolError, match="Unknown tool: 'draft'"):
            await client.call_tool("draft", {})
    assert calls == ["draft"]
    assert audit.events == [
        {
            "event": "auth.scope_denied",
            "outcome": "denied",
            "key_id": "key-1",
            "reason": "requires write",
            "component": "tool:draft",
        }
    ]


async def test_the_scope_check_keeps_fastmcp_stdio_skip_and_missing_context_denial() -> None:
    middleware = ScopeAuthMiddleware()
    message = GetPromptRequestParams(name="review", arguments={})
    served: list[str] = []
    result = PromptResult("served")

    async def call_next(context: MiddlewareContext[GetPromptRequestParams]) -> PromptResult:
        served.append(context.message.name)
        return result

    orphan = MiddlewareContext(message=message, fastmcp_context=None, method="prompts/get")
    with pytest.raises(AuthorizationError, match="missing context"):
        await middleware.on_get_prompt(orphan, call_next)
    token = _current_transport.set("stdio")
    try:
        assert await middleware.on_get_prompt(orphan, call_next) is result
    finally:
        _current_transport.reset(token)
    assert served == ["review"]


# --- one validation per request ---------------------------------------------------------


async def test_spec_prompt_reuses_the_middleware_validation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_validations(monkeypatch)
    async with Client(build()) as client:
        result = await client.get_prompt("context_stack", {"objective": "Re\u0301sume\u0301 "})
    assert calls == []
    assert "Résumé" in str(result.messages[0].content)


async def test_spec_tool_reuses_the_middleware_validation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_validations(monkeypatch)
    async with Client(build()) as client:
        result = await client.call_tool("lint_context_stack", GOOD_TOOL)
    assert calls == []
    assert "report" in result.structured_content


async def test_spec_prompt_alone_still_validates_and_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_validations(monkeypatch)
    async with Client(build(middleware=False)) as client:
        await client.get_prompt("context_stack", GOOD_PROMPT)
        with pytest.raises(McpError) as refused:
            await client.get_prompt("context_stack", {"domain": "x" * 501, "oops": "1"})
    assert len(calls) == 2
    assert refused.value.error.code == -32602
    data = refused.value.error.data
    assert isinstance(data, dict)
    rules = {e["rule"] for e in data["errors"]}
    assert rules == {"required", "max_length", "unknown"}


async def test_spec_tool_alone_still_validates_and_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_validations(monkeypatch)
    async with Client(build(middleware=False)) as client:
        result = await client.call_tool("lint_context_stack", {}, raise_on_error=False)
    assert len(calls) == 1
    assert result.is_error
    assert result.structured_content["errors"][0]["rule"] == "required"


class _Rewrite(Middleware):
    """Changes the arguments after the validator ran, as another middleware might."""

    async def on_get_prompt(
        self,
        context: MiddlewareContext[GetPromptRequestParams],
        call_next: CallNext[GetPromptRequestParams, Any],
    ) -> Any:
        message = context.message.model_copy(update={"arguments": {"objective": "\u202e"}})
        return await call_next(context.copy(message=message))

    async def on_call_tool(
        self,
        context: MiddlewareContext[CallToolRequestParams],
        call_next: CallNext[CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        message = context.message.model_copy(update={"arguments": {}})
        return await call_next(context.copy(message=message))


async def test_arguments_changed_after_the_middleware_are_validated_again() -> None:
    mcp = build()
    mcp.add_middleware(_Rewrite())
    async with Client(mcp) as client:
        with pytest.raises(McpError) as refused:
            await client.get_prompt("context_stack", GOOD_PROMPT)
        result = await client.call_tool("lint_context_stack", GOOD_TOOL, raise_on_error=False)
    data = refused.value.error.data
    assert isinstance(data, dict)
    assert data["errors"][0]["rule"] == "bidi_control"
    assert result.is_error
    assert result.structured_content["errors"][0]["rule"] == "required"


def test_prevalidated_values_match_spec_and_arguments_exactly() -> None:
    values = {"objective": "x"}
    with validated_arguments(CONTEXT_STACK, {"objective": "x"}, values):
        assert prevalidated_values(CONTEXT_STACK, {"objective": "x"}) is values
        assert prevalidated_values(CONTEXT_STACK, {"objective": "y"}) is None
        assert prevalidated_values(object(), {"objective": "x"}) is None
    assert prevalidated_values(CONTEXT_STACK, {"objective": "x"}) is None


def test_prevalidated_values_keep_the_component_default_request_limits() -> None:
    # A middleware configured with looser limits does not loosen the component's own.
    big = {"objective": "x" * (DEFAULT_MAX_REQUEST_CHARS + 1)}
    with validated_arguments(CONTEXT_STACK, big, {"objective": big["objective"]}):
        assert prevalidated_values(CONTEXT_STACK, big) is None


# --- REST: the façade shares its lookup with the chain ----------------------------------


def rest_client(mcp: FastMCP[Any]) -> httpx.AsyncClient:
    api = RestApi(mcp, allow_anonymous=True)
    for route in api.routes():
        mcp.custom_route(route.path, methods=sorted(route.methods or ()))(route.endpoint)
    transport = httpx.ASGITransport(app=mcp.http_app())
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_rest_prompt_looks_up_once_besides_fastmcp_and_validates_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mcp = build()
    lookups = count_calls(monkeypatch, mcp, "get_prompt")
    validations = count_validations(monkeypatch)
    async with rest_client(mcp) as client:
        response = await client.post("/v1/prompts/context_stack", json=GOOD_PROMPT)
    assert response.status_code == 200, response.text
    assert lookups == ["context_stack", "context_stack"]
    assert validations == []


async def test_rest_tool_looks_up_once_besides_fastmcp(monkeypatch: pytest.MonkeyPatch) -> None:
    mcp = build()
    lookups = count_calls(monkeypatch, mcp, "get_tool")
    validations = count_validations(monkeypatch)
    async with rest_client(mcp) as client:
        response = await client.post("/v1/tools/lint_context_stack", json=GOOD_TOOL)
    assert response.status_code == 200, response.text
    assert lookups == ["lint_context_stack", "lint_context_stack"]
    assert validations == []


async def test_rest_errors_keep_their_shape() -> None:
    async with rest_client(build()) as client:
        unknown = await client.post("/v1/prompts/nope", json={})
        invalid = await client.post(
            "/v1/prompts/context_stack", json={"domain": "x" * 501, "oops": "1"}
        )
        tool = await client.post("/v1/tools/lint_context_stack", json={})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no prompt named 'nope'"
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert {e["rule"] for e in invalid.json()["errors"]} == {"required", "max_length", "unknown"}
    assert tool.status_code == 422
    assert tool.json()["errors"][0]["rule"] == "required"
