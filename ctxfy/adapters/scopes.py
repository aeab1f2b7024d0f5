"""Scope enforcement for MCP components through FastMCP's own ``AuthMiddleware``.

Scope map: components tagged ``"llm"`` need ``write``, components tagged ``"admin"``
need ``admin``, everything else needs ``read``. Components a key may not use are
hidden from its list results, and a call, read or render of one answers exactly as for a
component that does not exist: FastMCP's own "Unknown tool/prompt/resource" error
(``-32002`` for a resource), so over MCP a key cannot learn what exists beyond its scope.
The REST façade is more open by design: it answers ``403 insufficient_scope`` for an
existing operation above the key's scope, and ``/openapi.json`` lists every operation with
the scope it needs.

With **no access token** the check lets everything through: that happens only where
no HTTP authentication runs (the in-memory ``Client(server)``, stdio, or
``CTXFY_AUTH=off`` on loopback). Over HTTP with :class:`~ctxfy.adapters.auth.ApiKeyVerifier`
every ``/mcp`` request has a token, because FastMCP answers 401 before MCP sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import mcp.types as mt
from fastmcp import FastMCP
from fastmcp.exceptions import AuthorizationError, NotFoundError
from fastmcp.prompts.base import Prompt, PromptResult
from fastmcp.resources.base import ResourceResult
from fastmcp.server.auth import AuthContext
from fastmcp.server.auth.authorization import run_auth_checks
from fastmcp.server.context import Context, _current_transport
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import AuthMiddleware, CallNext, MiddlewareContext
from fastmcp.tools.base import Tool, ToolResult
from fastmcp.utilities.components import FastMCPComponent
from fastmcp.utilities.versions import VersionSpec
from loguru import logger

from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.adapters.component_lookup import find_prompt, find_tool, requested_version
from ctxfy.core.keys import Scope

__all__ = ["DEFAULT_TAG_SCOPES", "ScopeAuthMiddleware", "ScopeCheck"]

#: ctxfy's scope map: tag → scope needed; untagged components need ``read``.
DEFAULT_TAG_SCOPES: Mapping[str, Scope] = {"llm": Scope.WRITE, "admin": Scope.ADMIN}

_C = TypeVar("_C", Prompt, Tool)
_NamedParams = TypeVar("_NamedParams", mt.GetPromptRequestParams, mt.CallToolRequestParams)
_Finder = Callable[[FastMCP[Any], Context | None, str, VersionSpec | None], Awaitable[_C | None]]


class ScopeCheck:
    """A FastMCP auth check (``AuthCheck``) applying a tag → scope map.

    Args:
        tag_scopes: Scope required by components carrying a tag; the highest applies
            when a component has several.
        default: Scope required by every other component.

    Example:
        ```python
        @mcp.tool(auth=ScopeCheck(default=Scope.WRITE))
        def draft(...): ...
        ```
    """

    def __init__(
        self,
        tag_scopes: Mapping[str, Scope] = DEFAULT_TAG_SCOPES,
        default: Scope = Scope.READ,
    ) -> None:
        self._tag_scopes = dict(tag_scopes)
        self._default = default

    def required(self, component: FastMCPComponent) -> Scope:
        """The scope a component needs."""
        needed = [self._tag_scopes[t] for t in component.tags if t in self._tag_scopes]
        return max([self._default, *needed])

    def __call__(self, ctx: AuthContext) -> bool:
        """Allow when there is no token (no HTTP auth) or the token has the scope."""
        if ctx.token is None:
            return True
        return self.required(ctx.component).value in ctx.token.scopes


class ScopeAuthMiddleware(AuthMiddleware):
    """``AuthMiddleware`` with :class:`ScopeCheck`, auditing refused calls.

    List results are filtered silently; a refused call, read or prompt render writes an
    ``auth.scope_denied`` audit event naming the key id and the scope needed.

    Calls, reads and renders are checked with the steps of FastMCP's own
    ``AuthMiddleware`` (no check over stdio; refused when the request has no FastMCP
    context), with one difference: a component that is missing and one the key may not
    use get the same answer, FastMCP's own not-found error, where ``AuthMiddleware``
    answers "not found or not authorized" for one and "insufficient permissions" for the
    other (which tells a caller that the component exists). Prompts and tools are looked
    up through :mod:`~ctxfy.adapters.component_lookup`, so the other ctxfy layers of the
    same request reuse the lookup instead of repeating it.

    Args:
        check: The scope rule (ctxfy's default map when omitted).
        audit: Where refusals are recorded.

    Example:
        ```python
        mcp = FastMCP("my-server", auth=ApiKeyVerifier(store),
                      middleware=[ScopeAuthMiddleware()])

        @mcp.tool(tags={"llm"})  # needs a write key
        async def draft(ctx: Context) -> str: ...
        ```
    """

    def __init__(self, check: ScopeCheck | None = None, audit: AuditLog | None = None) -> None:
        self.check = check if check is not None else ScopeCheck()
        super().__init__(auth=self.check)
        self._audit = audit if audit is not None else AuditLog()

    async def _denied(self, component: FastMCPComponent, kind: str, name: str) -> None:
        token = get_access_token()
        if token is None:
            return  # no key: nothing to attribute the refusal to
        self._audit.record(
            AuditEvent.SCOPE_DENIED,
            outcome="denied",
            key_id=token.client_id,
            reason=f"requires {self.check.required(component).value}",
            component=f"{kind}:{name}",
        )

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        """Refuse tools the key's scope does not cover."""
        if _current_transport.get() != "stdio":
            tool = await self._find(context, find_tool, "tool", context.message.name)
            await self._authorize(tool, "tool", context.message.name)
        return await call_next(context)

    async def on_get_prompt(
        self,
        context: MiddlewareContext[mt.GetPromptRequestParams],
        call_next: CallNext[mt.GetPromptRequestParams, PromptResult],
    ) -> PromptResult:
        """Refuse prompts the key's scope does not cover."""
        if _current_transport.get() != "stdio":
            prompt = await self._find(context, find_prompt, "prompt", context.message.name)
            await self._authorize(prompt, "prompt", context.message.name)
        return await call_next(context)

    @staticmethod
    async def _find(
        context: MiddlewareContext[_NamedParams],
        find: _Finder[_C],
        kind: str,
        name: str,
    ) -> _C:
        # The same steps as FastMCP's AuthMiddleware (whose stdio test, on the private
        # ``_current_transport``, the hooks above repeat), through the request's memo.
        fastmcp = context.fastmcp_context
        if fastmcp is None:
            logger.warning(
                "ScopeAuthMiddleware: fastmcp_context is None for {} {!r}; denying access",
                kind,
                name,
            )
            raise AuthorizationError(f"Authorization failed for {kind} '{name}': missing context")
        version = requested_version(context.message.meta)
        component = await find(fastmcp.fastmcp, fastmcp, name, version)
        if component is None:
            raise _unknown(kind, name)
        return component

    async def _authorize(self, component: FastMCPComponent, kind: str, name: str) -> None:
        ctx = AuthContext(token=get_access_token(), component=component)
        try:
            allowed = await run_auth_checks(self.auth, ctx)
        except AuthorizationError:
            allowed = False
        if not allowed:
            await self._denied(component, kind, name)
            # The same answer as for a missing component: existence is not disclosed.
            raise _unknown(kind, name)

    async def on_read_resource(
        self,
        context: MiddlewareContext[mt.ReadResourceRequestParams],
        call_next: CallNext[mt.ReadResourceRequestParams, ResourceResult],
    ) -> ResourceResult:
        """Refuse resources the key's scope does not cover."""
        if _current_transport.get() == "stdio":
            return await call_next(context)
        uri = str(context.message.uri)
        fastmcp = context.fastmcp_context
        if fastmcp is None:
            logger.warning(
                "ScopeAuthMiddleware: fastmcp_context is None for resource {!r}; denying access",
                uri,
            )
            raise AuthorizationError(f"Authorization failed for resource '{uri}': missing context")
        version = requested_version(context.message.meta)
        server = fastmcp.fastmcp
        component: FastMCPComponent | None = await server.get_resource(uri, version=version)
        if component is None:
            component = await server.get_resource_template(uri, version=version)
        if component is None:
            raise _unknown("resource", uri)
        await self._authorize(component, "resource", uri)
        return await call_next(context)


def _unknown(kind: str, name: str) -> NotFoundError:
    """FastMCP's own error for a missing component (FastMCP maps a resource's to -32002)."""
    return NotFoundError(f"Unknown {kind}: {name!r}")
