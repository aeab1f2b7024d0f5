"""The composition root: the only module that knows every layer.

:func:`build_server` maps :class:`~ctxfy.settings.Settings` onto adapters and returns a
configured :class:`fastmcp.FastMCP` without starting anything; :func:`build_http_app` wraps
it for HTTP. Every port can be replaced by keyword argument, which is how the tests (and
embedding projects) pass fakes.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastmcp import FastMCP
from fastmcp.resources import TextResource
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from ctxfy.__about__ import __version__
from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.adapters.auth import ApiKeyVerifier
from ctxfy.adapters.body_limit import BodyLimitMiddleware
from ctxfy.adapters.health import ReadinessCheck, add_health_routes
from ctxfy.adapters.health_fastpath import LivenessProbeMiddleware
from ctxfy.adapters.http_request_log import RequestContextMiddleware
from ctxfy.adapters.http_security import (
    SameOriginMiddleware,
    SecurityHeadersMiddleware,
    cors_middleware,
    host_origin_options,
)
from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keys_routes import register_key_routes
from ctxfy.adapters.keystores import open_key_store
from ctxfy.adapters.llm_openai import OpenAICompatibleLLM
from ctxfy.adapters.mcp_prompts import register_prompts
from ctxfy.adapters.mcp_request_log import RequestLogMiddleware
from ctxfy.adapters.mcp_tools import GenerateContextStackTool, LintContextStackTool
from ctxfy.adapters.metrics import PrometheusMetrics, build_prometheus_metrics
from ctxfy.adapters.prompt_files import load_prompt_dir
from ctxfy.adapters.ratelimit import KeyRateLimiter, KeyRateLimitMiddleware
from ctxfy.adapters.rest_errors import routing_problems
from ctxfy.adapters.rest_facade import register_rest_api
from ctxfy.adapters.rest_guard import RequireScope
from ctxfy.adapters.scopes import ScopeAuthMiddleware
from ctxfy.adapters.validation import OnFlag, RequestValidationMiddleware
from ctxfy.core.catalog import PromptCatalog
from ctxfy.core.injection import InjectionFinding
from ctxfy.core.keys import KeyStore, Scope
from ctxfy.core.llm import LLMPort
from ctxfy.core.markdown import render_context_stack
from ctxfy.core.stack_schema import blank_context_stack
from ctxfy.core.telemetry import MetricsRecorder
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


def _recorder(metrics: PrometheusMetrics | MetricsRecorder) -> MetricsRecorder:
    return metrics.recorder if isinstance(metrics, PrometheusMetrics) else metrics


def build_server(
    settings: Settings | None = None,
    *,
    catalog: PromptCatalog | None = None,
    llm_fallback: LLMPort | None = None,
    key_store: KeyStore | None = None,
    metrics: PrometheusMetrics | MetricsRecorder | None = None,
    audit: AuditLog | None = None,
    readiness_checks: dict[str, ReadinessCheck] | None = None,
) -> FastMCP[Any]:
    """Assemble ctxfy's MCP server.

    Args:
        settings: The configuration; defaults to ``Settings()`` (nothing read from the
            environment: the entry point calls :meth:`Settings.from_env`).
        catalog: The prompts; defaults to the built-ins plus ``settings.prompts_dir``.
        llm_fallback: The server-side LLM; defaults to the one ``settings`` configures.
        key_store: The API-key store; defaults to ``settings.key_store_url`` (only opened
            when ``settings.auth`` is on).
        metrics: Where metrics go. A :class:`PrometheusMetrics` also serves ``/metrics``;
            any other recorder (e.g. ``ctxfy.testing.RecordingMetrics``) only records.
            Defaults to a new Prometheus registry.
        audit: The audit log; defaults to one writing through loguru.
        readiness_checks: Extra named checks for ``/ready``.

    Returns:
        The configured server, not yet running.

    Raises:
        ConfigurationError: A prompt file, the rate limit or the key store URL is invalid.

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
    if metrics is None:
        metrics = build_prometheus_metrics()
    recorder = _recorder(metrics)
    audit = audit or AuditLog(metrics=recorder)
    limiter = KeyRateLimiter(settings.rate_limit, settings.rate_limit_storage, audit=audit)
    store: KeyStore | None = None
    verifier: ApiKeyVerifier | None = None
    if settings.auth:
        store = key_store or open_key_store(settings.key_store_url)
        verifier = ApiKeyVerifier(store, audit=audit)

    @contextlib.asynccontextmanager
    async def lifespan(_server: FastMCP[Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {}
        finally:
            await limiter.aclose()
            if store is not None:
                await store.aclose()

    mcp: FastMCP[Any] = FastMCP(
        name="ctxfy",
        version=__version__,
        instructions=INSTRUCTIONS,
        auth=verifier,
        lifespan=lifespan,
    )
    # First in, last out: the request log times and sees the outcome of everything after it.
    mcp.add_middleware(RequestLogMiddleware(metrics=recorder, log_arguments=settings.log_arguments))
    mcp.add_middleware(KeyRateLimitMiddleware(limiter))
    mcp.add_middleware(ScopeAuthMiddleware(audit=audit))
    mcp.add_middleware(
        RequestValidationMiddleware(
            injection_policy=settings.injection_policy,
            metrics=recorder,
            on_flag=_audit_injection(audit, settings.injection_policy),
        )
    )

    _add_components(mcp, catalog, settings, llm_fallback, recorder)
    if store is not None and verifier is not None:
        admin = KeyAdmin(store, audit=audit, max_ttl=settings.key_max_ttl)
        register_key_routes(mcp, admin, verifier=verifier, limiter=limiter, audit=audit)
    register_rest_api(
        mcp,
        limiter=limiter,
        audit=audit,
        auth=settings.auth,
        docs_public=settings.docs_public,
        metrics_public=settings.metrics_public,
        mcp_path=settings.mcp_path,
        metrics=recorder,
        max_body_bytes=settings.max_body_bytes,
    )
    if isinstance(metrics, PrometheusMetrics):
        guard = None
        if settings.auth and not settings.metrics_public:
            guard = RequireScope(Scope.READ, limiter=limiter, audit=audit)
        mcp.custom_route("/metrics", methods=["GET"])(
            guard(metrics.endpoint) if guard else metrics.endpoint
        )

    async def prompt_catalog_loaded() -> None:
        # Without the middleware: a probe must not spend a rate-limit hit (nor fail when
        # the rate-limit storage is down: that has its own check).
        if not await mcp.list_prompts(run_middleware=False):
            raise RuntimeError("no prompt is registered")

    checks: dict[str, ReadinessCheck] = {"prompt_catalog": prompt_catalog_loaded}
    if store is not None:
        checks["key_store"] = store.ping
    checks["rate_limit_storage"] = limiter.ping
    if llm_fallback is not None:
        checks["llm_fallback"] = _configured
    checks.update(readiness_checks or {})
    add_health_routes(mcp, checks)
    return mcp


def _add_components(
    mcp: FastMCP[Any],
    catalog: PromptCatalog,
    settings: Settings,
    llm_fallback: LLMPort | None,
    recorder: MetricsRecorder,
) -> None:
    """Add the prompts, the resources and the tools."""
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
            metrics=recorder,
        )
    )


