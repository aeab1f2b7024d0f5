"""The REST and OpenAPI view of FastMCP prompts and tools: schemas, examples, scopes.

:func:`prompt_doc` and :func:`tool_doc` describe one live component as an
:class:`OperationDoc`, the single input of the REST listings and of the OpenAPI document.
ctxfy's own components carry their :class:`~ctxfy.core.params.ParamSpec` declarations, so
the schema and the examples come from the one declaration that also drives validation;
plain FastMCP components are described from what FastMCP knows about them.
"""

import json
from typing import Any, Literal

import attrs
from fastmcp.prompts import Prompt
from fastmcp.tools import Tool

from ctxfy.adapters.mcp_tools import SpecTool
from ctxfy.adapters.scopes import ScopeCheck
from ctxfy.adapters.validation import prompt_params, tool_params
from ctxfy.core.keys import Scope
from ctxfy.core.params import FieldError, ParamSpec, ParamType, arguments_schema

__all__ = [
    "OperationDoc",
    "param_example",
    "prompt_doc",
    "tool_doc",
    "type_errors",
    "wire_arguments",
]

Kind = Literal["prompt", "tool"]


@attrs.frozen
class OperationDoc:
    """What the REST façade and the OpenAPI document say about one prompt or tool.

    Attributes:
        kind: ``"prompt"`` or ``"tool"``.
        name: The MCP name.
        title: A short human title (the name when the component has none).
        description: What it does.
        schema: JSON Schema (draft 2020-12) of the arguments object.
        example: A request body built from the parameters' examples.
        scope: The API-key scope needed to use it.
        needs_llm: Whether it calls an LLM (tools tagged ``llm``).
        output_schema: JSON Schema of a tool's structured result, when declared.
        params: The parameter declarations, when known.
    """

    kind: Kind
    name: str
    title: str
    description: str
    schema: dict[str, Any] = attrs.field(eq=False)
    example: dict[str, Any] = attrs.field(eq=False)
    scope: Scope
    needs_llm: bool = False
    output_schema: dict[str, Any] | None = attrs.field(default=None, eq=False)
    params: tuple[ParamSpec, ...] | None = None


def param_example(param: ParamSpec) -> Any:
    """Return a JSON value for ``param``: its declared example, typed, or a stand-in.

    A declared example is text (prompt files are YAML); it is converted to the parameter's
    JSON type (an integer, a list of strings). A parameter without a usable example gets
    the first choice of an enum, ``1``, ``["example"]`` or ``"example"``.

    Example:
        >>> param_example(ParamSpec("limit", type=ParamType.INTEGER, example="20"))
        20
    """
    text = param.example
    if param.type is ParamType.INTEGER:
        if text is not None and text.strip().lstrip("+-").isdigit():
            return int(text)
        return 1
    if param.type is ParamType.STRING_LIST:
        try:
            value = json.loads(text) if text is not None else None
        except ValueError:
            value = [text]
        if isinstance(value, list) and value and all(isinstance(i, str) for i in value):
            return value[: param.max_items]
        return [text] if text else ["example"]
    if param.type is ParamType.ENUM:
        return text if text in param.choices else param.choices[0]
    return text if text else "example"


def _typed_schema(params: tuple[ParamSpec, ...], schema: dict[str, Any]) -> dict[str, Any]:
    # A declaration's example is text; the schema must show it in the parameter's JSON type.
    properties = dict(schema.get("properties", {}))
    for param in params:
        prop = dict(properties.get(param.name, {}))
        if param.example is not None:
            prop["examples"] = [param_example(param)]
        properties[param.name] = prop
    return {**schema, "properties": properties}


def _example(params: tuple[ParamSpec, ...] | None, schema: dict[str, Any]) -> dict[str, Any]:
    if params is None:
        required = schema.get("required", [])
        return {name: "example" for name in required if isinstance(name, str)}
    return {p.name: param_example(p) for p in params if p.required or p.example is not None}


