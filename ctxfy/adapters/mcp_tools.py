"""ctxfy's MCP tools: ``lint_context_stack`` (pure) and ``generate_context_stack`` (LLM)."""

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_context
from fastmcp.tools import Tool, ToolResult
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, Field, SkipValidation

from ctxfy.adapters.component_lookup import validate_once
from ctxfy.adapters.llm_mcp import choose_llm
from ctxfy.adapters.logging import note_llm_model
from ctxfy.adapters.mcp_errors import invalid_tool_result
from ctxfy.core.errors import DraftRejectedError, LLMError, LLMTimeoutError
from ctxfy.core.generation import draft_context_stack
from ctxfy.core.lint import Severity, lint_markdown
from ctxfy.core.llm import Completion, CompletionRequest, LLMPort
from ctxfy.core.params import ParamSpec
from ctxfy.core.prompt import render_prompt
from ctxfy.core.stack import LayerKind
from ctxfy.core.telemetry import MetricsRecorder, NullMetricsRecorder
from ctxfy.core.tool import ToolSpec
from ctxfy.prompts import CONTEXT_STACK, builtin_blocks

#: Upper bound on a context stack submitted for linting.
MAX_LINT_CHARS = 200_000


def _record(**properties: object) -> dict[str, object]:
    """A JSON object with exactly these properties, all required."""
    return {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }


_TEXT = {"type": "string"}
_TEXTS = {"type": "array", "items": _TEXT}
_LAYER_KINDS = {"type": "array", "items": {"enum": [kind.value for kind in LayerKind]}}
_FIELD = _record(key=_TEXT, value=_TEXT, items=_TEXTS)

#: The shape of ``ContextStack.to_dict()``.
STACK_SCHEMA = _record(
    title=_TEXT,
    metadata={"type": "array", "items": _FIELD},
    layers={
        "type": "array",
        "items": _record(
            kind={"enum": [kind.value for kind in LayerKind]},
            subtitle=_TEXT,
            sections={
                "type": "array",
                "items": _record(
                    heading=_TEXT,
                    text=_TEXT,
                    items=_TEXTS,
                    fields={"type": "array", "items": _FIELD},
                ),
            },
        ),
    },
)

#: The shape of ``LintReport.to_dict()``.
LINT_REPORT_SCHEMA = _record(
    ok={"type": "boolean", "description": "No finding is an error."},
    score={"type": "integer", "minimum": 0, "maximum": 100},
    layers_present=_LAYER_KINDS,
    layers_missing=_LAYER_KINDS,
    findings={
        "type": "array",
        "items": _record(
            code=_TEXT,
            severity={"enum": [severity.value for severity in Severity]},
            message=_TEXT,
            location=_TEXT,
        ),
    },
)

LINT_TOOL = ToolSpec(
    name="lint_context_stack",
    description=(
        "Parse a context stack written in Markdown (or the plain format of the ctxfy seed) "
        "and report which layers and fields are present, missing or empty, unfilled "
        "{{placeholders}}, non-functional criteria without a measurable number, and a score "
        "from 0 to 100. No LLM is called."
    ),
    params=(
        ParamSpec(
            "markdown",
            required=True,
            description="The context stack to lint.",
            example="# CONTEXT STACK: Checkout service\n\n## System Context Layer\n...",
            max_length=MAX_LINT_CHARS,
        ),
    ),
    output_schema=_record(
        report=LINT_REPORT_SCHEMA,
        stack={"anyOf": [STACK_SCHEMA, {"type": "null"}], "description": "null: not a stack."},
    ),
)

GENERATE_TOOL = ToolSpec(
    name="generate_context_stack",
    description=(
        "Draft a complete five-layer context stack for a task with an LLM (the client's, "
        "through MCP sampling, or the server's fallback), then parse and lint it. Returns "
        "the structured stack, its Markdown, the lint report and the model that wrote it."
    ),
    params=CONTEXT_STACK.params,
    needs_llm=True,
    output_schema=_record(
        stack=STACK_SCHEMA,
        markdown=_TEXT,
        lint=LINT_REPORT_SCHEMA,
        model=_TEXT,
        attempts={"type": "integer", "minimum": 1},
    ),
)


class SpecTool(Tool):
    """Base class of tools declared by a core :class:`ToolSpec`.

    The JSON Schema clients see comes from the declaration, and arguments are validated by
    the core validator before :meth:`execute` runs; invalid arguments give an ``isError``
    result listing every problem (see :func:`~ctxfy.adapters.mcp_errors.invalid_tool_result`).
    When :class:`~ctxfy.adapters.validation.RequestValidationMiddleware` has already
    validated exactly these arguments in this request, its values are used instead.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: ToolSpec = Field(exclude=True)

    @classmethod
    def _fields_for(cls, spec: ToolSpec, *, read_only: bool) -> dict[str, Any]:
        return {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.arguments_schema(),
            # Not given to FastMCP: the MCP SDK validates every result against a tool's
            # outputSchema with a full jsonschema check of the schema itself, about 13 ms a
            # call for the lint report (a 4x throughput loss measured with bench/); the
            # schema is published in OpenAPI from the spec instead (component_docs).
            "output_schema": None,
            "annotations": ToolAnnotations(readOnlyHint=read_only, openWorldHint=spec.needs_llm),
            "tags": {"ctxfy", "llm"} if spec.needs_llm else {"ctxfy"},
            "spec": spec,
        }

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        """Validate ``arguments`` then call :meth:`execute`."""
        result = validate_once(self.spec, self.spec.params, arguments)
        if not result.ok:
            return invalid_tool_result(result.errors)
        data = await self.execute(result.values)
        return ToolResult(structured_content=data)

    async def execute(self, values: Mapping[str, object]) -> dict[str, Any]:
        """Do the tool's work with validated values; subclasses implement it."""
        raise NotImplementedError


