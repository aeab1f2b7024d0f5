"""One call that adds the REST façade, ``/openapi.json`` and ``/docs`` to a FastMCP server."""

from typing import Any

from fastmcp import FastMCP
from starlette.requests import Request

from ctxfy.adapters.audit import AuditLog
from ctxfy.adapters.body_limit import DEFAULT_MAX_BODY_BYTES
from ctxfy.adapters.docs_ui import register_docs
from ctxfy.adapters.openapi import server_openapi
from ctxfy.adapters.ratelimit import KeyRateLimiter
from ctxfy.adapters.rest_api import RestApi
from ctxfy.adapters.rest_guard import RequireScope
from ctxfy.adapters.scopes import ScopeCheck
from ctxfy.core.keys import Scope
from ctxfy.core.telemetry import MetricsRecorder

__all__ = ["register_rest_api"]


def register_rest_api(
    mcp: FastMCP[Any],
    *,
    limiter: KeyRateLimiter | None = None,
    audit: AuditLog | None = None,
    auth: bool = True,
    docs_public: bool = True,
    metrics_public: bool = True,
    mcp_path: str = "/mcp",
    scope_check: ScopeCheck | None = None,
    prefix: str = "/v1",
    metrics: MetricsRecorder | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> RestApi:
    """Add ``/v1/prompts``, ``/v1/tools``, ``/openapi.json`` and ``/docs`` to ``mcp``.

    Args:
        mcp: The server, with its auth and middleware (the routes dispatch into it).
        limiter: The rate limiter of the server's ``KeyRateLimitMiddleware``.
        audit: Receives scope denials.
        auth: Whether API keys are required; ``False`` serves anonymous requests (only
            for a server running with authentication off on loopback).
        docs_public: Serve ``/openapi.json`` without a key; otherwise it needs a ``read``
            key (``/docs`` then asks for one).
        metrics_public: Whether ``/metrics`` (served by the caller) needs no key; the
            document then describes it as open, else as needing a ``read`` key.
        mcp_path: Where the MCP endpoint is mounted, for the document.
        scope_check: The tag → scope rule (the one of ``ScopeAuthMiddleware``).
        prefix: Mount path of the REST façade.
        metrics: Where REST calls record their operation metric and validation refusals.
        max_body_bytes: Largest accepted REST body (the server's ``CTXFY_MAX_BODY_BYTES``).

    Returns:
        The façade, whose routes are now registered.

    Example:
        ```python
        mcp = FastMCP("mine", auth=verifier,
                      middleware=[KeyRateLimitMiddleware(limiter), ScopeAuthMiddleware()])
        register_rest_api(mcp, limiter=limiter, docs_public=True)
        ```
    """
    api = RestApi(
        mcp,
        limiter=limiter,
        audit=audit,
        allow_anonymous=not auth,
        scope_check=scope_check,
        prefix=prefix,
        metrics=metrics,
        max_body_bytes=max_body_bytes,
    )
    for route in api.routes():
        methods = sorted((route.methods or set()) - {"HEAD"})
        mcp.custom_route(route.path, methods=methods)(route.endpoint)

    async def spec(request: Request) -> dict[str, Any]:
        present = {path for route in request.app.routes if (path := getattr(route, "path", None))}
        return await server_openapi(
            mcp,
            scope_check=scope_check,
            title=mcp.name,
            version=mcp.version or "0",
            auth=auth,
            docs_public=docs_public,
            metrics_public=metrics_public,
            mcp_path=mcp_path,
            present=present,
            prefix=prefix,
        )

    guard = None
    if auth and not docs_public:
        guard = RequireScope(Scope.READ, limiter=limiter, audit=audit)
    register_docs(mcp, spec, guard=guard, title=mcp.name)
    return api
