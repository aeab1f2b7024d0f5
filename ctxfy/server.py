"""The composition root: the only module that knows every layer.

:func:`build_server` maps :class:`~ctxfy.settings.Settings` onto adapters and returns a
configured :class:`fastmcp.FastMCP` without starting anything. Every port can be replaced
by keyword argument, which is how the tests (and embedding projects) pass fakes.
"""

from typing import Any

from fastmcp import FastMCP
from fastmcp.resources import TextResource
from starlette.applications import Starlette

from ctxfy.__about__ import __version__
from ctxfy.adapters.health import ReadinessCheck, add_health_routes
from ctxfy.adapters.llm_openai import OpenAICompatibleLLM
from ctxfy.adapters.mcp_prompts import register_prompts
from ctxfy.adapters.mcp_tools import GenerateContextStackTool, LintContextStackTool
from ctxfy.adapters.prompt_files import load_prompt_dir
from ctxfy.adapters.validation import RequestValidationMiddleware
from ctxfy.core.catalog import PromptCatalog
from ctxfy.core.llm import LLMPort
from ctxfy.core.markdown import render_context_stack
from ctxfy.core.stack_schema import (
    blank_context_stack,
)
from ctxfy.prompts import builtin_blocks, builtin_catalog
from ctxfy.settings import Settings

TEMPLATE_URI = "ctxfy://templates/context-stack"

INSTRUCTIONS = (
    "ctxfy turns a task or business requirement into a context stack: a structured prompt "
    "with System, Domain, Task, Interaction and Response layers. Use the context_stack, prp "
    "and technical_spec prompts to ask your model for one; call generate_context_stack to "
    "have it drafted and checked, and lint_context_stack to check a stack you already have."
)


def load_catalog(settings: Settings) -> PromptCatalog:
    """Return the built-in prompts plus the user's prompt files, if configured.

    Raises:
        ConfigurationError: A prompt file is malformed or a name is taken twice.
    """
    catalog = builtin_catalog()
    if settings.prompts_dir is not None:
        catalog = catalog.extended(load_prompt_dir(settings.prompts_dir))
    return catalog


def build_llm_fallback(settings: Settings) -> LLMPort | None:
    """Return the server-side LLM fallback when ``CTXFY_LLM_*`` configure one."""
    if settings.llm_base_url is None or settings.llm_model is None:
        return None
    return OpenAICompatibleLLM(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key.value if settings.llm_api_key else None,
        timeout_s=settings.llm_timeout_s,
    )


def build_server(
    settings: Settings | None = None,
    *,
    catalog: PromptCatalog | None = None,
    llm_fallback: LLMPort | None = None,
    readiness_checks: dict[str, ReadinessCheck] | None = None,
) -> FastMCP[Any]:
    """Assemble ctxfy's MCP server.

    Args:
        settings: The configuration; defaults to ``Settings()`` (nothing read from the
            environment: the entry point calls :meth:`Settings.from_env`).
        catalog: The prompts; defaults to the built-ins plus ``settings.prompts_dir``.
        llm_fallback: The server-side LLM; defaults to the one ``settings`` configures.
        readiness_checks: Extra named checks for ``/ready``.

    Returns:
        The configured server, not yet running.

    Raises:
        ConfigurationError: A prompt file is malformed.

    Example:
        ```python
        from ctxfy import Settings, build_server

        mcp = build_server(Settings(prompts_dir=Path("prompts")))
        mcp.run(transport="stdio")
        ```
    """
    settings = settings or Settings()
    catalog = catalog if catalog is not None else load_catalog(settings)
    if llm_fallback is None:
        llm_fallback = build_llm_fallback(settings)

    mcp: FastMCP[Any] = FastMCP(name="ctxfy", version=__version__, instructions=INSTRUCTIONS)
    mcp.add_middleware(RequestValidationMiddleware())
    register_prompts(mcp, catalog, builtin_blocks())
    mcp.add_resource(
        TextResource(
            uri=TEMPLATE_URI,  # type: ignore[arg-type]
            name="context-stack-template",
            description="The blank context stack, with a {{placeholder}} for every field.",
            mime_type="text/markdown",
            text=render_context_stack(blank_context_stack()),
            tags={"ctxfy"},
        )
    )
    mcp.add_tool(LintContextStackTool.create())
    mcp.add_tool(
        GenerateContextStackTool.create(
            fallback=llm_fallback,
            timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
        )
    )

    async def prompt_catalog_loaded() -> None:
        if not await mcp.list_prompts():
            raise RuntimeError("no prompt is registered")

    checks: dict[str, ReadinessCheck] = {"prompt_catalog": prompt_catalog_loaded}
    checks.update(readiness_checks or {})
    add_health_routes(mcp, checks)
    return mcp


def build_http_app(mcp: FastMCP[Any], settings: Settings) -> Starlette:
    """Return the ASGI application serving ``mcp`` over streamable HTTP.

    Args:
        mcp: A server from :func:`build_server`.
        settings: The configuration (MCP path, stateless mode, JSON responses).
    """
    return mcp.http_app(
        path=settings.mcp_path,
        stateless_http=settings.stateless_http,
        json_response=settings.json_response,
    )
