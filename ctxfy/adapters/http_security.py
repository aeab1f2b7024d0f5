"""HTTP hardening: security headers, Host/Origin checks (FastMCP's own), opt-in CORS.

Host and Origin validation against DNS rebinding is FastMCP's
``HostOriginGuardMiddleware``, switched on through ``http_app(host_origin_protection=,
allowed_hosts=, allowed_origins=)``; :func:`host_origin_options` maps ctxfy's settings
onto those arguments. A bad ``Origin`` gets 403, a bad ``Host`` 421.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_SECURITY_HEADERS",
    "SecurityHeadersMiddleware",
    "cors_middleware",
    "host_origin_options",
    "security_headers",
]

#: Headers added to every HTTP response that does not set them itself. The CSP suits
#: JSON APIs; a route serving HTML (``/docs``) sets its own ``Content-Security-Policy``.
DEFAULT_SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def security_headers(
    headers: Mapping[str, str] = DEFAULT_SECURITY_HEADERS, hsts_max_age: int | None = None
) -> dict[str, str]:
    """Return the headers :class:`SecurityHeadersMiddleware` adds (HSTS when asked for).

    Args:
        headers: The base headers (default :data:`DEFAULT_SECURITY_HEADERS`).
        hsts_max_age: When set, adds ``Strict-Transport-Security`` with this max-age.

    Example:
        >>> security_headers(hsts_max_age=3600)["Strict-Transport-Security"]
        'max-age=3600'
    """
    added = dict(headers)
    if hsts_max_age is not None:
        added["Strict-Transport-Security"] = f"max-age={hsts_max_age}"
    return added


class SecurityHeadersMiddleware:
    """Adds security headers to every HTTP response, keeping ones a route already set.

    Responses to requests that carried credentials (``Authorization`` or ``X-API-Key``)
    also get ``no-store`` added to their ``Cache-Control``.

    Args:
        app: The wrapped ASGI app.
        headers: Headers to add (default :data:`DEFAULT_SECURITY_HEADERS`).
        hsts_max_age: When set, adds ``Strict-Transport-Security`` (only behind TLS).

    Example:
        ```python
        app = mcp.http_app(middleware=[Middleware(SecurityHeadersMiddleware)])
        ```
    """

    def __init__(
        self,
        app: ASGIApp,
        headers: Mapping[str, str] = DEFAULT_SECURITY_HEADERS,
        hsts_max_age: int | None = None,
    ) -> None:
        self.app = app
        self._headers = security_headers(headers, hsts_max_age)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers when the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credentialed = any(k in _CREDENTIAL_HEADERS for k, _ in scope["headers"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self._headers.items():
                    headers.setdefault(name, value)
                cache = headers.get("Cache-Control", "")
                if credentialed and "no-store" not in cache:
                    headers["Cache-Control"] = f"{cache}, no-store" if cache else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def host_origin_options(
    allowed_hosts: Sequence[str] = (), allowed_origins: Sequence[str] = ()
) -> dict[str, Any]:
    """Keyword arguments for ``FastMCP.http_app`` that turn on Host/Origin validation.

    ``"auto"`` mode validates every request to a loopback-bound server, and every
    request once an allow-list is given. Empty lists mean "FastMCP's defaults"
    (loopback names plus the bound address).

    Args:
        allowed_hosts: ``CTXFY_ALLOWED_HOSTS``: extra ``Host`` values (``*`` wildcards).
        allowed_origins: ``CTXFY_ALLOWED_ORIGINS``: trusted browser origins.

    Returns:
        ``host_origin_protection``, ``allowed_hosts`` and ``allowed_origins``.

    Example:
        ```python
        app = mcp.http_app(**host_origin_options(["mcp.example.com"], []))
        ```
    """
    return {
        "host_origin_protection": "auto",
        "allowed_hosts": list(allowed_hosts) or None,
        "allowed_origins": list(allowed_origins) or None,
    }


def cors_middleware(origins: Sequence[str]) -> Middleware | None:
    """Starlette CORS for the given origins, or ``None`` (CORS off) when there are none.

    Allows the headers MCP and ctxfy clients send and exposes the session and
    rate-limit headers. Credentials (cookies) are never allowed: keys travel in headers.

    Example:
        ```python
        extra = [m for m in [cors_middleware(settings.cors_origins)] if m is not None]
        ```
    """
    if not origins:
        return None
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "X-API-Key",
            "Content-Type",
            "Mcp-Session-Id",
            "MCP-Protocol-Version",
            "Last-Event-ID",
        ],
        expose_headers=[
            "Mcp-Session-Id",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        ],
        allow_credentials=False,
        max_age=600,
    )
