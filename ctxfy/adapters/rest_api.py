"""The REST façade: ``/v1/prompts`` and ``/v1/tools`` over the FastMCP server itself.

``GET /v1/prompts`` and ``GET /v1/tools`` list what the key may use, with each argument
schema; ``POST /v1/prompts/{name}`` renders a prompt from typed JSON arguments and answers
exactly what MCP ``prompts/get`` returns (``{"description", "messages"}``); ``POST
/v1/tools/{name}`` calls a tool and answers its structured result.

No second door: each handler calls the FastMCP entry point MCP's own request handlers
call (``mcp.list_prompts``, ``mcp.render_prompt``, ``mcp.list_tools``, ``mcp.call_tool``),
so the server's middleware chain runs as for MCP: per-key rate limit, scope check,
argument validation and injection screening, request-log target. In front,
:class:`~ctxfy.adapters.rest_guard.RequireScope` gives the REST answers 401 and 403; the
chain's refusals become problems (:mod:`ctxfy.adapters.rest_errors`). Each request is
counted once against the key's rate limit, in the same bucket as its MCP requests; one
refused at this edge (bad JSON, wrong JSON type, too large) is counted here instead.
Each call is recorded once in ``mcp.server.operation.duration``, with the method and the
prompt or tool MCP would name (the chain's request log leaves calls from an HTTP route to
the route), and arguments of the wrong JSON type count in ``ctxfy.validation.rejections``.

The façade looks the prompt or tool up once, to know the scope it needs, inside a
:func:`~ctxfy.adapters.component_lookup.request_scope`: the chain's scope check and
validator reuse that lookup, and the component reuses the validator's values.
"""

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.tools import ToolResult
from mcp import McpError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctxfy.adapters.audit import AuditLog
from ctxfy.adapters.body_limit import DEFAULT_MAX_BODY_BYTES
from ctxfy.adapters.component_docs import (
    OperationDoc,
    prompt_doc,
    tool_doc,
    type_errors,
    wire_arguments,
)
from ctxfy.adapters.component_lookup import find_prompt, find_tool, request_scope
from ctxfy.adapters.problems import problem_response
from ctxfy.adapters.ratelimit import (
    RATE_LIMIT_CODE,
    RATE_LIMIT_DECISION,
    KeyRateLimiter,
    rate_limit_headers,
)
from ctxfy.adapters.request_context import current_request
from ctxfy.adapters.rest_errors import invalid_arguments, problem_for, tool_error_problem
from ctxfy.adapters.rest_guard import RequireScope
from ctxfy.adapters.scopes import ScopeCheck
from ctxfy.adapters.validation import prompt_params, tool_params
from ctxfy.core.keys import Scope
from ctxfy.core.params import FieldError, ParamSpec, validate_arguments
from ctxfy.core.telemetry import (
    MetricsRecorder,
    NullMetricsRecorder,
    TargetKind,
    json_rpc_error_type,
    tool_result_error_type,
)

__all__ = ["RestApi"]

_T = TypeVar("_T")
#: The ``error.type`` of an operation refused for its arguments, as MCP's request log names it.
_INVALID_PARAMS = json_rpc_error_type(-32602)


class _EdgeRefusal(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and "+json" in media)


def _too_large(max_bytes: int) -> Response:
    return problem_response(413, f"request body larger than {max_bytes} bytes")


