"""Tool declarations: name, typed parameters, result schema, and whether it needs an LLM."""

import re
from collections.abc import Mapping

import attrs

from ctxfy.core.params import ParamSpec, arguments_schema

_TOOL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@attrs.frozen
class ToolSpec:
    """The declaration of a tool.

    Attributes:
        name: The MCP tool name (part of the public contract for built-ins).
        description: What the tool does.
        params: The typed parameters.
        needs_llm: Whether the tool calls an LLM (such tools need the ``write`` scope and
            either a client that can sample or the server-side fallback).
        output_schema: JSON Schema (an ``object``) of the tool's structured result, which
            MCP clients receive as ``outputSchema`` and check results against.
    """

    name: str = attrs.field(validator=attrs.validators.matches_re(_TOOL_NAME_RE))
    description: str
    params: tuple[ParamSpec, ...]
    needs_llm: bool = False
    output_schema: Mapping[str, object] | None = attrs.field(default=None, eq=False)

    def arguments_schema(self) -> dict[str, object]:
        """Return the JSON Schema of this tool's arguments object."""
        return arguments_schema(self.params)
