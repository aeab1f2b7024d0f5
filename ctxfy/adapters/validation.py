"""``RequestValidationMiddleware``: limits, typed validation and injection screening.

Works in any FastMCP server. For ``prompts/get`` and ``tools/call`` it checks, in order:

1. the request-level limits (:class:`~ctxfy.core.params.ValidationLimits`: number of
   arguments, total size), for every prompt and tool;
2. each argument against its declaration. ctxfy's own components carry their declarations
   (:class:`~ctxfy.core.params.ParamSpec`); for plain FastMCP components they are derived,
   argument by argument, from what FastMCP knows: prompt arguments (strings, required or
   not) and the tool's argument JSON Schema (strings and ``str | None``, integers, enums
   and lists of strings). Any other argument (a boolean, a number, an object, a camelCase
   name) is *opaque*: FastMCP keeps checking its type, ctxfy applies the character policy
   to every string inside it and passes it on normalised. Unknown arguments are refused;
3. every string value with the heuristic injection detector
   (:func:`~ctxfy.core.injection.detect_injection`): under the ``flag`` policy a finding is
   counted and audited and the request is served (the value stays segregated in its
   ``<user_input>`` block); under ``reject`` the request is refused like an invalid one.
"""

import weakref
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, get_args

import mcp.types as mt
from fastmcp.prompts import Prompt, PromptResult
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult
from loguru import logger

from ctxfy.adapters.component_lookup import request_prompt, request_tool, validated_arguments
from ctxfy.adapters.mcp_errors import invalid_params, invalid_tool_result
from ctxfy.adapters.mcp_prompts import SpecPrompt
from ctxfy.adapters.mcp_tools import SpecTool
from ctxfy.core.injection import InjectionFinding, detect_injection
from ctxfy.core.params import (
    DEFAULT_LIMITS,
    FieldError,
    ParamSpec,
    ParamType,
    ValidationLimits,
    is_param_name,
    validate_arguments,
)
from ctxfy.core.telemetry import MetricsRecorder

__all__ = [
    "Checks",
    "InjectionPolicy",
    "OnFlag",
    "RequestValidationMiddleware",
    "prompt_checks",
    "prompt_params",
    "tool_checks",
    "tool_params",
]

InjectionPolicy = Literal["flag", "reject"]
"""What to do with a request the injection detector flags: serve it, or refuse it."""

OnFlag = Callable[[InjectionFinding, str], None]
"""Audit callback, called once per finding with the prompt or tool name."""

_MAX_DERIVED_LENGTH = 1_000_000
_MAX_DERIVED_ITEMS = 10_000

Checks = tuple[tuple[ParamSpec, ...], frozenset[str]]
"""What the middleware checks for one component: declarations, and names of opaque arguments."""

_C = TypeVar("_C", Prompt, Tool)


def prompt_params(prompt: Prompt) -> tuple[ParamSpec, ...] | None:
    """Return the declarations of ``prompt``'s arguments (derived for plain prompts).

    Returns ``None`` when an argument name is not a lower-case identifier (``userName``):
    such a prompt cannot be described with :class:`~ctxfy.core.params.ParamSpec` (the
    middleware still checks it, see :func:`prompt_checks`).
    """
    params, opaque = prompt_checks(prompt)
    return None if opaque else params


def tool_params(tool: Tool) -> tuple[ParamSpec, ...] | None:
    """Return the declarations of ``tool``'s arguments, or ``None`` if they cannot be derived.

    Declarations are derived from the tool's JSON Schema only when every property is a
    string, an integer, a string enum or a list of strings (what ``ParamSpec`` describes);
    otherwise the REST façade and the docs keep FastMCP's schema. The middleware checks
    every tool whatever its types, see :func:`tool_checks`.
    """
    if isinstance(tool, SpecTool):
        return tool.spec.params
    params, opaque = _derive_tool(tool)
    if opaque or any(_optional_string(p) for p in _properties(tool).values()):
        return None  # a ParamSpec cannot say that null is allowed too
    return params


