"""``RequestValidationMiddleware``: typed validation of ``prompts/get`` and ``tools/call``.

Works in any FastMCP server. ctxfy's own components carry their declarations
(:class:`~ctxfy.core.params.ParamSpec`); for plain FastMCP components the declarations are
derived from what FastMCP knows: prompt arguments (strings, required or not) and the tool's
argument JSON Schema (strings, integers, enums and lists of strings; other types are left to
FastMCP's own validation).
"""

from typing import Any

import mcp.types as mt
from fastmcp.prompts import Prompt, PromptResult
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult

from ctxfy.adapters.mcp_errors import invalid_params, invalid_tool_result
from ctxfy.adapters.mcp_prompts import SpecPrompt
from ctxfy.adapters.mcp_tools import SpecTool
from ctxfy.core.params import DEFAULT_MAX_LENGTH, ParamSpec, ParamType, validate_arguments

_MAX_DERIVED_LENGTH = 1_000_000


def prompt_params(prompt: Prompt) -> tuple[ParamSpec, ...]:
    """Return the declarations of ``prompt``'s arguments (derived for plain prompts)."""
    if isinstance(prompt, SpecPrompt):
        return prompt.spec.params
    return tuple(
        ParamSpec(name=a.name, required=a.required, max_length=DEFAULT_MAX_LENGTH)
        for a in prompt.arguments or []
        if _is_identifier(a.name)
    )


def tool_params(tool: Tool) -> tuple[ParamSpec, ...] | None:
    """Return the declarations of ``tool``'s arguments, or ``None`` if they cannot be derived.

    Declarations are derived from the tool's JSON Schema only when every property has a type
    the core validator knows; otherwise FastMCP's own validation stays in charge.
    """
    if isinstance(tool, SpecTool):
        return tool.spec.params
    schema = tool.parameters
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    params: list[ParamSpec] = []
    for name, prop in properties.items():
        param = _param_from_schema(name, prop, name in required)
        if param is None:
            return None
        params.append(param)
    return tuple(params)


def _is_identifier(name: str) -> bool:
    try:
        ParamSpec(name=name)
    except ValueError:
        return False
    return True


def _param_from_schema(name: str, prop: dict[str, Any], required: bool) -> ParamSpec | None:
    if not _is_identifier(name):
        return None
    max_length = int(prop.get("maxLength", _MAX_DERIVED_LENGTH))
    kind = prop.get("type")
    if "enum" in prop and all(isinstance(c, str) for c in prop["enum"]):
        return ParamSpec(name, type=ParamType.ENUM, required=required, choices=tuple(prop["enum"]))
    if kind == "string":
        return ParamSpec(
            name, required=required, max_length=max_length, pattern=prop.get("pattern")
        )
    if kind == "integer":
        return ParamSpec(name, type=ParamType.INTEGER, required=required)
    if kind == "array" and prop.get("items", {}).get("type") == "string":
        return ParamSpec(
            name,
            type=ParamType.STRING_LIST,
            required=required,
            max_items=int(prop.get("maxItems", 10_000)),
            max_length=int(prop["items"].get("maxLength", _MAX_DERIVED_LENGTH)),
        )
    return None


class RequestValidationMiddleware(Middleware):
    """Validate prompt and tool arguments against their declarations before they run.

    Invalid prompt arguments raise a JSON-RPC ``-32602`` error whose ``data.errors`` lists
    every problem; invalid tool arguments return an ``isError`` result with the same list
    (MCP 2025-11-25 treats tool input errors as execution errors the model can correct).
    Accepted string values are passed on normalised (NFC, invisible characters stripped).

    Example:
        ```python
        from fastmcp import FastMCP
        from ctxfy.adapters.validation import RequestValidationMiddleware

        mcp = FastMCP("mine")
        mcp.add_middleware(RequestValidationMiddleware())
        ```
    """

    async def on_get_prompt(
        self,
        context: MiddlewareContext[mt.GetPromptRequestParams],
        call_next: CallNext[mt.GetPromptRequestParams, PromptResult],
    ) -> PromptResult:
        """Validate the arguments of ``prompts/get``."""
        server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
        prompt = await server.get_prompt(context.message.name) if server else None
        if prompt is None:
            return await call_next(context)
        arguments: dict[str, Any] = dict(context.message.arguments or {})
        result = validate_arguments(prompt_params(prompt), arguments)
        if not result.ok:
            raise invalid_params(result.errors)
        cleaned = {k: v for k, v in result.values.items() if isinstance(v, str)}
        message = context.message.model_copy(update={"arguments": {**arguments, **cleaned}})
        return await call_next(context.copy(message=message))

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        """Validate the arguments of ``tools/call``."""
        server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
        tool = await server.get_tool(context.message.name) if server else None
        params = tool_params(tool) if tool is not None else None
        if params is None:
            return await call_next(context)
        arguments: dict[str, Any] = dict(context.message.arguments or {})
        result = validate_arguments(params, arguments)
        if not result.ok:
            return invalid_tool_result(result.errors)
        cleaned = {k: v for k, v in result.values.items() if isinstance(v, str)}
        message = context.message.model_copy(update={"arguments": {**arguments, **cleaned}})
        return await call_next(context.copy(message=message))
