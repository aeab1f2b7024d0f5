"""MCP prompts and resources built from core :class:`~ctxfy.core.prompt.PromptSpec` objects."""

import json
from collections.abc import Mapping
from typing import Any

from fastmcp import FastMCP
from fastmcp.prompts import Prompt, PromptArgument, PromptResult
from fastmcp.resources import TextResource
from pydantic import ConfigDict, Field

from ctxfy.adapters.component_lookup import validate_once
from ctxfy.adapters.mcp_errors import invalid_params
from ctxfy.core.catalog import PromptCatalog
from ctxfy.core.params import ParamSpec, ParamType
from ctxfy.core.prompt import PromptSpec, render_prompt

SCHEMA_URI = "ctxfy://prompts/{name}/schema"


def _argument_description(param: ParamSpec) -> str:
    parts = [param.description.rstrip(".") + "." if param.description else ""]
    if param.type is ParamType.ENUM:
        parts.append("One of: " + ", ".join(param.choices) + ".")
    elif param.type is ParamType.INTEGER:
        parts.append("A whole number.")
    elif param.type is ParamType.STRING_LIST:
        parts.append('A JSON array of strings, e.g. ["a", "b"].')
    parts.append(f"At most {param.max_length} characters.")
    if param.example is not None:
        parts.append(f"Example: {param.example}")
    return " ".join(p for p in parts if p)


class SpecPrompt(Prompt):
    """A FastMCP prompt rendered from a core :class:`PromptSpec`.

    Arguments are validated by the core validator before rendering, so the prompt is safe
    even in a server without :class:`RequestValidationMiddleware`; invalid arguments raise
    a JSON-RPC ``-32602`` error listing every problem. When that middleware has already
    validated exactly these arguments in this request, its values are used instead.

    Example:
        ```python
        from fastmcp import FastMCP
        from ctxfy.adapters.mcp_prompts import SpecPrompt
        from ctxfy.prompts import PRP

        mcp = FastMCP("mine")
        mcp.add_prompt(SpecPrompt.from_spec(PRP))
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: PromptSpec = Field(exclude=True)
    blocks: dict[str, str] = Field(default_factory=dict, exclude=True)

    @classmethod
    def from_spec(cls, spec: PromptSpec, blocks: Mapping[str, str] | None = None) -> "SpecPrompt":
        """Build the prompt for ``spec``.

        Args:
            spec: The core declaration.
            blocks: Trusted literal blocks for ``{{> name}}`` placeholders.
        """
        return cls(
            name=spec.name,
            title=spec.title or None,
            description=spec.description,
            arguments=[
                PromptArgument(
                    name=p.name, description=_argument_description(p), required=p.required
                )
                for p in spec.params
            ],
            tags={"ctxfy", "builtin" if spec.source == "builtin" else "user"},
            spec=spec,
            blocks=dict(blocks or {}),
        )

    async def render(self, arguments: dict[str, Any] | None = None) -> PromptResult:
        """Validate ``arguments`` and render the prompt as one user message."""
        result = validate_once(self.spec, self.spec.params, arguments)
        if not result.ok:
            raise invalid_params(result.errors)
        text = render_prompt(self.spec, result.values, self.blocks)
        return PromptResult(text, description=self.spec.description)


def register_prompts(
    mcp: FastMCP[Any], catalog: PromptCatalog, blocks: Mapping[str, str] | None = None
) -> None:
    """Add every prompt of ``catalog`` to ``mcp``, with one schema resource per prompt.

    Args:
        mcp: The server.
        catalog: The prompts.
        blocks: Trusted literal blocks for ``{{> name}}`` placeholders.
    """
    for spec in catalog:
        mcp.add_prompt(SpecPrompt.from_spec(spec, blocks))
        mcp.add_resource(
            TextResource(
                uri=SCHEMA_URI.format(name=spec.name),  # type: ignore[arg-type]
                name=f"{spec.name}-schema",
                description=f"JSON Schema of the arguments of the {spec.name!r} prompt.",
                mime_type="application/schema+json",
                text=json.dumps(spec.arguments_schema(), indent=2, ensure_ascii=False),
                tags={"ctxfy"},
            )
        )
