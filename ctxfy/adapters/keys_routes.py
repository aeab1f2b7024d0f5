"""REST key management under ``/v1/keys`` for ``admin`` keys.

``GET /v1/keys`` lists keys; ``POST /v1/keys`` creates one (``{"name", "scope",
"expires_in"?, "rate_limit"?}``, answer 201 with the key shown once); ``POST
/v1/keys/{key_id}/revoke`` revokes; ``POST /v1/keys/{key_id}/rotate`` (``{"grace"?:
"15m"}``) issues a successor. Stored hashes are never returned. Errors are
``application/problem+json``: 400 bad JSON, 404 unknown key, 409 wrong state, 413 body
too large, 422 invalid request, 503 key store unavailable.

A body field that is not one of those listed is refused (422), never ignored: a typo
such as ``"expires"`` or ``"grce"`` would otherwise create a key that never expires or
rotate with no grace. A 422 lists every problem in ``errors`` (``{field, rule,
message}``), the same shape as the REST API's argument errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from fastmcp import FastMCP
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctxfy.adapters.audit import AuditLog
from ctxfy.adapters.auth import ApiKeyVerifier
from ctxfy.adapters.key_admin import KeyAdmin, describe_key
from ctxfy.adapters.problems import problem_response
from ctxfy.adapters.ratelimit import KeyRateLimiter, parse_rate
from ctxfy.adapters.rest_errors import invalid_arguments
from ctxfy.adapters.rest_guard import Handler, RequireScope
from ctxfy.core.charpolicy import FieldError
from ctxfy.core.durations import parse_duration
from ctxfy.core.errors import (
    CtxfyError,
    InvalidDurationError,
    KeyNotFoundError,
    KeyRequestError,
    KeyStateError,
    KeyStoreUnavailableError,
)
from ctxfy.core.keys import Scope

__all__ = ["key_routes", "register_key_routes"]

_MAX_BODY = 16_384
_NO_STORE = {"Cache-Control": "no-store"}
_CREATE_FIELDS = ("name", "scope", "expires_in", "rate_limit")
_ROTATE_FIELDS = ("grace",)
_T = TypeVar("_T")


class _BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _MAX_BODY:
        raise _BadRequest(413, f"request body larger than {_MAX_BODY} bytes")
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise _BadRequest(413, f"request body larger than {_MAX_BODY} bytes")
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(400, "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise _BadRequest(400, "request body must be a JSON object")
    return data


class _InvalidFields(Exception):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = tuple(errors)


class _BodyFields:
    """Reads a request body's fields, collecting every problem before answering."""

    def __init__(self, data: dict[str, Any], allowed: Sequence[str]) -> None:
        self._data = data
        listed = ", ".join(allowed)
        self.errors: list[FieldError] = []
        for name in sorted(set(data) - set(allowed)):
            shown = name if len(name) <= 64 else name[:64] + "…"
            self.errors.append(
                FieldError(shown, "unknown", f"{shown!r} is not a field here; allowed: {listed}")
            )

    def text(self, field: str, *, required: bool = False) -> str | None:
        value = self._data.get(field)
        if value is None:
            if required:
                self.errors.append(FieldError(field, "required", f"{field}: required"))
            return None
        if not isinstance(value, str):
            self.errors.append(FieldError(field, "type", f"{field}: must be a string"))
            return None
        return value

    def parsed(
        self, field: str, parse: Callable[[str], _T], *, required: bool = False
    ) -> _T | None:
        text = self.text(field, required=required)
        if text is None:
            return None
        try:
            return parse(text)
        except (CtxfyError, ValueError) as exc:
            message = str(exc)
            if not message.startswith(f"{field}:"):
                message = f"{field}: {message}"
            self.errors.append(FieldError(field, "format", message))
            return None

    def check(self) -> None:
        if self.errors:
            raise _InvalidFields(self.errors)


def _checked_rate(text: str) -> str:
    """``text`` when it is one enforceable rate (``10/minute``); else ``ValueError``."""
    parse_rate(text, "rate_limit")
    return text


def _actor(request: Request) -> str | None:
    """The key id of the admin key making this request (``None`` with auth off)."""
    user = request.scope.get("user")
    return user.access_token.client_id if isinstance(user, AuthenticatedUser) else None


