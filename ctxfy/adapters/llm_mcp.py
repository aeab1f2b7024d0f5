"""LLM port adapters reached through MCP: the client's own LLM via ``ctx.sample_step``."""

from typing import Any

from fastmcp import Context
from mcp import McpError
from mcp.types import ClientCapabilities, SamplingCapability, SamplingMessage, TextContent

from ctxfy.core.errors import LLMResponseError, LLMUnavailableError
from ctxfy.core.llm import Completion, CompletionRequest, LLMPort

#: What a user sees when no LLM can be reached; it says how to fix it.
NO_LLM_MESSAGE = (
    "No LLM is available for this request: the MCP client does not support sampling (or the "
    "server runs in stateless HTTP mode, where it cannot reach the client's LLM), and no "
    "server-side fallback is configured. Set CTXFY_LLM_BASE_URL (an OpenAI-compatible "
    "/v1 endpoint) and CTXFY_LLM_MODEL, and CTXFY_LLM_API_KEY if the server needs one."
)


class ClientSampling:
    """The MCP client's LLM, reached with ``ctx.sample_step`` (MCP sampling).

    Example:
        ```python
        @mcp.tool
        async def summarise(text: str, ctx: Context) -> str:
            llm = ClientSampling(ctx)
            answer = await llm.complete(CompletionRequest((ChatMessage("user", text),)))
            return answer.text
        ```
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def complete(self, request: CompletionRequest) -> Completion:
        """Ask the client's LLM; see :class:`~ctxfy.core.llm.LLMPort`."""
        messages = [
            SamplingMessage(role=m.role, content=TextContent(type="text", text=m.text))
            for m in request.messages
        ]
        try:
            step = await self._ctx.sample_step(
                messages,
                system_prompt=request.system_prompt,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
            )
        except McpError as exc:
            raise LLMResponseError(f"the client's LLM returned an error: {exc}") from exc
        except ValueError as exc:
            # FastMCP raises ValueError("Client does not support sampling").
            raise LLMUnavailableError(NO_LLM_MESSAGE) from exc
        text = step.text
        if text is None:
            raise LLMResponseError("the client's LLM answered without any text")
        return Completion(text=text, model=step.response.model or "unknown")


def client_can_sample(ctx: Context) -> bool:
    """Return whether the connected MCP client declared the sampling capability."""
    try:
        session: Any = ctx.session
    except RuntimeError:
        return False
    capability = ClientCapabilities(sampling=SamplingCapability())
    return bool(session.check_client_capability(capability))


def choose_llm(ctx: Context | None, fallback: LLMPort | None) -> LLMPort:
    """Pick the LLM for a request: the client's when it can sample, else the fallback.

    Args:
        ctx: The request's MCP context (``None`` outside MCP, e.g. on REST routes).
        fallback: The server-side LLM, if configured.

    Returns:
        The port to use.

    Raises:
        LLMUnavailableError: Neither is available; the message says how to configure one.
    """
    if ctx is not None and client_can_sample(ctx):
        return ClientSampling(ctx)
    if fallback is not None:
        return fallback
    raise LLMUnavailableError(NO_LLM_MESSAGE)
