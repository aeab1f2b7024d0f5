"""Built-in prompts and their typed argument schemas.

Other projects can validate arguments against ctxfy's prompts in their own tests::

    from ctxfy.prompts import CONTEXT_STACK, prompt_schema

    schema = prompt_schema("context_stack")   # JSON Schema of the arguments object
    assert "objective" in schema["required"]
"""

from typing import Any

from ctxfy.core.catalog import PromptCatalog
from ctxfy.core.markdown import render_context_stack
from ctxfy.core.prompt import PromptSpec
from ctxfy.core.stack_schema import (
    blank_context_stack,
)
from ctxfy.prompts.builtin import CONTEXT_STACK, PRP, TECHNICAL_SPEC

__all__ = [
    "BUILTIN_PROMPTS",
    "CONTEXT_STACK",
    "PRP",
    "TECHNICAL_SPEC",
    "builtin_blocks",
    "builtin_catalog",
    "prompt_schema",
]

#: The built-in prompts, in the order clients list them.
BUILTIN_PROMPTS: tuple[PromptSpec, ...] = (CONTEXT_STACK, PRP, TECHNICAL_SPEC)


def builtin_catalog() -> PromptCatalog:
    """Return a catalog of the built-in prompts."""
    return PromptCatalog(BUILTIN_PROMPTS)


def builtin_blocks() -> dict[str, str]:
    """Return the trusted literal blocks templates may include with ``{{> name}}``."""
    return {"context_stack_skeleton": render_context_stack(blank_context_stack())}


def prompt_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema of the arguments of built-in prompt ``name``.

    Raises:
        KeyError: When no built-in prompt has that name.
    """
    for spec in BUILTIN_PROMPTS:
        if spec.name == name:
            return spec.arguments_schema()
    raise KeyError(name)