def prompt_checks(prompt: Prompt) -> Checks:
    """Return what the middleware checks for ``prompt``: declarations and opaque names.

    A plain prompt's argument named like an identifier becomes a string declaration
    (required as FastMCP says, meaning present: an empty string is a value; at most
    1,000,000 characters); any other name (``userName``)
    is *opaque*: known, so not refused as unknown, and held to the character policy.

    Returns:
        The declarations and the names of the opaque arguments (see
        :func:`~ctxfy.core.params.validate_arguments`).
    """
    if isinstance(prompt, SpecPrompt):
        return prompt.spec.params, frozenset()
    params: list[ParamSpec] = []
    opaque: set[str] = set()
    for argument in prompt.arguments or []:
        if is_param_name(argument.name):
            params.append(
                ParamSpec(
                    name=argument.name,
                    required=argument.required,
                    max_length=_MAX_DERIVED_LENGTH,
                    accept_empty=True,
                )
            )
        else:
            opaque.add(argument.name)
    return tuple(params), frozenset(opaque)


def tool_checks(tool: Tool) -> Checks:
    """Return what the middleware checks for ``tool``: declarations and opaque names.

    Each property of the tool's JSON Schema is derived on its own: strings (also
    ``str | None``, as an optional string), string enums and lists of strings become
    declarations, with the schema's ``maxLength``/``maxItems`` or 1,000,000 characters and
    10,000 items, and the schema's ``pattern`` matched anywhere, as JSON Schema does; a
    required one must be present, and an empty string or list is a value. Every other
    property (integers, which FastMCP converts from floats such as ``3.0`` and from digit
    strings of any length, booleans, numbers, objects, other unions, names that are not
    identifiers) is opaque: FastMCP converts and validates its type, and the character
    policy applies to every string inside it.

    Returns:
        The declarations and the names of the opaque arguments.
    """
    if isinstance(tool, SpecTool):
        return tool.spec.params, frozenset()
    params, opaque = _derive_tool(tool)
    integers = {p.name for p in params if p.type is ParamType.INTEGER}
    return tuple(p for p in params if p.name not in integers), opaque | integers


def _derive_tool(tool: Tool) -> Checks:
    required = set(tool.parameters.get("required", []))
    params: list[ParamSpec] = []
    opaque: set[str] = set()
    for name, prop in _properties(tool).items():
        param = _param_from_schema(name, prop, name in required)
        if param is None:
            opaque.add(name)
        else:
            params.append(param)
    return tuple(params), frozenset(opaque)


def _properties(tool: Tool) -> dict[str, Any]:
    properties = tool.parameters.get("properties", {})
    return properties if isinstance(properties, dict) else {}


def _optional_string(prop: Any) -> dict[str, Any] | None:
    """Return the string branch of ``anyOf: [string, null]`` (``str | None``), if that is it."""
    branches = prop.get("anyOf") if isinstance(prop, dict) else None
    if not isinstance(branches, list) or len(branches) != 2:
        return None
    kinds = [b.get("type") if isinstance(b, dict) else None for b in branches]
    if sorted(map(str, kinds)) != ["null", "string"]:
        return None
    string = branches[kinds.index("string")]
    return string if isinstance(string, dict) else None


def _param_from_schema(name: str, prop: Any, required: bool) -> ParamSpec | None:
    if not is_param_name(name) or not isinstance(prop, dict):
        return None
    string = _optional_string(prop)
    if string is not None:
        # None is a valid value: FastMCP checks presence, ctxfy checks the text if any.
        prop, required = string, False
    try:
        return _declaration(name, prop, required)
    except (TypeError, ValueError):
        return None  # a schema ctxfy cannot mirror (a bad pattern, odd limits): opaque