def _guarded(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except _BadRequest as exc:
            return problem_response(exc.status, exc.detail)
        except _InvalidFields as exc:
            return invalid_arguments(exc.errors)
        except KeyNotFoundError as exc:
            return problem_response(404, str(exc))
        except KeyStateError as exc:
            return problem_response(409, str(exc))
        except (KeyRequestError, InvalidDurationError, ValueError) as exc:
            return problem_response(422, str(exc))
        except KeyStoreUnavailableError:
            return problem_response(
                503, "the API key store is unavailable", headers={"Retry-After": "5"}
            )

    return endpoint


def key_routes(
    admin: KeyAdmin,
    *,
    verifier: ApiKeyVerifier | None = None,
    limiter: KeyRateLimiter | None = None,
    audit: AuditLog | None = None,
    prefix: str = "/v1/keys",
) -> list[Route]:
    """Build the ``/v1/keys`` routes, each requiring an ``admin`` key.

    Args:
        admin: Key operations.
        verifier: When given, its cache forgets a key revoked or rotated here, so this
            replica refuses it at once (others within the cache TTL).
        limiter: Per-key rate limit for these routes.
        audit: Receives scope denials (key events come from ``admin``).
        prefix: Mount path.

    Returns:
        Starlette routes with plain request handlers, for ``Starlette(routes=...)`` or
        :func:`register_key_routes`.

    Example:
        ```python
        app = Starlette(routes=key_routes(KeyAdmin(store), verifier=verifier),
                        middleware=verifier.get_middleware())
        ```
    """

    async def list_keys(request: Request) -> Response:
        now = admin.clock()
        keys = [describe_key(r, now) for r in await admin.list_keys()]
        return JSONResponse({"keys": keys}, headers=_NO_STORE)

    async def create(request: Request) -> Response:
        fields = _BodyFields(await _json_body(request), _CREATE_FIELDS)
        name = fields.text("name", required=True)
        scope = fields.parsed("scope", Scope.parse, required=True)
        expires_in = fields.parsed("expires_in", parse_duration)
        rate_limit = fields.parsed("rate_limit", _checked_rate)
        if fields.errors or name is None or scope is None:  # a missing one is in errors
            raise _InvalidFields(fields.errors)
        issued = await admin.create(
            name=name,
            scope=scope,
            expires_in=expires_in,
            rate_limit=rate_limit,
            actor_key_id=_actor(request),
        )
        return JSONResponse(issued.as_json(), status_code=201, headers=_NO_STORE)

    async def revoke(request: Request) -> Response:
        key_id = request.path_params["key_id"]
        record = await admin.revoke(key_id, actor_key_id=_actor(request))
        if verifier is not None:
            verifier.invalidate(key_id)
        return JSONResponse(describe_key(record, admin.clock()), headers=_NO_STORE)

    async def rotate(request: Request) -> Response:
        key_id = request.path_params["key_id"]
        fields = _BodyFields(await _json_body(request), _ROTATE_FIELDS)
        grace = fields.parsed("grace", lambda text: parse_duration(text, allow_zero=True))
        fields.check()
        issued = await admin.rotate(
            key_id, grace=grace or timedelta(0), actor_key_id=_actor(request)
        )
        if verifier is not None:
            verifier.invalidate(key_id)
        return JSONResponse(
            {**issued.as_json(), "replaces": key_id}, status_code=201, headers=_NO_STORE
        )

    guard = RequireScope(Scope.ADMIN, limiter=limiter, audit=audit)

    return [
        Route(prefix, guard(_guarded(list_keys)), methods=["GET"]),
        Route(prefix, guard(_guarded(create)), methods=["POST"]),
        Route(f"{prefix}/{{key_id}}/revoke", guard(_guarded(revoke)), methods=["POST"]),
        Route(f"{prefix}/{{key_id}}/rotate", guard(_guarded(rotate)), methods=["POST"]),
    ]


def register_key_routes(
    mcp: FastMCP[Any],
    admin: KeyAdmin,
    *,
    verifier: ApiKeyVerifier | None = None,
    limiter: KeyRateLimiter | None = None,
    audit: AuditLog | None = None,
    prefix: str = "/v1/keys",
) -> None:
    """Add the :func:`key_routes` to a FastMCP server as custom routes.

    Example:
        ```python
        mcp = FastMCP("my-server", auth=verifier)
        register_key_routes(mcp, KeyAdmin(store), verifier=verifier)
        ```
    """
    for route in key_routes(admin, verifier=verifier, limiter=limiter, audit=audit, prefix=prefix):
        methods = sorted((route.methods or set()) - {"HEAD"})
        mcp.custom_route(route.path, methods=methods)(route.endpoint)
