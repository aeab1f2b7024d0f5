"""Per-key rate limits on the ``limits`` library, for MCP and REST.

Strategy: **moving window** (``limits.aio.strategies.MovingWindowRateLimiter``). It
counts the requests of the last full period exactly, so there is no burst of twice the
limit at a window boundary as with fixed windows; refused requests are not counted.
Storage: ``memory://`` (one process; ``MovingWindowMemoryStorage``, O(1) per request) or
``redis://host:port/db`` (shared: replicas enforce one combined count). Any storage
failure refuses the request (fail closed) and writes a ``ratelimit.unavailable`` audit
event.
"""

from __future__ import annotations

import contextvars
import math
import time
from typing import TYPE_CHECKING, Any, cast

import limits
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.server.middleware.rate_limiting import RateLimitError
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from mcp import McpError
from mcp.shared.exceptions import UrlElicitationRequiredError
from mcp.types import ErrorData

from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.adapters.mcp_request_log import in_tool_cache_refresh
from ctxfy.adapters.ratelimit_memory import MovingWindowMemoryStorage
from ctxfy.adapters.redis_options import redis_client_options, require_redis
from ctxfy.core.access import RateLimitDecision
from ctxfy.core.errors import ConfigurationError, RateLimitUnavailableError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = [
    "ANONYMOUS",
    "RATE_LIMIT_DECISION",
    "KeyRateLimitMiddleware",
    "KeyRateLimiter",
    "RateLimitExceededMcpError",
    "RateLimitMcpError",
    "parse_rate",
    "rate_limit_headers",
]

#: Bucket shared by requests without an access token (auth off, in-memory client).
ANONYMOUS = "anonymous"
#: JSON-RPC code FastMCP's own rate limiter uses (implementation-defined server error).
RATE_LIMIT_CODE = -32000
_SCHEMES = {"memory": "async+memory", "redis": "async+redis", "rediss": "async+rediss"}

# Set while KeyRateLimitMiddleware hands a counted request on: calls the server makes
# meanwhile (a tool rendering a prompt) run in the same context and are not counted.
_IN_COUNTED_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ctxfy_in_counted_request", default=False
)

#: The decision :class:`KeyRateLimitMiddleware` made for the request being handled. A REST
#: route that dispatches into FastMCP (``mcp.render_prompt``) sets it to ``None``, awaits
#: the call, then reads it to send ``RateLimit-*`` headers: one count, same bucket as MCP.
RATE_LIMIT_DECISION: contextvars.ContextVar[RateLimitDecision | None] = contextvars.ContextVar(
    "ctxfy_rate_limit_decision", default=None
)


def _storage_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    scheme = scheme.removeprefix("async+")
    if not sep or scheme not in _SCHEMES:
        raise ConfigurationError(
            f"CTXFY_RATE_LIMIT_STORAGE: unsupported storage {scheme[:20]!r}; "
            "expected memory:// or redis://host:port/db"
        )
    return f"{_SCHEMES[scheme]}://{rest}"


def parse_rate(text: str, name: str) -> limits.RateLimitItem:
    """Parse one rate such as ``120/minute``, refusing what would not be enforced as written.

    ``limits`` reads ``10/minute;100/day`` as several rates, but a key or the default
    holds one: only the first part would count, so several are refused. A rate of zero
    would make a key that can never be used, so the amount must be at least 1.

    Args:
        text: The rate, ``<amount>/<period>`` (``120/minute``, ``10 per second``).
        name: What holds it (``CTXFY_RATE_LIMIT``, ``rate_limit``), named in errors.

    Returns:
        The parsed rate.

    Raises:
        ValueError: The text is not exactly one rate with an amount of at least 1; the
            message names ``name`` and the rule.

    Example:
        >>> parse_rate("10/minute", "rate_limit").amount
        10
    """
    shown = text[:40]
    try:
        items = limits.parse_many(text)
    except ValueError as exc:
        raise ValueError(f"{name}: {shown!r} is not a rate such as '120/minute'") from exc
    if len(items) != 1:
        raise ValueError(
            f"{name}: {shown!r} holds {len(items)} rates; give exactly one, such as '120/minute'"
        )
    if items[0].amount < 1:
        raise ValueError(f"{name}: {shown!r} allows no request; the amount must be at least 1")
    return items[0]