def _audit_injection(audit: AuditLog, policy: str) -> OnFlag:
    def on_flag(finding: InjectionFinding, target: str) -> None:
        # The excerpt is attacker-controlled text: the audit line names the pattern only.
        audit.record(
            AuditEvent.INJECTION_FLAGGED,
            outcome="denied" if policy == "reject" else "served",
            reason=finding.pattern,
            target=target,
            field=finding.field,
        )

    return on_flag


async def _configured() -> None:
    # The fallback is checked for configuration only: calling the LLM from a probe that
    # runs every few seconds would cost money and couple readiness to a third party.
    return None


def build_http_app(
    mcp: FastMCP[Any],
    settings: Settings,
    *,
    metrics: PrometheusMetrics | MetricsRecorder | None = None,
) -> Starlette:
    """Return the ASGI application serving ``mcp`` over streamable HTTP.

    Layers, outermost first: the liveness fast path (plain ``GET /health`` probes are
    answered there; left out when ``settings.log_health_checks`` asks for the full
    treatment), request context (request id, one log line per HTTP request, HTTP metrics),
    security headers, request-body limits (413, 408), the same-origin guard on the MCP
    endpoint, CORS (only when configured), FastMCP's Host/Origin validation and API-key
    authentication, then the routes. Starlette's own 404 and 405 answers under ``/v1``
    are problems, like the REST routes' answers.

    Args:
        mcp: A server from :func:`build_server`.
        settings: The configuration (path, stateless mode, JSON responses, allow-lists,
            body limits).
        metrics: The recorder for HTTP metrics: pass the one given to :func:`build_server`.
    """
    cors = cors_middleware(settings.cors_origins)
    app = mcp.http_app(
        path=settings.mcp_path,
        stateless_http=settings.stateless_http,
        json_response=settings.json_response,
        middleware=[cors] if cors is not None else None,
        **host_origin_options(
            settings.allowed_hosts, [*settings.allowed_origins, *settings.cors_origins]
        ),
    )
    recorder = _recorder(metrics) if metrics is not None else None
    # Unknown paths and wrong methods under /v1 answer problem+json like the REST routes.
    app.add_exception_handler(HTTPException, routing_problems())
    # A foreign Origin on /mcp gets 403 on any bind, allow-lists or not.
    app.add_middleware(
        SameOriginMiddleware,
        allowed_origins=[*settings.allowed_origins, *settings.cors_origins],
        paths=[settings.mcp_path],
    )
    # 413 / 408 before anything reads the body
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts_max_age=settings.hsts_max_age)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=recorder,
        mcp_path=settings.mcp_path,
        quiet_paths=() if settings.log_health_checks else ("/health", "/ready"),
    )
    if not settings.log_health_checks:
        app.add_middleware(
            LivenessProbeMiddleware, metrics=recorder, hsts_max_age=settings.hsts_max_age
        )
    return app