def prompt_doc(prompt: Prompt, check: ScopeCheck | None = None) -> OperationDoc:
    """Describe a FastMCP prompt for REST and OpenAPI.

    Args:
        prompt: A prompt from ``await mcp.list_prompts()``.
        check: The scope rule (ctxfy's default map when omitted).

    Returns:
        Its schema (from its declaration, or strings for a plain prompt), example and scope.

    Example:
        ```python
        docs = [prompt_doc(p) for p in await mcp.list_prompts(run_middleware=False)]
        ```
    """
    params = prompt_params(prompt)
    if params is not None:
        schema = _typed_schema(params, arguments_schema(params))
    else:
        arguments = prompt.arguments or []
        schema = {
            "type": "object",
            "properties": {
                a.name: {"type": "string", "description": a.description or ""} for a in arguments
            },
            "required": [a.name for a in arguments if a.required],
            "additionalProperties": False,
        }
    return OperationDoc(
        kind="prompt",
        name=prompt.name,
        title=prompt.title or prompt.name,
        description=prompt.description or "",
        schema=schema,
        example=_example(params, schema),
        scope=(check or ScopeCheck()).required(prompt),
        params=params,
    )


def tool_doc(tool: Tool, check: ScopeCheck | None = None) -> OperationDoc:
    """Describe a FastMCP tool for REST and OpenAPI.

    Args:
        tool: A tool from ``await mcp.list_tools()``.
        check: The scope rule (ctxfy's default map when omitted).

    Returns:
        Its argument schema (FastMCP's), example, scope and whether it needs an LLM.

    Example:
        ```python
        docs = [tool_doc(t) for t in await mcp.list_tools(run_middleware=False)]
        ```
    """
    params = tool_params(tool)
    schema = dict(tool.parameters)
    if params is not None:
        schema = _typed_schema(params, schema)
    needs_llm = tool.spec.needs_llm if isinstance(tool, SpecTool) else "llm" in tool.tags
    return OperationDoc(
        kind="tool",
        name=tool.name,
        title=tool.title or tool.name,
        description=tool.description or "",
        schema=schema,
        example=_example(params, schema),
        scope=(check or ScopeCheck()).required(tool),
        needs_llm=needs_llm,
        output_schema=(
            dict(tool.spec.output_schema)
            if isinstance(tool, SpecTool) and tool.spec.output_schema
            else tool.output_schema
        ),
        params=params,
    )


def wire_arguments(params: tuple[ParamSpec, ...] | None, body: dict[str, Any]) -> dict[str, str]:
    """Return typed REST arguments as MCP sends prompt arguments: strings.

    Integers become their decimal text and lists of strings a JSON array, exactly what an
    MCP client sends for the same values, so both paths render the same messages. Values
    are assumed to have their declared JSON types already (see
    :func:`ctxfy.adapters.rest_errors.type_errors`); anything else becomes JSON text.
    """
    declared = {p.name for p in params or ()}
    out: dict[str, str] = {}
    for name, value in body.items():
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, int) and not isinstance(value, bool) and name in declared:
            out[name] = str(value)
        else:
            out[name] = json.dumps(value, ensure_ascii=False)
    return out


def _json_type_ok(param: ParamSpec, value: Any) -> bool:
    if param.type is ParamType.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if param.type is ParamType.STRING_LIST:
        return isinstance(value, list) and all(isinstance(i, str) for i in value)
    return isinstance(value, str)


_TYPE_NAMES = {
    ParamType.INTEGER: "an integer",
    ParamType.STRING_LIST: "a list of strings",
}


def type_errors(
    params: tuple[ParamSpec, ...] | None, body: dict[str, Any], *, strings_only: bool = False
) -> tuple[FieldError, ...]:
    """Return a ``type`` error for every declared argument whose JSON type is wrong.

    REST bodies are typed JSON, so ``null`` or ``"5"`` where an integer is declared are
    refused here (MCP, which carries only strings, converts them instead). Undeclared
    arguments are left to the validator, which reports them as unknown.

    Args:
        params: The declarations (``None``: unknown, then only ``strings_only`` applies).
        body: The request body.
        strings_only: Every value must be a string (plain MCP prompts).
    """
    errors: list[FieldError] = []
    declared = {p.name: p for p in params or ()}
    for name, value in body.items():
        param = declared.get(name)
        if param is not None and not _json_type_ok(param, value):
            kind = _TYPE_NAMES.get(param.type, "a string")
            errors.append(FieldError(name, "type", f"{name} must be {kind}"))
        elif param is None and strings_only and not isinstance(value, str):
            errors.append(FieldError(name[:64], "type", f"{name[:64]} must be a string"))
    return tuple(errors)