async def _json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise _EdgeRefusal(problem_response(415, "send the arguments as application/json"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _EdgeRefusal(_too_large(max_bytes))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _EdgeRefusal(_too_large(max_bytes))
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise _EdgeRefusal(problem_response(400, "request body is not valid JSON")) from None
    if not isinstance(data, dict):
        raise _EdgeRefusal(problem_response(400, "request body must be a JSON object"))
    return data


def _operation_error(exc: Exception) -> str:
    """Name a failure for ``error.type`` as MCP's request log names the same failure."""
    if isinstance(exc, McpError):
        return json_rpc_error_type(exc.error.code)
    return "tool_error" if isinstance(exc, ToolError) else type(exc).__qualname__


def _with_other_errors(
    errors: tuple[FieldError, ...], params: tuple[ParamSpec, ...], arguments: dict[str, Any]
) -> tuple[FieldError, ...]:
    # The validator's findings about the other arguments complete the list; the ones about
    # the mistyped arguments would only repeat the type error in other words.
    bad = {e.field for e in errors}
    rest = {k: v for k, v in arguments.items() if k not in bad}
    found = validate_arguments(params, rest).errors
    return errors + tuple(e for e in found if e.field.split("[", 1)[0] not in bad)


def _prompt_entry(doc: OperationDoc, arguments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": doc.name,
        "title": doc.title,
        "description": doc.description,
        "arguments": arguments,
        "schema": doc.schema,
        "example": doc.example,
        "scope": doc.scope.value,
    }


def _tool_entry(doc: OperationDoc) -> dict[str, Any]:
    return {
        "name": doc.name,
        "title": doc.title,
        "description": doc.description,
        "schema": doc.schema,
        "example": doc.example,
        "scope": doc.scope.value,
        "needs_llm": doc.needs_llm,
    }


def _tool_body(result: ToolResult) -> dict[str, Any]:
    if result.structured_content is not None:
        return dict(result.structured_content)
    content = [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in result.content]
    return {"content": content}


class RestApi:
    """The ``/v1/prompts`` and ``/v1/tools`` routes of one FastMCP server.

    Args:
        mcp: The server whose prompts and tools are served (with its middleware).
        limiter: The rate limiter the server's ``KeyRateLimitMiddleware`` uses; requests
            refused before reaching the server are counted with it.
        audit: Receives scope denials.
        allow_anonymous: Serve requests without a key (only for servers running with
            authentication off on loopback).
        scope_check: The tag → scope rule (the one given to ``ScopeAuthMiddleware``).
        prefix: Mount path of the routes.
        metrics: Records ``mcp.server.operation.duration`` for each REST call (method
            ``prompts/get``, ``tools/call``, ``prompts/list`` or ``tools/list``, with the
            prompt or tool name), and counts arguments refused at this edge with
            ``count_validation_rejection``, as the MCP middlewares do for MCP requests.
        max_body_bytes: Largest accepted body (413 above it); give the server's
            ``CTXFY_MAX_BODY_BYTES``.

    Example:
        ```python
        mcp = FastMCP("mine", auth=verifier,
                      middleware=[KeyRateLimitMiddleware(limiter), ScopeAuthMiddleware()])
        for route in RestApi(mcp, limiter=limiter).routes():
            mcp.custom_route(route.path, methods=sorted(route.methods or ()))(route.endpoint)
        ```
    """

    def __init__(
        self,
        mcp: FastMCP[Any],
        *,
        limiter: KeyRateLimiter | None = None,
        audit: AuditLog | None = None,
        allow_anonymous: bool = False,
        scope_check: ScopeCheck | None = None,
        prefix: str = "/v1",
        metrics: MetricsRecorder | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        self._mcp = mcp
        self._limiter = limiter
        self._audit = audit
        self._allow_anonymous = allow_anonymous
        self._check = scope_check if scope_check is not None else ScopeCheck()
        self.prefix = prefix.rstrip("/")
        self._metrics = metrics if metrics is not None else NullMetricsRecorder()
        self._max_body_bytes = max_body_bytes

    def routes(self) -> list[Route]:
        """Return the four routes, for ``Starlette(routes=...)`` or ``mcp.custom_route``."""
        p = self.prefix
        return [
            Route(f"{p}/prompts", self.list_prompts, methods=["GET"]),
            Route(f"{p}/prompts/{{name}}", self.get_prompt, methods=["POST"]),
            Route(f"{p}/tools", self.list_tools, methods=["GET"]),
            Route(f"{p}/tools/{{name}}", self.call_tool, methods=["POST"]),
        ]

    def _guard(self, scope: Scope, *, counted: bool = False) -> RequireScope:
        return RequireScope(
            scope,
            limiter=self._limiter if counted else None,
            audit=self._audit,
            allow_anonymous=self._allow_anonymous,
        )

    async def _refuse_at_edge(self, request: Request, scope: Scope, response: Response) -> Response:
        # The request never reaches the middleware chain: count it here, in the same bucket.
        refusal, headers = await self._guard(scope, counted=True).admit(request)
        if refusal is not None:
            return refusal
        response.headers.update(headers)
        return response

    async def _refuse_arguments(
        self,
        request: Request,
        scope: Scope,
        errors: tuple[FieldError, ...],
        operation: tuple[str, TargetKind, str],
    ) -> Response:
        started = time.perf_counter()
        response = await self._refuse_at_edge(request, scope, invalid_arguments(errors))
        if response.status_code == 422:
            for rule in sorted({error.rule for error in errors}):
                self._metrics.count_validation_rejection(rule)
            error_type = _INVALID_PARAMS
        else:  # refused by the rate limit, which MCP answers with this code
            error_type = json_rpc_error_type(RATE_LIMIT_CODE)
        self._record(operation, started, error_type)
        return response

    def _record(
        self,
        operation: tuple[str, TargetKind | None, str | None],
        started: float,
        error: str | None,
    ) -> None:
        method, kind, target = operation
        self._metrics.record_operation(
            method=method,
            target_kind=kind,
            target=target,
            duration_s=time.perf_counter() - started,
            error_type=error,
        )

    async def _dispatch(
        self,
        call: Callable[[], Awaitable[_T]],
        operation: tuple[str, TargetKind | None, str | None],
    ) -> tuple[_T | None, Response | None, dict[str, str]]:
        token = RATE_LIMIT_DECISION.set(None)
        started = time.perf_counter()
        error_type: str | None = "cancelled"
        try:
            try:
                result = await call()
            except Exception as exc:
                error_type = _operation_error(exc)
                decision = RATE_LIMIT_DECISION.get()
                problem = problem_for(exc, decision)
                if decision is not None and decision.allowed:
                    problem.headers.update(rate_limit_headers(decision))
                return None, problem, {}
            error_type = (
                tool_result_error_type(result.is_error, result.structured_content)
                if isinstance(result, ToolResult)
                else None
            )
            decision = RATE_LIMIT_DECISION.get()
            return result, None, rate_limit_headers(decision) if decision is not None else {}
        finally:
            RATE_LIMIT_DECISION.reset(token)
            # RequestLogMiddleware leaves a call made from an HTTP route to the route when
            # RequestContextMiddleware runs (it then writes the route's line); without it,
            # the middleware records the call as a request of its own.
            if current_request() is not None:
                self._record(operation, started, error_type)

    async def list_prompts(self, request: Request) -> Response:
        """``GET /v1/prompts``: the prompts this key may use, with their schemas."""
        refusal, _ = await self._guard(Scope.READ).admit(request)
        if refusal is not None:
            return refusal
        prompts, problem, headers = await self._dispatch(
            self._mcp.list_prompts, ("prompts/list", None, None)
        )
        if problem is not None or prompts is None:
            return problem or problem_response(500, "the request failed inside the server")
        entries = []
        for prompt in prompts:
            arguments = [
                {"name": a.name, "description": a.description or "", "required": a.required}
                for a in prompt.arguments or []
            ]
            entries.append(_prompt_entry(prompt_doc(prompt, self._check), arguments))
        return JSONResponse({"prompts": entries}, headers=headers)

    async def get_prompt(self, request: Request) -> Response:
        """``POST /v1/prompts/{name}``: render a prompt, as MCP ``prompts/get`` does."""
        # One lookup for the whole request: the chain's middleware reuses this one.
        with request_scope(self._mcp):
            return await self._get_prompt(request)

    async def _get_prompt(self, request: Request) -> Response:
        name = request.path_params["name"]
        prompt = await find_prompt(self._mcp, None, name)
        scope = self._check.required(prompt) if prompt is not None else Scope.READ
        refusal, _ = await self._guard(scope).admit(request)
        if refusal is not None:
            return refusal
        if prompt is None:
            unknown = problem_response(404, f"no prompt named {name[:64]!r}")
            return await self._refuse_at_edge(request, scope, unknown)
        try:
            body = await _json_object(request, self._max_body_bytes)
        except _EdgeRefusal as refused:
            return await self._refuse_at_edge(request, scope, refused.response)
        operation: tuple[str, TargetKind, str] = ("prompts/get", "prompt", prompt.name)
        params = prompt_params(prompt)
        errors = type_errors(params, body, strings_only=params is None)
        if errors:
            if params is not None:
                errors = _with_other_errors(errors, params, wire_arguments(params, body))
            return await self._refuse_arguments(request, scope, errors, operation)
        arguments = wire_arguments(params, body)
        result, problem, headers = await self._dispatch(
            lambda: self._mcp.render_prompt(name, arguments), operation
        )
        if problem is not None or result is None:
            return problem or problem_response(500, "the request failed inside the server")
        payload = result.to_mcp_prompt_result().model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        return JSONResponse(payload, headers=headers)

    async def list_tools(self, request: Request) -> Response:
        """``GET /v1/tools``: the tools this key may call, with their schemas."""
        refusal, _ = await self._guard(Scope.READ).admit(request)
        if refusal is not None:
            return refusal
        tools, problem, headers = await self._dispatch(
            self._mcp.list_tools, ("tools/list", None, None)
        )
        if problem is not None or tools is None:
            return problem or problem_response(500, "the request failed inside the server")
        entries = [_tool_entry(tool_doc(t, self._check)) for t in tools]
        return JSONResponse({"tools": entries}, headers=headers)

    async def call_tool(self, request: Request) -> Response:
        """``POST /v1/tools/{name}``: call a tool; answer its structured result."""
        with request_scope(self._mcp):
            return await self._call_tool(request)

    async def _call_tool(self, request: Request) -> Response:
        name = request.path_params["name"]
        tool = await find_tool(self._mcp, None, name)
        scope = self._check.required(tool) if tool is not None else Scope.READ
        refusal, _ = await self._guard(scope).admit(request)
        if refusal is not None:
            return refusal
        if tool is None:
            unknown = problem_response(404, f"no tool named {name[:64]!r}")
            return await self._refuse_at_edge(request, scope, unknown)
        try:
            body = await _json_object(request, self._max_body_bytes)
        except _EdgeRefusal as refused:
            return await self._refuse_at_edge(request, scope, refused.response)
        operation: tuple[str, TargetKind, str] = ("tools/call", "tool", tool.name)
        params = tool_params(tool)
        errors = type_errors(params, body)
        if errors and params is not None:
            errors = _with_other_errors(errors, params, body)
            return await self._refuse_arguments(request, scope, errors, operation)
        result, problem, headers = await self._dispatch(
            lambda: self._mcp.call_tool(name, body), operation
        )
        if problem is not None or result is None:
            return problem or problem_response(500, "the request failed inside the server")
        if result.is_error:
            response: Response = tool_error_problem(result)
            response.headers.update(headers)
            return response
        return JSONResponse(_tool_body(result), headers=headers)
