"""ctxfy: a context-engineering MCP server and a production kit for any FastMCP server.

The public API is what ``__all__`` lists; everything else may change without notice::

    from ctxfy import Settings, build_server

    mcp = build_server(Settings.from_env(os.environ))
"""

from ctxfy.__about__ import __version__
from ctxfy.core.catalog import PromptCatalog
from ctxfy.core.errors import (
    ConfigurationError,
    ContextStackParseError,
    CtxfyError,
    DraftRejectedError,
    InvalidArgumentsError,
    LLMError,
    LLMResponseError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from ctxfy.core.lint import Finding, LintReport, Severity, lint_context_stack, lint_markdown
from ctxfy.core.llm import ChatMessage, Completion, CompletionRequest, LLMPort
from ctxfy.core.markdown import parse_context_stack, render_context_stack
from ctxfy.core.params import FieldError, ParamSpec, ParamType, validate_arguments
from ctxfy.core.prompt import PromptSpec, render_prompt
from ctxfy.core.stack import ContextStack, Field, Layer, LayerKind, Section
from ctxfy.server import build_server
from ctxfy.settings import Settings

__all__ = [
    "ChatMessage",
    "Completion",
    "CompletionRequest",
    "ConfigurationError",
    "ContextStack",
    "ContextStackParseError",
    "CtxfyError",
    "DraftRejectedError",
    "Field",
    "FieldError",
    "Finding",
    "InvalidArgumentsError",
    "LLMError",
    "LLMPort",
    "LLMResponseError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "Layer",
    "LayerKind",
    "LintReport",
    "ParamSpec",
    "ParamType",
    "PromptCatalog",
    "PromptSpec",
    "Section",
    "Settings",
    "Severity",
    "__version__",
    "build_server",
    "lint_context_stack",
    "lint_markdown",
    "parse_context_stack",
    "render_context_stack",
    "render_prompt",
    "validate_arguments",
]
