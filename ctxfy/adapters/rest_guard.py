"""Scope and rate-limit guard for REST routes (custom routes are outside MCP auth).

FastMCP's bearer middleware authenticates every HTTP request app-wide, but only the
``/mcp`` route *requires* a token. :class:`RequireScope` decorates a REST endpoint so it
requires one too: 401 (with ``WWW-Authenticate``) without a valid key, 403 when the
key's scope is too low, 429 with ``Retry-After`` and ``RateLimit-*`` headers when over
its rate (successful answers carry the ``RateLimit-*`` headers too). Errors are
``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.requests import Request
from starlette.responses import Response

from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.adapters.problems import problem_response
from ctxfy.adapters.ratelimit import ANONYMOUS, KeyRateLimiter, rate_limit_headers
from ctxfy.core.errors import RateLimitUnavailableError
from ctxfy.core.keys import Scope

__all__ = ["Handler", "RequireScope"]

Handler = Callable[[Request], Awaitable[Response]]
_REALM = 'Bearer realm="ctxfy"'


class RequireScope:
    """Decorator: the endpoint needs an API key with at least ``scope``, under its rate.

    Args:
        scope: The scope needed.
        limiter: When given, each request counts against the key's rate limit.
        audit: Receives ``auth.scope_denied``.
        allow_anonymous: Let requests without a token through (only for servers that run
            with authentication off on loopback); they share one rate bucket.

    Example:
        ```python
        @mcp.custom_route("/v1/things", methods=["GET"])
        @RequireScope(Scope.READ, limiter=limiter)
        async def list_things(request: Request) -> Response: ...
        ```
    """

    def __init__(
        self,
        scope: Scope,
        *,
        limiter: KeyRateLimiter | None = None,
        audit: AuditLog | None = None,
        allow_anonymous: bool = False,
    ) -> None:
        self.scope = scope
        self._limiter = limiter
        self._audit = audit if audit is not None else AuditLog()
        self._allow_anonymous = allow_anonymous

    def __call__(self, handler: Handler) -> Handler:
        """Wrap ``handler`` with the checks."""

        async def endpoint(request: Request) -> Response:
            refusal, headers = await self.admit(request)
            if refusal is not None:
                return refusal
            response = await handler(request)
            response.headers.update(headers)
            return response

        endpoint.__name__ = getattr(handler, "__name__", "endpoint")
        endpoint.__doc__ = handler.__doc__
        return endpoint

    async def admit(self, request: Request) -> tuple[Response | None, dict[str, str]]:
        """Check one request.

        Returns:
            ``(refusal, headers)``: a problem response to send instead of the endpoint's
            answer, or ``None`` plus the ``RateLimit-*`` headers to add to it.
        """
        user = request.scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            if not self._allow_anonymous:
                headers = {"WWW-Authenticate": _REALM}
                return problem_response(401, "missing or invalid API key", headers=headers), {}
            return await self._limit(ANONYMOUS, None)
        token = user.access_token
        if self.scope.value not in token.scopes:
            self._audit.record(
                AuditEvent.SCOPE_DENIED,
                outcome="denied",
                key_id=token.client_id,
                reason=f"requires {self.scope.value}",
                path=request.url.path,
            )
            headers = {"WWW-Authenticate": f'{_REALM}, error="insufficient_scope"'}
            detail = f"this API key lacks the '{self.scope.value}' scope"
            return problem_response(403, detail, headers=headers), {}
        claims = getattr(token, "claims", None) or {}
        override = claims.get("rate_limit")
        return await self._limit(token.client_id, override if isinstance(override, str) else None)

    async def _limit(
        self, identity: str, override: str | None
    ) -> tuple[Response | None, dict[str, str]]:
        if self._limiter is None:
            return None, {}
        try:
            decision = await self._limiter.hit(identity, override)
        except RateLimitUnavailableError:
            detail = "rate limiting is unavailable; request refused"
            return problem_response(503, detail, headers={"Retry-After": "5"}), {}
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            detail = f"rate limit exceeded; retry after {decision.retry_after} s"
            return problem_response(429, detail, headers=headers), {}
        return None, headers
