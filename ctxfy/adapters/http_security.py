"""HTTP hardening: security headers, Host/Origin checks, opt-in CORS.

Host and Origin validation against DNS rebinding is FastMCP's
``HostOriginGuardMiddleware``, switched on through ``http_app(host_origin_protection=,
allowed_hosts=, allowed_origins=)``; :func:`host_origin_options` maps ctxfy's settings
onto those arguments. A bad ``Origin`` gets 403, a bad ``Host`` 421.

FastMCP's guard checks nothing on a non-loopback bind without allow-lists, so
:class:`SameOriginMiddleware` adds the one check that never needs configuring: on the
MCP endpoint, a browser ``Origin`` must be the request's own host (or an allowed origin).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_SECURITY_HEADERS",
    "SameOriginMiddleware",
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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_parts(origin: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an ``Origin`` value (default port filled in), or ``None``."""
    try:
        parsed = urlsplit(origin.strip().rstrip("/").lower())
        port = parsed.port
    except ValueError:
        return None
    if not parsed.scheme or not parsed.hostname or parsed.path or parsed.query:
        return None
    return parsed.scheme, parsed.hostname, port or _DEFAULT_PORTS.get(parsed.scheme)


def _origin_text(scheme: str, host: str, port: int | str | None) -> str:
    """``scheme://host:port`` with an IPv6 host (or pattern) in brackets, as in a URL."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _origin_pattern(pattern: str) -> str:
    """An allow-list entry in the form :meth:`SameOriginMiddleware._accepts` matches.

    Both sides read ``scheme://host:port``, IPv6 hosts in brackets and the scheme's
    default port filled in. Entries ``urlsplit`` refuses, ``*`` wildcards in an IPv6
    address or a port (``http://[fd00::*]``, ``http://localhost:*``), are split by hand.
    """
    text = pattern.strip().rstrip("/").lower()
    parts = _origin_parts(text)
    if parts is not None:
        return _origin_text(*parts)
    scheme, separator, authority = text.partition("://")
    if not separator or not authority or "/" in authority:
        return text
    if authority.startswith("["):
        host, bracket, rest = authority.partition("]")
        host, port = f"{host}{bracket}", rest.removeprefix(":")
    else:
        host, _, port = authority.partition(":")
    return _origin_text(scheme, host, port or _DEFAULT_PORTS.get(scheme))


def _bracket_literal(pattern: str) -> str:
    """``pattern`` for ``fnmatch`` with IPv6 brackets matching themselves, not as a class."""
    return "".join(f"[{c}]" if c in "[]" else c for c in pattern)


def _allow_list_pattern(origin: str) -> str:
    """An ``allowed_origins`` entry as an ``fnmatch`` pattern over normalised origins."""
    return _bracket_literal(_origin_pattern(origin))


def _route_path(scope: Scope) -> str:
    """The request path relative to where the app is mounted (``root_path`` taken off).

    The same reading as Starlette's router (its ``get_route_path`` is not exported), so
    the guard sees ``/mcp`` for ``/ctxfy/mcp`` when the app is mounted under ``/ctxfy``.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and (path == root or path.startswith(f"{root}/")):
        return path[len(root) :] or "/"
    return path


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SameOriginMiddleware:
    """Refuses (403) MCP requests carrying an ``Origin`` from another site, on any bind.

    A browser sends ``Origin`` with every cross-site ``POST``; MCP clients that are not
    browsers send none and pass untouched. A present ``Origin`` is accepted when it
    matches ``allowed_origins`` (``CTXFY_ALLOWED_ORIGINS``, ``*`` wildcards), when its
    host and port are the request's ``Host`` (with no port in ``Host``, the origin must
    use its scheme's default port, as behind a TLS proxy), or when both are loopback
    names (a local inspector on another port). Everything else, ``Origin: null``
    included, gets ``403 Forbidden Origin``, as from FastMCP's own guard. The guard
    covers DNS rebinding and cross-site requests where FastMCP's checks nothing: on a
    non-loopback bind with no allow-lists.

    Args:
        app: The wrapped ASGI app.
        allowed_origins: Trusted browser origins, such as ``https://app.example.com`` or
            ``http://[fd00::5]:8000``; ``*`` matches any run of characters.
        paths: The MCP endpoint paths to guard (each also guards its sub-paths),
            relative to where the app is mounted.

    Example:
        ```python
        app = mcp.http_app(path="/mcp")
        app.add_middleware(SameOriginMiddleware, allowed_origins=["https://app.example.com"])
        ```
    """

    def __init__(
        self, app: ASGIApp, allowed_origins: Sequence[str] = (), paths: Sequence[str] = ("/mcp",)
    ) -> None:
        self.app = app
        self._allowed = tuple(_allow_list_pattern(origin) for origin in allowed_origins)
        self._paths = tuple(path.rstrip("/") for path in paths)

    def _guarded(self, path: str) -> bool:
        return any(path == p or path.startswith(f"{p}/") for p in self._paths)

    def _accepts(self, origin: str, host_header: str) -> bool:
        parts = _origin_parts(origin)
        if parts is None:
            return False
        scheme, host, port = parts
        normal = _origin_text(scheme, host, port)
        if any(fnmatchcase(normal, pattern) for pattern in self._allowed):
            return True
        try:
            request = urlsplit(f"//{host_header.strip().lower()}")
            request_host, request_port = request.hostname, request.port
        except ValueError:
            return False
        if request_host is None:
            return False
        if _is_loopback(host) and _is_loopback(request_host):
            return True
        expected_port = request_port if request_port is not None else _DEFAULT_PORTS.get(scheme)
        return host == request_host and port == expected_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 403 to a foreign ``Origin`` on the MCP paths; pass everything else on."""
        if scope["type"] == "http" and self._guarded(_route_path(scope)):
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._accepts(origin, headers.get("host", "")):
                response = PlainTextResponse("Forbidden Origin", status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def host_origin_options(
    allowed_hosts: Sequence[str] = (), allowed_origins: Sequence[str] = ()
) -> dict[str, Any]:
    """Keyword arguments for ``FastMCP.http_app`` that turn on Host/Origin validation.

    ``"auto"`` mode validates every request to a loopback-bound server, and every
    request once an allow-list is given. Empty lists mean "FastMCP's defaults"
    (loopback names plus the bound address). An origin with an IPv6 address
    (``http://[fd00::*]:8000``) is passed on with its brackets escaped: FastMCP
    matches with ``fnmatch``, which would read them as a character class and never
    match the address.

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
        "allowed_origins": [
            _allow_list_pattern(origin) if "[" in origin else origin for origin in allowed_origins
        ]
        or None,
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
