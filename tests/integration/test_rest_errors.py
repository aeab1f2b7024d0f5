"""How the REST façade answers what FastMCP's chain raises, and how it types arguments."""

import json
from typing import Any

import pytest
from fastmcp.exceptions import AuthorizationError, NotFoundError, ToolError, ValidationError
from fastmcp.tools import ToolResult
from mcp import McpError
from mcp.types import ErrorData, TextContent
from starlette.responses import JSONResponse

from ctxfy.adapters.component_docs import param_example, type_errors, wire_arguments
from ctxfy.adapters.mcp_errors import invalid_params, invalid_tool_result
from ctxfy.adapters.ratelimit import RateLimitExceededMcpError
from ctxfy.adapters.rest_errors import NO_SERVER_LLM_MESSAGE, problem_for, tool_error_problem
from ctxfy.core.access import RateLimitDecision
from ctxfy.core.errors import (
    DraftRejectedError,
    LLMResponseError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from ctxfy.core.params import FieldError, ParamSpec, ParamType


def body(response: JSONResponse) -> dict[str, Any]:
    assert response.media_type == "application/problem+json"
    data: dict[str, Any] = json.loads(bytes(response.body))
    assert data["status"] == response.status_code
    return data


def tool_error(cause: Exception) -> ToolError:
    try:
        raise ToolError(str(cause)) from cause
    except ToolError as exc:
        return exc


def test_invalid_params_become_422_with_the_same_errors() -> None:
    errors = (FieldError("objective", "required", "objective is required"),)
    response = problem_for(invalid_params(errors))
    assert response.status_code == 422
    assert body(response)["errors"] == [errors[0].to_dict()]


def test_rate_limit_errors_become_429_with_headers_or_503() -> None:
    decision = RateLimitDecision(False, limit=5, remaining=0, reset_after=42)
    limited = problem_for(RateLimitExceededMcpError(decision), decision)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "42"
    assert limited.headers["RateLimit-Limit"] == "5"
    assert limited.headers["RateLimit-Remaining"] == "0"
    unknown_decision = problem_for(RateLimitExceededMcpError(decision))
    assert unknown_decision.headers["Retry-After"] == "42"
    down = problem_for(McpError(ErrorData(code=-32000, message="Rate limit unavailable")))
    assert down.status_code == 503
    assert down.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        (LLMUnavailableError("no LLM"), 501),
        (LLMTimeoutError("too slow"), 504),
        (LLMResponseError("HTTP 500"), 502),
        (DraftRejectedError("not a stack"), 502),
        (ValueError("anything else"), 422),
    ],
)
def test_tool_errors_map_by_their_cause(cause: Exception, status: int) -> None:
    response = problem_for(tool_error(cause), None)
    assert response.status_code == status
    if status == 501:
        assert body(response)["detail"] == NO_SERVER_LLM_MESSAGE


def test_other_errors_map_to_their_status_and_never_leak_details() -> None:
    assert problem_for(AuthorizationError("denied")).status_code == 403
    assert problem_for(NotFoundError("Unknown prompt: 'x'")).status_code == 404
    assert problem_for(ValidationError("bad")).status_code == 422
    bare = problem_for(McpError(ErrorData(code=-32602, message="bad params")))
    assert bare.status_code == 422
    odd = problem_for(McpError(ErrorData(code=-32603, message="internal secret")))
    crash = problem_for(RuntimeError("stack trace with a secret"))
    for response in (odd, crash):
        assert response.status_code == 500
        assert "secret" not in bytes(response.body).decode()


def test_tool_error_results_become_422() -> None:
    errors = (FieldError("markdown", "required", "markdown is required"),)
    invalid = tool_error_problem(invalid_tool_result(errors))
    assert body(invalid)["errors"] == [errors[0].to_dict()]
    failed = ToolResult(content=[TextContent(type="text", text="it broke")], is_error=True)
    assert body(tool_error_problem(failed))["detail"] == "it broke"


def test_examples_take_the_parameters_json_type() -> None:
    assert param_example(ParamSpec("n", type=ParamType.INTEGER, example="12")) == 12
    assert param_example(ParamSpec("n", type=ParamType.INTEGER, example="many")) == 1
    listed = ParamSpec("c", type=ParamType.STRING_LIST, example='["a", "b"]', max_items=1)
    assert param_example(listed) == ["a"]
    assert param_example(ParamSpec("c", type=ParamType.STRING_LIST, example="one")) == ["one"]
    assert param_example(ParamSpec("c", type=ParamType.STRING_LIST)) == ["example"]
    choice = ParamSpec("t", type=ParamType.ENUM, choices=("a", "b"), example="z")
    assert param_example(choice) == "a"
    assert param_example(ParamSpec("s")) == "example"


def test_typed_arguments_are_checked_then_sent_as_mcp_strings() -> None:
    params = (
        ParamSpec("n", type=ParamType.INTEGER),
        ParamSpec("c", type=ParamType.STRING_LIST),
        ParamSpec("s"),
    )
    good = {"n": 3, "c": ["x", "y"], "s": "text"}
    assert type_errors(params, good) == ()
    assert wire_arguments(params, good) == {"n": "3", "c": '["x", "y"]', "s": "text"}
    bad = {"n": True, "c": ["x", 1], "s": None, "other": 5}
    assert [(e.field, e.rule) for e in type_errors(params, bad)] == [
        ("n", "type"),
        ("c", "type"),
        ("s", "type"),
    ]
    assert [e.field for e in type_errors(None, {"a": "ok", "b": 1}, strings_only=True)] == ["b"]