class LintContextStackTool(SpecTool):
    """``lint_context_stack``: parse and lint a context stack, with no LLM.

    Example:
        ```python
        mcp.add_tool(LintContextStackTool.create())
        ```
    """

    @classmethod
    def create(cls) -> "LintContextStackTool":
        """Build the tool."""
        return cls(**cls._fields_for(LINT_TOOL, read_only=True))

    async def execute(self, values: Mapping[str, object]) -> dict[str, Any]:
        """Lint ``values["markdown"]`` and return the report (and the parsed stack)."""
        stack, report = lint_markdown(str(values["markdown"]))
        return {
            "report": report.to_dict(),
            "stack": stack.to_dict() if stack is not None else None,
        }


class GenerateContextStackTool(SpecTool):
    """``generate_context_stack``: draft a stack with an LLM, then parse and lint it.

    Example:
        ```python
        fallback = OpenAICompatibleLLM("http://127.0.0.1:8080/v1", "my-model")
        mcp.add_tool(GenerateContextStackTool.create(fallback=fallback, timeout_s=60))
        ```
    """

    fallback: SkipValidation[LLMPort | None] = Field(default=None, exclude=True)
    timeout_s: float = Field(default=60.0, exclude=True)
    max_tokens: int = Field(default=4096, exclude=True)
    metrics: SkipValidation[MetricsRecorder] = Field(
        default_factory=NullMetricsRecorder, exclude=True
    )

    @classmethod
    def create(
        cls,
        *,
        fallback: LLMPort | None = None,
        timeout_s: float = 60.0,
        max_tokens: int = 4096,
        metrics: MetricsRecorder | None = None,
    ) -> "GenerateContextStackTool":
        """Build the tool.

        Args:
            fallback: The server-side LLM used when the client cannot sample.
            timeout_s: Timeout of one LLM call.
            max_tokens: Upper bound on the length of each draft.
            metrics: Where LLM call durations are recorded.
        """
        return cls(
            **cls._fields_for(GENERATE_TOOL, read_only=False),
            fallback=fallback,
            timeout_s=timeout_s,
            max_tokens=max_tokens,
            metrics=metrics if metrics is not None else NullMetricsRecorder(),
        )

    async def execute(self, values: Mapping[str, object]) -> dict[str, Any]:
        """Render ``context_stack``, ask the LLM, parse and lint the draft."""
        prompt = render_prompt(CONTEXT_STACK, values, builtin_blocks())
        try:
            llm = choose_llm(get_context(), self.fallback)
            draft = await draft_context_stack(
                prompt, ObservedLLM(llm, self.timeout_s, self.metrics), max_tokens=self.max_tokens
            )
        except (LLMError, DraftRejectedError) as exc:
            raise ToolError(str(exc)) from exc
        return {
            "stack": draft.stack.to_dict(),
            "markdown": draft.markdown,
            "lint": draft.report.to_dict(),
            "model": draft.model,
            "attempts": draft.attempts,
        }


class ObservedLLM:
    """Wraps another LLM port: bounds each call, records its metric, notes its model.

    Every call is bounded by ``timeout_s``; its duration goes to the
    ``gen_ai.client.operation.duration`` histogram, labelled with the requested model: the
    wrapped port's ``model`` attribute when it has one (the server-side fallback's
    configured model), else the model that answered (MCP sampling, where ctxfy asks for no
    particular model), else ``unknown``. So a timeout or error is attributed to the model
    it was meant for. The request's ``llm_model`` log field gets the model that answered,
    or the requested one when the call failed.
    """

    def __init__(self, inner: LLMPort, timeout_s: float, metrics: MetricsRecorder) -> None:
        self._inner = inner
        self._timeout_s = timeout_s
        self._metrics = metrics
        requested = getattr(inner, "model", None)
        self._requested = requested if isinstance(requested, str) and requested else None

    async def complete(self, request: CompletionRequest) -> Completion:
        """Call the wrapped port; see :class:`~ctxfy.core.llm.LLMPort`."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                completion = await self._inner.complete(request)
        except TimeoutError as exc:
            self._failed(started, "timeout")
            raise LLMTimeoutError(
                f"the LLM did not answer within {self._timeout_s:g} s (CTXFY_LLM_TIMEOUT_S)"
            ) from exc
        except LLMError as exc:
            self._failed(started, type(exc).__name__)
            raise
        self._record(self._requested or completion.model, started, None)
        note_llm_model(completion.model)
        return completion

    def _failed(self, started: float, error_type: str) -> None:
        self._record(self._requested or "unknown", started, error_type)
        if self._requested is not None:
            note_llm_model(self._requested)

    def _record(self, model: str, started: float, error_type: str | None) -> None:
        self._metrics.record_llm_call(
            model=model, duration_s=time.perf_counter() - started, error_type=error_type
        )
