"""``RequestValidationMiddleware``: limits, typed validation and injection screening.

Works in any FastMCP server. For ``prompts/get`` and ``tools/call`` it checks, in order:

1. the request-level limits (:class:`~ctxfy.core.params.ValidationLimits`: number of
   arguments, total size), for every prompt and tool;
2. each argument against its declaration. ctxfy's own components carry their declarations
   (:class:`~ctxfy.core.params.ParamSpec`); for plain FastMCP components they are derived
   from what FastMCP knows: prompt arguments (strings, required or not) and the tool's
   argument JSON Schema (strings, integers, enums and lists of strings; a tool with any other
   type is left to FastMCP's own validation);
3. every string value with the heuristic injection detector
   (:func:`~ctxfy.core.injection.detect_injection`): under the ``flag`` policy a finding is
   counted and audited and the request is served (the value stays segregated in its
   ``<user_input>`` block); under ``reject`` the request is refused like an invalid one.
"""

from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

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
    DEFAULT_MAX_LENGTH,
    FieldError,
    ParamSpec,
    ParamType,
    ValidationLimits,
    check_request_limits,
    validate_arguments,
)
from ctxfy.core.telemetry import MetricsRecorder

__all__ = [
    "InjectionPolicy",
    "OnFlag",
    "RequestValidationMiddleware",
    "prompt_params",
    "tool_params",
]

InjectionPolicy = Literal["flag", "reject"]
"""What to do with a request the injection detector flags: serve it, or refuse it."""

OnFlag = Callable[[InjectionFinding, str], None]
"""Audit callback, called once per finding with the prompt or tool name."""

_MAX_DERIVED_LENGTH = 1_000_000


def prompt_params(prompt: Prompt) -> tuple[ParamSpec, ...] | None:
    """Return the declarations of ``prompt``'s arguments (derived for plain prompts).

    Returns ``None`` when an argument name is not a lower-case identifier (``userName``):
    the prompt is then only checked against the request limits and the detector.
    """
    if isinstance(prompt, SpecPrompt):
        return prompt.spec.params
    arguments = prompt.arguments or []
    if not all(_is_identifier(a.name) for a in arguments):
        return None
    return tuple(
        ParamSpec(name=a.name, required=a.required, max_length=DEFAULT_MAX_LENGTH)
        for a in arguments
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


def _cleaned(arguments: Mapping[str, Any], values: Mapping[str, object]) -> dict[str, Any]:
    # Pass on the normalised strings; integers and JSON-string lists stay as sent, so that
    # FastMCP converts them as it always does (a SpecPrompt or SpecTool reuses the values
    # validated here instead, see ``validated_arguments``).
    out = dict(arguments)
    for name, value in values.items():
        if isinstance(value, str):
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
        errors, cleaned, values = self._check(name, prompt_params(prompt), arguments)
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
        errors, cleaned, values = self._check(name, tool_params(tool), arguments)
        if errors:
            return invalid_tool_result(errors)
        message = context.message.model_copy(update={"arguments": cleaned})
        if not isinstance(tool, SpecTool):
            return await call_next(context.copy(message=message))
        with validated_arguments(tool.spec, cleaned, values):
            return await call_next(context.copy(message=message))

    def _check(
        self, target: str, params: tuple[ParamSpec, ...] | None, arguments: dict[str, Any]
    ) -> tuple[tuple[FieldError, ...], dict[str, Any], Mapping[str, object]]:
        """Return the errors that refuse the request, the arguments to pass on and their values."""
        if params is None:
            errors = check_request_limits(arguments, self.limits)
            values: Mapping[str, object] = arguments
        else:
            result = validate_arguments(params, arguments, self.limits)
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