def _parse_rate(text: str, setting: str) -> limits.RateLimitItem:
    try:
        return parse_rate(text, setting)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


class KeyRateLimiter:
    """Counts requests per identity (a key id) against a default or per-key rate.

    Args:
        default: Rate for keys without an override (``CTXFY_RATE_LIMIT``), such as
            ``"120/minute"``.
        storage_url: ``memory://`` or ``redis://host:port/db``
            (``CTXFY_RATE_LIMIT_STORAGE``).
        audit: Receives ``ratelimit.blocked`` and ``ratelimit.unavailable``.
        timeout: Seconds for Redis connects and commands before failing closed.

    Raises:
        ConfigurationError: Bad rate or storage URL, or a ``redis://`` URL without the
            ``redis`` package (the message names the variable).

    Example:
        ```python
        limiter = KeyRateLimiter("120/minute", "redis://127.0.0.1:6379/1")
        mcp = FastMCP("my-server", middleware=[KeyRateLimitMiddleware(limiter)])
        ```
    """

    def __init__(
        self,
        default: str = "120/minute",
        storage_url: str = "memory://",
        *,
        audit: AuditLog | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.default = _parse_rate(default, "CTXFY_RATE_LIMIT")
        url = _storage_url(storage_url)
        options: dict[str, Any] = {"wrap_exceptions": True}
        #: The Redis connections are ours (not limits'), so that :meth:`aclose` can close them.
        self._pool: aioredis.ConnectionPool | None = None
        if "redis" in url:
            # Imported only now: redis is an optional extra (ctxfy[redis]).
            redis_asyncio = require_redis("CTXFY_RATE_LIMIT_STORAGE")
            self._pool = redis_asyncio.ConnectionPool.from_url(
                url.removeprefix("async+"), **redis_client_options(timeout)
            )
            options |= {"implementation": "redispy", "connection_pool": self._pool}
        if url.startswith("async+memory://"):
            # limits' own memory storage hands every hit to a worker thread (see
            # ratelimit_memory); this one keeps the same moving window on the event loop.
            self._storage: AsyncStorage = MovingWindowMemoryStorage()
        else:
            self._storage = cast("AsyncStorage", storage_from_string(url, **options))
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._overrides: dict[str, limits.RateLimitItem] = {}
        self._audit = audit if audit is not None else AuditLog()

    def _item(self, override: str | None) -> limits.RateLimitItem:
        if override is None:
            return self.default
        item = self._overrides.get(override)
        if item is None:
            try:
                item = limits.parse(override)
            except ValueError:
                item = self.default  # a bad stored override must not lift the limit
            self._overrides[override] = item
        return item

    async def hit(self, identity: str, override: str | None = None) -> RateLimitDecision:
        """Count one request for ``identity`` and say whether it may proceed.

        Args:
            identity: The key id (or :data:`ANONYMOUS`).
            override: The key's own rate, such as ``"10/minute"``; ``None`` for the default.

        Returns:
            The decision with limit, remaining and seconds to reset.

        Raises:
            RateLimitUnavailableError: The storage failed; the caller must refuse.
        """
        item = self._item(override)
        try:
            allowed = await self._limiter.hit(item, "ctxfy", identity)
            stats = await self._limiter.get_window_stats(item, "ctxfy", identity)
        except Exception as exc:  # any failure of the counter refuses: fail closed
            self._audit.record(
                AuditEvent.RATE_LIMIT_UNAVAILABLE,
                outcome="error",
                key_id=None if identity == ANONYMOUS else identity,
                reason=type(exc).__name__,
            )
            raise RateLimitUnavailableError("rate-limit storage unavailable") from exc
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        decision = RateLimitDecision(allowed, item.amount, max(0, stats.remaining), reset_after)
        if not allowed:
            self._audit.record(
                AuditEvent.RATE_LIMITED,
                outcome="denied",
                key_id=None if identity == ANONYMOUS else identity,
                reason=f"over {item.amount} per {item.get_expiry()} s",
                retry_after=decision.retry_after,
            )
        return decision

    async def aclose(self) -> None:
        """Close the Redis connections, if any (the server's lifespan calls this on exit)."""
        if self._pool is not None:
            await self._pool.aclose()

    async def ping(self) -> None:
        """Check the storage answers (for readiness).

        Raises:
            RateLimitUnavailableError: It does not.
        """
        try:
            ok = await self._storage.check()
        except Exception as exc:
            raise RateLimitUnavailableError("rate-limit storage unavailable") from exc
        if not ok:
            raise RateLimitUnavailableError("rate-limit storage unavailable")


def rate_limit_headers(decision: RateLimitDecision) -> dict[str, str]:
    """HTTP headers for a REST response: ``RateLimit-*``, plus ``Retry-After`` if refused.

    ``RateLimit-Reset`` is seconds until the window frees capacity (IETF draft
    semantics), not an epoch time.
    """
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_after),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after)
    return headers


