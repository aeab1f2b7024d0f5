"""API-key authentication as a native FastMCP ``TokenVerifier``, plus ``X-API-Key``.

Revocation bound: the verifier caches each key's *record* (not the verdict) for at most
``cache_ttl`` seconds (default and maximum 5). A key revoked, rotated out or expired on
any replica is refused everywhere within that bound; expiry itself is exact because the
rule is evaluated on every request against the current time.

Fail closed: when the key store cannot be reached, a request that presents a key gets
``503`` (with ``Retry-After``), never access. ``last_used_at`` is written at most once
per ``touch_interval`` per key and process, so there is no store write per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from fastmcp.server.auth import AccessToken, TokenVerifier
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from starlette.authentication import AuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.adapters.key_admin import Clock, system_clock
from ctxfy.adapters.problems import problem_response
from ctxfy.adapters.request_context import note_key_id
from ctxfy.core.errors import KeyStoreUnavailableError, MalformedKeyError
from ctxfy.core.keys import ApiKey, KeyRecord, KeyStore, check_key

__all__ = ["MAX_CACHE_TTL", "ApiKeyHeaderMiddleware", "ApiKeyVerifier", "KeyStoreUnreachable"]

#: Upper bound of the record cache, hence of revocation delay across replicas.
MAX_CACHE_TTL = 5.0
_MAX_CACHED = 10_000
_WWW_AUTHENTICATE = 'Bearer realm="ctxfy"'


class KeyStoreUnreachable(AuthenticationError):
    """Raised inside authentication when the key store fails; answered with 503."""


def _auth_error_response(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    if isinstance(exc, KeyStoreUnreachable):
        return problem_response(
            503, "the API key store is unavailable; try again shortly", headers={"Retry-After": "5"}
        )
    return problem_response(
        401, "missing or invalid API key", headers={"WWW-Authenticate": _WWW_AUTHENTICATE}
    )


class ApiKeyVerifier(TokenVerifier):
    """Verifies ``ctxfy_<key_id>_<secret>`` keys against a key store.

    The resulting ``AccessToken`` has ``client_id`` = key id, ``scopes`` with inclusion
    expanded (an ``admin`` key carries ``read``, ``write`` and ``admin``), ``token`` =
    the *redacted* key (the secret never sits in request state), and ``claims`` with
    ``name``, ``scope`` and ``rate_limit``. Its ``get_middleware()`` also installs
    :class:`ApiKeyHeaderMiddleware`, so ``X-API-Key`` works wherever FastMCP adds auth.

    Args:
        store: The key store.
        audit: Receives ``auth.failed`` (with the real reason) and
            ``auth.store_unavailable``.
        clock: Current UTC time, for expiry and grace checks.
        cache_ttl: Seconds a fetched record is reused (0 disables; at most 5).
        touch_interval: Minimum seconds between ``last_used_at`` writes per key.
        base_url: Public URL of the server, passed to FastMCP's ``TokenVerifier``.
        monotonic: Monotonic seconds source (tests replace it).

    Example:
        ```python
        from fastmcp import FastMCP

        store = open_key_store("sqlite:///var/lib/ctxfy/ctxfy.db")
        mcp = FastMCP("my-server", auth=ApiKeyVerifier(store))
        mcp.run(transport="http")  # clients send Authorization: Bearer or X-API-Key
        ```
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        audit: AuditLog | None = None,
        clock: Clock = system_clock,
        cache_ttl: float = MAX_CACHE_TTL,
        touch_interval: float = 60.0,
        base_url: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= cache_ttl <= MAX_CACHE_TTL:
            raise ValueError(f"cache_ttl must be between 0 and {MAX_CACHE_TTL} seconds")
        super().__init__(base_url=base_url, required_scopes=["read"])
        self.store = store
        self._audit = audit if audit is not None else AuditLog()
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._touch_interval = touch_interval
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._touched: dict[str, float] = {}
        self._fetching: dict[str, asyncio.Future[KeyRecord | None]] = {}
        self._generation = 0

    def invalidate(self, key_id: str | None = None) -> None:
        """Forget one cached record, or all of them (after a local revoke, say)."""
        self._generation += 1  # a read in flight must not cache what it fetched
        if key_id is None:
            self._cache.clear()
            self._fetching.clear()
        else:
            self._cache.pop(key_id, None)
            self._fetching.pop(key_id, None)

    async def _record(self, key_id: str) -> KeyRecord | None:
        now = self._monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < self._cache_ttl:
            return cached[1]
        # One store read per key at a time: requests arriving while it runs share it (no
        # burst of identical reads when a busy key's entry expires, and a slow or locked
        # store holds each waiting request for one bounded read, not a queue of them).
        generation = self._generation
        fetch = self._fetching.get(key_id)
        if fetch is None:
            fetch = asyncio.ensure_future(self.store.get(key_id))
            self._fetching[key_id] = fetch
            fetch.add_done_callback(lambda done: self._fetched(key_id, done))
        record = await asyncio.shield(fetch)
        if self._cache_ttl > 0 and generation == self._generation:
            if key_id not in self._cache and len(self._cache) >= _MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key_id] = (now, record)
        return record

    def _fetched(self, key_id: str, fetch: asyncio.Future[KeyRecord | None]) -> None:
        if self._fetching.get(key_id) is fetch:
            del self._fetching[key_id]
        if not fetch.cancelled():
            fetch.exception()  # retrieved here too: every waiter may have gone away

    async def _touch(self, key_id: str) -> None:
        now = self._monotonic()
        last = self._touched.get(key_id)
        if last is not None and now - last < self._touch_interval:
            return
        if len(self._touched) >= _MAX_CACHED:
            self._touched.clear()
        self._touched[key_id] = now
        # Bookkeeping only: the request was already authorised by a fresh read.
        with contextlib.suppress(KeyStoreUnavailableError):
            await self.store.touch(key_id, self._clock())

    async def verify_token(self, token: str) -> AccessToken | None:
        """Return an access token for a valid key, ``None`` for any invalid one.

        Raises:
            KeyStoreUnreachable: The store failed (the middleware answers 503).
        """
        try:
            key = ApiKey.parse(token)
        except MalformedKeyError:
            self._audit.record(AuditEvent.AUTH_FAILED, outcome="denied", reason="malformed_key")
            return None
        try:
            record = await self._record(key.key_id)
        except KeyStoreUnavailableError as exc:
            self._audit.record(
                AuditEvent.AUTH_UNAVAILABLE,
                outcome="error",
                key_id=key.key_id,
                reason=type(exc).__name__,
            )
            raise KeyStoreUnreachable("key store unavailable") from exc
        verdict = check_key(record, key, self._clock())
        if verdict.record is None:
            self._audit.record(
                AuditEvent.AUTH_FAILED, outcome="denied", key_id=key.key_id, reason=verdict.reason
            )
            return None
        await self._touch(key.key_id)
        found = verdict.record
        # The request line reads the key id from here: the ASGI scope that gets the
        # authenticated user may be a copy (X-API-Key is mapped onto one).
        note_key_id(found.key_id)
        stops = found.stops_at()
        return AccessToken(
            token=key.redacted,
            client_id=found.key_id,
            scopes=list(found.scope.expanded()),
            expires_at=int(stops.timestamp()) if stops is not None else None,
            claims={"name": found.name, "scope": found.scope.value, "rate_limit": found.rate_limit},
        )

    def get_middleware(self) -> list[Any]:
        """ASGI middleware FastMCP installs: ``X-API-Key`` mapping, then bearer auth."""
        return [
            Middleware(ApiKeyHeaderMiddleware, audit=self._audit),
            Middleware(
                AuthenticationMiddleware,
                backend=BearerAuthBackend(self),
                on_error=_auth_error_response,
            ),
            Middleware(AuthContextMiddleware),
        ]