def _declaration(name: str, prop: dict[str, Any], required: bool) -> ParamSpec | None:
    kind = prop.get("type")
    choices = prop.get("enum")
    if isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices):
        return ParamSpec(
            name, type=ParamType.ENUM, required=required, choices=tuple(choices), accept_empty=True
        )
    if kind == "string" and "enum" not in prop:
        pattern = prop.get("pattern")
        return ParamSpec(
            name,
            required=required,
            max_length=int(prop.get("maxLength", _MAX_DERIVED_LENGTH)),
            pattern=pattern if isinstance(pattern, str) else None,
            pattern_anywhere=True,
            accept_empty=True,
        )
    if kind == "integer":
        return ParamSpec(name, type=ParamType.INTEGER, required=required, accept_empty=True)
    items = prop.get("items")
    if kind == "array" and isinstance(items, dict) and _plain_string(items):
        return ParamSpec(
            name,
            type=ParamType.STRING_LIST,
            required=required,
            max_items=int(prop.get("maxItems", _MAX_DERIVED_ITEMS)),
            max_length=int(items.get("maxLength", _MAX_DERIVED_LENGTH)),
            accept_empty=True,
        )
    return None


def _plain_string(schema: dict[str, Any]) -> bool:
    # Items with a pattern or an enum of their own are left to FastMCP, with the policy.
    return schema.get("type") == "string" and not {"pattern", "enum"} & schema.keys()