class RateLimitMcpError(UrlElicitationRequiredError):
    """A JSON-RPC error refusing an MCP request for its rate limit, for every method.

    The MCP SDK's ``tools/call`` handler turns any exception raised while the call runs
    (FastMCP's middleware included) into a tool *result* with ``isError: true`` and only
    the message as text, so ``data`` (the retry time) would be lost. The single exception
    it re-raises, to be answered as a JSON-RPC error, is ``UrlElicitationRequiredError``;
    deriving from it is what lets a rate-limit refusal of ``tools/call`` reach the client
    as the same JSON-RPC error as for every other method. The error data is ours (code
    ``-32000``), not an elicitation request: clients see an ordinary server error.
    """

    def __init__(self, error: ErrorData) -> None:
        McpError.__init__(self, error)
        self._elicitations = []  # no elicitation: keep the inherited property working


class RateLimitExceededMcpError(RateLimitError, RateLimitMcpError):
    """JSON-RPC error ``-32000`` for a request over its limit; ``data`` has ``retry_after``."""

    def __init__(self, decision: RateLimitDecision) -> None:
        RateLimitMcpError.__init__(
            self,
            ErrorData(
                code=RATE_LIMIT_CODE,
                message=f"Rate limit exceeded; retry after {decision.retry_after} s",
                data={"retry_after": decision.retry_after, "limit": decision.limit},
            ),
        )


class KeyRateLimitMiddleware(Middleware):
    """Rate-limits every MCP request (not notifications) per API key.

    Over the limit, every method, ``tools/call`` included, gets the JSON-RPC error
    ``-32000`` with ``data.retry_after`` (see :class:`RateLimitMcpError`).

    The key comes from FastMCP's access token (``client_id``), its override from the
    token's ``rate_limit`` claim (set by :class:`~ctxfy.adapters.auth.ApiKeyVerifier`).
    Requests without a token share the :data:`ANONYMOUS` bucket.

    Args:
        limiter: The counter.

    Example:
        ```python
        mcp = FastMCP("my-server", auth=ApiKeyVerifier(store),
                      middleware=[KeyRateLimitMiddleware(KeyRateLimiter("60/minute"))])
        ```
    """

    def __init__(self, limiter: KeyRateLimiter) -> None:
        self.limiter = limiter

    async def on_request(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        """Count the request; raise a JSON-RPC error when over the limit."""
        if _IN_COUNTED_REQUEST.get() or (
            context.method == "tools/list" and in_tool_cache_refresh()
        ):
            # Not a request of its own: a call the server makes while handling a counted
            # request, or the MCP SDK listing tools (to refresh its cache) inside a
            # ``tools/call``, which is counted once, as itself.
            return await call_next(context)
        token = get_access_token()
        identity = token.client_id if token is not None else ANONYMOUS
        override = token.claims.get("rate_limit") if token is not None else None
        try:
            decision = await self.limiter.hit(
                identity, override if isinstance(override, str) else None
            )
        except RateLimitUnavailableError as exc:
            raise RateLimitMcpError(
                ErrorData(code=RATE_LIMIT_CODE, message="Rate limit unavailable; request refused")
            ) from exc
        RATE_LIMIT_DECISION.set(decision)
        if not decision.allowed:
            raise RateLimitExceededMcpError(decision)
        token_counted = _IN_COUNTED_REQUEST.set(True)
        try:
            return await call_next(context)
        finally:
            _IN_COUNTED_REQUEST.reset(token_counted)
