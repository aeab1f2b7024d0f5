"""REST key management under ``/v1/keys`` for ``admin`` keys.

``GET /v1/keys`` lists keys; ``POST /v1/keys`` creates one (``{"name", "scope",
"expires_in"?, "rate_limit"?}``, answer 201 with the key shown once); ``POST
/v1/keys/{key_id}/revoke`` revokes; ``POST /v1/keys/{key_id}/rotate`` (``{"grace"?:
"15m"}``) issues a successor. Stored hashes are never returned. Errors are
``application/problem+json``: 400 bad JSON, 404 unknown key, 409 wrong state, 413 body
too large, 422 invalid request, 503 key store unavailable.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctxfy.adapters.audit import AuditLog
from ctxfy.adapters.auth import ApiKeyVerifier
from ctxfy.adapters.key_admin import KeyAdmin, describe_key
from ctxfy.adapters.problems import problem_response
from ctxfy.adapters.ratelimit import KeyRateLimiter
from ctxfy.adapters.rest_guard import Handler, RequireScope
from ctxfy.core.durations import parse_duration
from ctxfy.core.errors import (
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


def _text(data: dict[str, Any], field: str, *, required: bool = False) -> str | None:
    value = data.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _BadRequest(422, f"{field}: must be a string")
    return value


def _guarded(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except _BadRequest as exc:
            return problem_response(exc.status, exc.detail)
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
        data = await _json_body(request)
        name = _text(data, "name", required=True) or ""
        scope = Scope.parse(_text(data, "scope", required=True) or "")
        expires = _text(data, "expires_in")
        issued = await admin.create(
            name=name,
            scope=scope,
            expires_in=parse_duration(expires) if expires is not None else None,
            rate_limit=_text(data, "rate_limit"),
        )
        return JSONResponse(issued.as_json(), status_code=201, headers=_NO_STORE)

    async def revoke(request: Request) -> Response:
        key_id = request.path_params["key_id"]
        record = await admin.revoke(key_id)
        if verifier is not None:
            verifier.invalidate(key_id)
        return JSONResponse(describe_key(record, admin.clock()), headers=_NO_STORE)

    async def rotate(request: Request) -> Response:
        key_id = request.path_params["key_id"]
        grace_text = _text(await _json_body(request), "grace")
        grace = parse_duration(grace_text, allow_zero=True) if grace_text else timedelta(0)
        issued = await admin.rotate(key_id, grace=grace)
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
