"""REST answers for what FastMCP's middleware chain raises: ``application/problem+json``.

The REST façade dispatches into the same FastMCP entry points as MCP, so it receives
MCP's errors; :func:`problem_for` translates them, at the edge, into RFC 9457 problems:

=============================================  =====================================
raised                                         answer
=============================================  =====================================
``-32602`` invalid params (``data.errors``)    422 with the same ``errors`` list
rate limit exceeded (``-32000``)               429, ``Retry-After``, ``RateLimit-*``
rate-limit storage unavailable (``-32000``)    503, ``Retry-After``
``AuthorizationError`` (scope)                 403
``NotFoundError``                              404
``ToolError`` from :class:`LLMUnavailableError`  501, saying how to configure the fallback
``ToolError`` from :class:`LLMTimeoutError`      504
``ToolError`` from another LLM failure         502
other ``ToolError``, FastMCP ``ValidationError``  422
anything else                                  500 (logged; no detail leaves the server)
=============================================  =====================================

:func:`routing_problems` gives Starlette's own routing answers (404 no such route, 405
method not allowed) the same form under the REST prefix.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastmcp.exceptions import AuthorizationError, NotFoundError, ToolError, ValidationError
from fastmcp.tools import ToolResult
from loguru import logger
from mcp import McpError
from mcp.types import INVALID_PARAMS, TextContent
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ctxfy.adapters.problems import problem_response
from ctxfy.adapters.ratelimit import RATE_LIMIT_CODE, RateLimitExceededMcpError, rate_limit_headers
from ctxfy.core.access import RateLimitDecision
from ctxfy.core.errors import DraftRejectedError, LLMError, LLMTimeoutError, LLMUnavailableError
from ctxfy.core.params import FieldError

__all__ = [
    "NO_SERVER_LLM_MESSAGE",
    "invalid_arguments",
    "problem_for",
    "routing_problems",
    "tool_error_problem",
]

#: The 501 detail: over REST no MCP client can sample, so only the fallback can serve.
NO_SERVER_LLM_MESSAGE = (
    "This tool needs an LLM. Over REST there is no MCP client whose LLM could be used, so "
    "only the server-side fallback can serve it, and none is configured. Set "
    "CTXFY_LLM_BASE_URL (an OpenAI-compatible /v1 endpoint) and CTXFY_LLM_MODEL, plus "
    "CTXFY_LLM_API_KEY if that server needs one, then restart ctxfy."
)
_SCOPE_HEADER = 'Bearer realm="ctxfy", error="insufficient_scope"'


def invalid_arguments(errors: list[dict[str, Any]] | tuple[FieldError, ...]) -> JSONResponse:
    """Return the 422 problem listing every argument error (``{field, rule, message}``).

    Example:
        ```python
        return invalid_arguments((FieldError("objective", "required", "objective is required"),))
        ```
    """
    items = [e.to_dict() if isinstance(e, FieldError) else e for e in errors]
    summary = "; ".join(str(e.get("message", "")) for e in items[:5])
    if len(items) > 5:
        summary += f"; and {len(items) - 5} more"
    return problem_response(
        422,
        f"Invalid arguments: {summary}",
        title="Invalid arguments",
        extensions={"errors": items},
    )


def _mcp_problem(exc: McpError, decision: RateLimitDecision | None) -> JSONResponse:
    error = exc.error
    data = error.data if isinstance(error.data, dict) else {}
    if error.code == INVALID_PARAMS and isinstance(data.get("errors"), list):
        return invalid_arguments(data["errors"])
    if isinstance(exc, RateLimitExceededMcpError):
        retry_after = int(data.get("retry_after", 1))
        headers = (
            rate_limit_headers(decision)
            if decision is not None and not decision.allowed
            else {"Retry-After": str(retry_after)}
        )
        return problem_response(
            429, f"rate limit exceeded; retry after {retry_after} s", headers=headers
        )
    if error.code == RATE_LIMIT_CODE:
        return problem_response(
            503, "rate limiting is unavailable; request refused", headers={"Retry-After": "5"}
        )
    if error.code == INVALID_PARAMS:
        return problem_response(422, error.message, title="Invalid arguments")
    logger.bind(event="rest.mcp_error", code=error.code).warning("MCP error on a REST route")
    return problem_response(500, "the request failed inside the server")


def _tool_error_problem(exc: ToolError) -> JSONResponse:
    cause = exc.__cause__
    if isinstance(cause, LLMUnavailableError):
        return problem_response(501, NO_SERVER_LLM_MESSAGE, title="No LLM configured")
    if isinstance(cause, LLMTimeoutError):
        return problem_response(504, str(cause), title="LLM timeout")
    if isinstance(cause, LLMError | DraftRejectedError):
        return problem_response(502, str(cause), title="LLM failure")
    return problem_response(422, str(exc), title="Tool error")


def problem_for(exc: Exception, decision: RateLimitDecision | None = None) -> JSONResponse:
    """Translate an exception from ``render_prompt``/``call_tool``/``list_*`` into a problem.

    Args:
        exc: What the FastMCP call raised.
        decision: The rate-limit decision of this request, for the 429 headers.

    Returns:
        The problem response (see the module's table).

    Example:
        ```python
        try:
            result = await mcp.render_prompt(name, arguments)
        except Exception as exc:
            return problem_for(exc)
        ```
    """
    if isinstance(exc, McpError):
        return _mcp_problem(exc, decision)
    if isinstance(exc, AuthorizationError):
        detail = "this API key's scope does not cover this prompt or tool"
        return problem_response(403, detail, headers={"WWW-Authenticate": _SCOPE_HEADER})
    if isinstance(exc, NotFoundError):
        return problem_response(404, str(exc))
    if isinstance(exc, ToolError):
        return _tool_error_problem(exc)
    if isinstance(exc, ValidationError):
        return problem_response(422, str(exc), title="Invalid arguments")
    logger.bind(event="rest.error", error_type=type(exc).__qualname__).opt(exception=exc).error(
        "unexpected error on a REST route"
    )
    return problem_response(500, "the request failed inside the server")


def tool_error_problem(result: ToolResult) -> JSONResponse:
    """Translate a tool result with ``isError: true`` into a problem.

    Invalid arguments (``structuredContent.error == "invalid_arguments"``) give the 422
    with the validator's ``errors`` list; any other error result gives a 422 with the
    tool's text.
    """
    structured = result.structured_content or {}
    errors = structured.get("errors")
    if structured.get("error") == "invalid_arguments" and isinstance(errors, list):
        return invalid_arguments(errors)
    text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
    return problem_response(422, text or "the tool reported an error", title="Tool error")


def routing_problems(prefix: str = "/v1") -> Callable[[Request, Exception], Awaitable[Response]]:
    """Return a Starlette ``HTTPException`` handler answering problems under ``prefix``.

    Starlette answers an unknown path (404) or a method a route does not serve (405, with
    ``Allow``) in plain text. Under the REST prefix the handler answers them as
    ``application/problem+json`` instead; elsewhere (``/mcp`` and the rest) it answers as
    Starlette does.

    Args:
        prefix: Mount path of the REST façade.

    Example:
        ```python
        app = mcp.http_app()
        app.add_exception_handler(HTTPException, routing_problems("/v1"))
        ```
    """
    root = prefix.rstrip("/")

    async def handle(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # pragma: no cover - registered for it only
            raise exc
        path = request.url.path
        if path != root and not path.startswith(f"{root}/"):
            if exc.status_code in {204, 304}:
                return Response(status_code=exc.status_code, headers=exc.headers)
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 404:
            detail = "no REST route at this path; /openapi.json lists them"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            detail = f"method {request.method} is not allowed here; allowed: {allowed}"
        else:
            detail = exc.detail
        return problem_response(exc.status_code, detail, headers=exc.headers)

    return handle
