"""Translation of core errors into MCP (JSON-RPC) errors, at the edge."""

from fastmcp.tools import ToolResult
from mcp import McpError
from mcp.types import INVALID_PARAMS, ErrorData, TextContent

from ctxfy.core.params import FieldError


def invalid_params(errors: tuple[FieldError, ...]) -> McpError:
    """Return the JSON-RPC ``-32602`` error listing every argument problem.

    Args:
        errors: The problems, as found by the core validator.

    Returns:
        An :class:`McpError` whose ``data`` is ``{"errors": [{field, rule, message}, ...]}``.
    """
    summary = "; ".join(e.message for e in errors[:5])
    if len(errors) > 5:
        summary += f"; and {len(errors) - 5} more"
    return McpError(
        ErrorData(
            code=INVALID_PARAMS,
            message=f"Invalid arguments: {summary}",
            data={"errors": [e.to_dict() for e in errors]},
        )
    )


def invalid_tool_result(errors: tuple[FieldError, ...]) -> ToolResult:
    """Return the tool result reporting invalid arguments.

    Since MCP 2025-11-25 (SEP-1303) input validation errors of tools are *tool execution
    errors* (``isError: true``) so that the model can correct its call; the result carries
    the same error list as the prompts' ``-32602`` error, in ``structuredContent``.
    """
    return ToolResult(
        content=[TextContent(type="text", text=invalid_params(errors).error.message)],
        structured_content={
            "error": "invalid_arguments",
            "errors": [e.to_dict() for e in errors],
        },
        is_error=True,
    )