class _DerivedChecks:
    """The checks derived for each plain component, bounded to ``size`` entries.

    A local component is the same object request after request, but a mounted (namespaced)
    one is a new copy, with a new schema object, on every lookup. So the checks are found
    first by the component's identity and then by what survives the copy: its type, its key
    and the text of the schema or argument list they come from. Deriving costs tens of
    microseconds, an identity hit well under one, a hit by key a few.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._by_id: dict[int, tuple[weakref.ref[Any], object, Checks]] = {}
        self._by_key: dict[tuple[type, str, str], Checks] = {}

    def get(self, component: _C, source: object, derive: Callable[[_C], Checks]) -> Checks:
        # ``source`` is the object the checks come from (the schema or the argument list):
        # a component given a new one is derived again.
        hit = self._by_id.get(id(component))
        if hit is not None and hit[0]() is component and hit[1] is source:
            return hit[2]
        key = (type(component), component.key, repr(source))
        checks = self._by_key.get(key)
        if checks is None:
            checks = derive(component)
            if len(self._by_key) >= self._size:
                self._by_key.clear()
            self._by_key[key] = checks
        if len(self._by_id) >= self._size:
            self._by_id.clear()
        self._by_id[id(component)] = (weakref.ref(component), source, checks)
        return checks


def _cleaned(arguments: Mapping[str, Any], values: Mapping[str, object]) -> dict[str, Any]:
    # Pass on the normalised strings (opaque lists and objects carry them inside); integers
    # and JSON-string lists stay as sent, so that FastMCP converts them as it always does
    # (a SpecPrompt or SpecTool reuses the values validated here, see
    # ``validated_arguments``).
    out = dict(arguments)
    for name, value in values.items():
        if isinstance(value, str | list | dict):
            out[name] = value
        elif isinstance(value, tuple) and isinstance(arguments.get(name), list):
            out[name] = list(value)
    return out


class RequestValidationMiddleware(Middleware):
    """Check prompt and tool arguments against limits, declarations and the detector.

    Invalid prompt arguments raise a JSON-RPC ``-32602`` error whose ``data.errors`` lists
    every problem (``{field, rule, message}``); invalid tool arguments return an ``isError``
    result with the same list in ``structuredContent.errors`` (MCP 2025-11-25, SEP-1303:
    tool input errors are execution errors the model can correct). Accepted string values
    are passed on normalised (NFC, invisible characters stripped), and ctxfy's own
    components (``SpecPrompt``, ``SpecTool``) use the values validated here instead of
    validating them again. The prompt or tool is looked up once per request, shared with
    :class:`~ctxfy.adapters.scopes.ScopeAuthMiddleware` (see
    :mod:`~ctxfy.adapters.component_lookup`).

    Args:
        limits: The request-level limits (default: 32 arguments, 262,144 characters).
        injection_policy: ``"flag"`` (default) serves a flagged request; ``"reject"``
            refuses it with rule ``injection``.
        metrics: Counts ``count_validation_rejection(rule)`` once per distinct rule of a
            refused request, and ``count_injection_flag(pattern)`` once per finding.
        on_flag: Called once per finding with the prompt or tool name, to write an audit
            event. Without it, a ``WARNING`` record bound with ``event="injection_flagged"``,
            ``target``, ``pattern``, ``field`` and ``policy`` goes to loguru; the value and
            the excerpt are never logged.

    Example:
        ```python
        from fastmcp import FastMCP
        from ctxfy.adapters.validation import RequestValidationMiddleware
        from ctxfy.core.params import ValidationLimits

        mcp = FastMCP("mine")
        mcp.add_middleware(
            RequestValidationMiddleware(
                limits=ValidationLimits(max_request_chars=65_536),
                injection_policy="reject",
            )
        )
        ```
    """

    def __init__(
        self,
        *,
        limits: ValidationLimits = DEFAULT_LIMITS,
        injection_policy: InjectionPolicy = "flag",
        metrics: MetricsRecorder | None = None,
        on_flag: OnFlag | None = None,
    ) -> None:
        if injection_policy not in get_args(InjectionPolicy):
            raise ValueError(
                f"injection_policy must be 'flag' or 'reject', not {injection_policy!r}"
            )
        self.limits = limits
        self.injection_policy: InjectionPolicy = injection_policy
        self._metrics = metrics
        self._on_flag = on_flag
        self._derived = _DerivedChecks()

    async def on_get_prompt(
        self,
        context: MiddlewareContext[mt.GetPromptRequestParams],
        call_next: CallNext[mt.GetPromptRequestParams, PromptResult],
    ) -> PromptResult:
        """Validate and screen the arguments of ``prompts/get``."""
        name = context.message.name
        prompt = await request_prompt(context)
        if prompt is None:
            return await call_next(context)
        arguments: dict[str, Any] = dict(context.message.arguments or {})
        checks = self._derived.get(prompt, prompt.arguments, prompt_checks)
        errors, cleaned, values = self._check(name, checks, arguments)
        if errors:
            raise invalid_params(errors)
        message = context.message.model_copy(update={"arguments": cleaned})
        if not isinstance(prompt, SpecPrompt):
            return await call_next(context.copy(message=message))
        with validated_arguments(prompt.spec, cleaned, values):
            return await call_next(context.copy(message=message))

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        """Validate and screen the arguments of ``tools/call``."""
        name = context.message.name
        tool = await request_tool(context)
        if tool is None:
            return await call_next(context)
        arguments: dict[str, Any] = dict(context.message.arguments or {})
        checks = self._derived.get(tool, tool.parameters, tool_checks)
        errors, cleaned, values = self._check(name, checks, arguments)
        if errors:
            return invalid_tool_result(errors)
        message = context.message.model_copy(update={"arguments": cleaned})
        if not isinstance(tool, SpecTool):
            return await call_next(context.copy(message=message))
        with validated_arguments(tool.spec, cleaned, values):
            return await call_next(context.copy(message=message))

    def _check(
        self,
        target: str,
        checks: Checks,
        arguments: dict[str, Any],
    ) -> tuple[tuple[FieldError, ...], dict[str, Any], Mapping[str, object]]:
        """Return the errors that refuse the request, the arguments to pass on and their values."""
        params, opaque = checks
        result = validate_arguments(params, arguments, self.limits, opaque=opaque)
        errors, values = result.errors, result.values
        if errors:
            self._count_rejection(errors)
            return errors, arguments, values
        report = detect_injection(values)
        for finding in report.findings:
            self._flag(finding, target)
        if report.flagged and self.injection_policy == "reject":
            errors = report.errors()
            self._count_rejection(errors)
            return errors, arguments, values
        return (), _cleaned(arguments, values), values

    def _count_rejection(self, errors: tuple[FieldError, ...]) -> None:
        if self._metrics is not None:
            for rule in sorted({error.rule for error in errors}):
                self._metrics.count_validation_rejection(rule)

    def _flag(self, finding: InjectionFinding, target: str) -> None:
        if self._metrics is not None:
            self._metrics.count_injection_flag(finding.pattern)
        if self._on_flag is not None:
            self._on_flag(finding, target)
            return
        logger.bind(
            event="injection_flagged",
            target=target,
            pattern=finding.pattern,
            field=finding.field,
            policy=self.injection_policy,
        ).warning("possible prompt injection in {} of {}", finding.field, target)
