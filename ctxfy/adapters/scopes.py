"""Scope enforcement for MCP components through FastMCP's own ``AuthMiddleware``.

Scope map: components tagged ``"llm"`` need ``write``, components tagged ``"admin"``
need ``admin``, everything else needs ``read``. Components a key may not use are
hidden from its list results, and calls to them fail with FastMCP's "not found or not
authorized" error.

With **no access token** the check lets everything through: that happens only where
no HTTP authentication runs (the in-memory ``Client(server)``, stdio, or
``CTXFY_AUTH=off`` on loopback). Over HTTP with :class:`~ctxfy.adapters.auth.ApiKeyVerifier`
every ``/mcp`` request has a token, because FastMCP answers 401 before MCP sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mcp.types as mt
from fastmcp.exceptions import AuthorizationError
from fastmcp.prompts.base import PromptResult
from fastmcp.resources.base import ResourceResult
from fastmcp.server.auth import AuthContext
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import AuthMiddleware, CallNext, MiddlewareContext
from fastmcp.tools.base import ToolResult
from fastmcp.utilities.components import FastMCPComponent

from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.core.keys import Scope

__all__ = ["DEFAULT_TAG_SCOPES", "ScopeAuthMiddleware", "ScopeCheck"]

#: ctxfy's scope map: tag → scope needed; untagged components need ``read``.
DEFAULT_TAG_SCOPES: Mapping[str, Scope] = {"llm": Scope.WRITE, "admin": Scope.ADMIN}


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

    async def _denied(self, component: FastMCPComponent | None, kind: str, name: str) -> None:
        token = get_access_token()
        if component is None or token is None:
            return  # unknown component: not a scope decision
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
        try:
            return await super().on_call_tool(context, call_next)
        except AuthorizationError:
            server = context.fastmcp_context
            name = context.message.name
            tool = await server.fastmcp.get_tool(name) if server is not None else None
            await self._denied(tool, "tool", name)
            raise

    async def on_get_prompt(
        self,
        context: MiddlewareContext[mt.GetPromptRequestParams],
        call_next: CallNext[mt.GetPromptRequestParams, PromptResult],
    ) -> PromptResult:
        """Refuse prompts the key's scope does not cover."""
        try:
            return await super().on_get_prompt(context, call_next)
        except AuthorizationError:
            server = context.fastmcp_context
            name = context.message.name
            prompt = await server.fastmcp.get_prompt(name) if server is not None else None
            await self._denied(prompt, "prompt", name)
            raise

    async def on_read_resource(
        self,
        context: MiddlewareContext[mt.ReadResourceRequestParams],
        call_next: CallNext[mt.ReadResourceRequestParams, ResourceResult],
    ) -> ResourceResult:
        """Refuse resources the key's scope does not cover."""
        try:
            return await super().on_read_resource(context, call_next)
        except AuthorizationError:
            server = context.fastmcp_context
            uri = str(context.message.uri)
            found: Sequence[FastMCPComponent | None] = ()
            if server is not None:
                found = (
                    await server.fastmcp.get_resource(uri),
                    await server.fastmcp.get_resource_template(uri),
                )
            await self._denied(next((c for c in found if c is not None), None), "resource", uri)
            raise