def _bearer(value: bytes) -> bytes | None:
    scheme, _, credentials = value.partition(b" ")
    return credentials.strip() if scheme.lower() == b"bearer" else None


class ApiKeyHeaderMiddleware:
    """Accepts ``X-API-Key: <key>`` by mapping it onto ``Authorization: Bearer <key>``.

    Refuses with 401 when the headers conflict: both present with different keys, or
    either header repeated. When a request carrying no credentials ends in 401, writes
    an ``auth.failed`` audit event with reason ``missing_credentials``.

    Args:
        app: The wrapped ASGI app.
        audit: Where refusals are recorded.

    Example:
        ```python
        app = mcp.http_app()  # with auth=ApiKeyVerifier(...), this is already installed
        app = ApiKeyHeaderMiddleware(other_app)  # standalone, in front of bearer auth
        ```
    """

    def __init__(self, app: ASGIApp, audit: AuditLog | None = None) -> None:
        self.app = app
        self._audit = audit if audit is not None else AuditLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Map or refuse the API-key headers, then call the wrapped app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        authorization = [v for k, v in headers if k == b"authorization"]
        api_keys = [v for k, v in headers if k == b"x-api-key"]
        if len(authorization) > 1 or len(api_keys) > 1:
            await self._refuse(scope, receive, send, "repeated_auth_header")
            return
        if api_keys:
            key = api_keys[0].strip()
            if authorization:
                if _bearer(authorization[0]) != key:
                    await self._refuse(scope, receive, send, "conflicting_auth_headers")
                    return
            else:
                headers = [(k, v) for k, v in headers if k != b"x-api-key"]
                headers.append((b"authorization", b"Bearer " + key))
                scope = {**scope, "headers": headers}
        if api_keys or (authorization and _bearer(authorization[0]) is not None):
            await self.app(scope, receive, send)  # the verifier audits what it refuses
            return
        reason = "unsupported_auth_scheme" if authorization else "missing_credentials"

        async def audit_refusal(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self._audit.record(
                    AuditEvent.AUTH_FAILED,
                    outcome="denied",
                    reason=reason,
                    path=str(scope.get("path", "")),
                )
            await send(message)

        await self.app(scope, receive, audit_refusal)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        self._audit.record(
            AuditEvent.AUTH_FAILED, outcome="denied", reason=reason, path=str(scope.get("path", ""))
        )
        response = problem_response(
            401,
            "send one API key, in either Authorization: Bearer or X-API-Key",
            headers={"WWW-Authenticate": _WWW_AUTHENTICATE},
        )
        await response(scope, receive, send)
