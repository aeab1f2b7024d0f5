"""Security headers and opt-in CORS on a plain Starlette app; Origin checks on ``/mcp``."""

from typing import Any

import httpx
from fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ctxfy.adapters.http_security import (
    SameOriginMiddleware,
    SecurityHeadersMiddleware,
    cors_middleware,
    host_origin_options,
)
from tests.integration.access_support import serve_app


async def data(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def page(request: Request) -> Response:
    return Response("<html></html>", headers={"Content-Security-Policy": "default-src 'self'"})


def app_with(*middleware: Middleware) -> Starlette:
    return Starlette(routes=[Route("/data", data), Route("/docs", page)], middleware=middleware)


async def test_headers_are_added_without_overriding_a_route_policy() -> None:
    app = app_with(Middleware(SecurityHeadersMiddleware, hsts_max_age=3600))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        plain = await http.get("/data")
        keyed = await http.get("/data", headers={"X-API-Key": "anything"})
        docs = await http.get("/docs")
    assert plain.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert plain.headers["strict-transport-security"] == "max-age=3600"
    assert "cache-control" not in plain.headers
    assert keyed.headers["cache-control"] == "no-store"
    assert docs.headers["content-security-policy"] == "default-src 'self'"
    assert docs.headers["x-frame-options"] == "DENY"


async def test_cors_is_off_unless_origins_are_configured() -> None:
    assert cors_middleware([]) is None
    cors = cors_middleware(["https://app.example"])
    assert cors is not None
    app = app_with(cors)
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        allowed = await http.options("/data", headers=preflight)
        foreign = await http.options("/data", headers={**preflight, "Origin": "https://evil.test"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    assert "access-control-allow-origin" not in foreign.headers


def test_host_origin_options_turn_on_fastmcp_guard() -> None:
    assert host_origin_options() == {
        "host_origin_protection": "auto",
        "allowed_hosts": None,
        "allowed_origins": None,
    }
    options = host_origin_options(["mcp.example.com"], ["https://app.example"])
    assert options["allowed_hosts"] == ["mcp.example.com"]
    assert options["allowed_origins"] == ["https://app.example"]


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def arriving_on(address: str, app: ASGIApp) -> ASGIApp:
    """Make every request look as if it reached the server on ``address`` (its bind)."""

    async def shim(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "server": (address, scope["server"][1])}
        await app(scope, receive, send)

    return shim


def guarded_mcp_app(
    allowed_origins: list[str], allowed_hosts: list[str] | None = None
) -> Starlette:
    """The MCP app with both guards, wired as ``ctxfy.server.http_app`` wires them."""
    mcp: FastMCP[Any] = FastMCP("origin-test")

    @mcp.tool
    def ping() -> str:
        return "pong"

    app = mcp.http_app(path="/mcp", **host_origin_options(allowed_hosts or [], allowed_origins))
    app.add_middleware(SameOriginMiddleware, allowed_origins=allowed_origins, paths=["/mcp"])
    return app


async def origin_statuses(
    bind: str,
    allowed_origins: list[str],
    cases: list[dict[str, str]],
    *,
    allowed_hosts: list[str] | None = None,
    prefix: str = "",
) -> list[int]:
    """POST ``initialize`` with each case's headers; ``prefix`` mounts the app under it."""
    app = guarded_mcp_app(allowed_origins, allowed_hosts)
    if prefix:
        app = Starlette(routes=[Mount(prefix, app=app)], lifespan=app.router.lifespan_context)
    async with (
        serve_app(arriving_on(bind, app)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        statuses = []
        for headers in cases:
            response = await http.post(
                f"{prefix}/mcp",
                json=INITIALIZE,
                headers={"Accept": "application/json, text/event-stream", **headers},
            )
            statuses.append(response.status_code)
        return statuses


async def test_a_foreign_origin_is_refused_on_a_public_bind_without_allow_lists() -> None:
    host = {"Host": "mcp.example.com"}
    statuses = await origin_statuses(
        "10.0.0.5",
        [],
        [
            {**host, "Origin": "http://evil.example"},
            {**host, "Origin": "null"},
            {**host, "Origin": "http://mcp.example.com:8080"},
            {**host, "Origin": "http://mcp.example.com.evil.example"},
            host,  # no Origin: a non-browser client
            {**host, "Origin": "http://mcp.example.com"},  # same origin
            {**host, "Origin": "https://mcp.example.com"},  # same site behind a TLS proxy
            {"Host": "mcp.example.com:8080", "Origin": "http://mcp.example.com:8080"},
        ],
    )
    assert statuses == [403, 403, 403, 403, 200, 200, 200, 200]


async def test_allowed_origins_are_accepted_on_a_public_bind() -> None:
    host = {"Host": "mcp.example.com"}
    statuses = await origin_statuses(
        "10.0.0.5",
        ["https://app.example.com"],
        [
            {**host, "Origin": "https://app.example.com"},
            {**host, "Origin": "https://other.example.com"},
        ],
    )
    assert statuses == [200, 403]


async def test_origins_on_a_loopback_bind_keep_fastmcp_rules() -> None:
    statuses = await origin_statuses(
        "127.0.0.1",
        [],
        [
            {"Origin": "http://evil.example"},
            {"Origin": "http://localhost:6274"},  # a local inspector on another port
            {},
        ],
    )
    assert statuses == [403, 200, 200]


async def test_the_origin_guard_works_when_the_app_is_mounted_under_a_prefix() -> None:
    host = {"Host": "mcp.example.com"}
    statuses = await origin_statuses(
        "10.0.0.5",
        [],
        [
            {**host, "Origin": "https://evil.example"},
            {**host, "Origin": "https://mcp.example.com"},
            host,
        ],
        prefix="/ctxfy",
    )
    assert statuses == [403, 200, 200]


async def test_ipv6_origins_match_exact_and_wildcard_allow_list_entries() -> None:
    host = {"Host": "mcp.example.com"}
    statuses = await origin_statuses(
        "10.0.0.5",
        ["http://[2001:db8::1]:8000", "http://[fd00::*]:8000", "http://[FD01::*]"],
        [
            {**host, "Origin": "http://[2001:db8::1]:8000"},
            {**host, "Origin": "http://[fd00::5]:8000"},
            {**host, "Origin": "http://[fd01::9]"},  # default port filled in on both sides
            {**host, "Origin": "http://[fd01::9]:80"},
            {**host, "Origin": "http://[2001:db8::2]:8000"},
            {**host, "Origin": "http://[fd00::5]:8001"},
            {**host, "Origin": "http://1:8000"},  # brackets are not an fnmatch class
        ],
    )
    assert statuses == [200, 200, 200, 200, 403, 403, 403]


async def test_behind_a_host_rewriting_proxy_the_public_origin_must_be_listed() -> None:
    # nginx's default proxy_pass sends the upstream name as Host
    rewritten = {"Host": "ctxfy:8000", "Origin": "https://mcp.example.com"}
    assert await origin_statuses("10.0.0.5", [], [rewritten, {"Host": "ctxfy:8000"}]) == [
        403,
        200,
    ]
    # the documented recipe: list the public origin in CTXFY_ALLOWED_ORIGINS
    assert await origin_statuses("10.0.0.5", ["https://mcp.example.com"], [rewritten]) == [200]


async def test_a_public_port_dropped_from_host_needs_the_origin_listed() -> None:
    # nginx's $host drops the port the browser used
    dropped = {"Host": "mcp.example.com", "Origin": "https://mcp.example.com:8443"}
    assert await origin_statuses("10.0.0.5", [], [dropped]) == [403]
    assert await origin_statuses("10.0.0.5", ["https://mcp.example.com:8443"], [dropped]) == [200]


async def test_allowed_hosts_behind_tls_termination_need_the_https_origin_listed() -> None:
    # FastMCP's guard compares Origin with the request's own scheme: http behind the proxy
    kept = {"Host": "mcp.example.com", "Origin": "https://mcp.example.com"}
    rewritten = {"Host": "ctxfy:8000"}  # a non-browser client, Host rewritten by the proxy
    hosts = ["mcp.example.com"]
    statuses = await origin_statuses("10.0.0.5", [], [kept, rewritten], allowed_hosts=hosts)
    assert statuses == [403, 421]
    listed = ["https://mcp.example.com"]
    assert await origin_statuses("10.0.0.5", listed, [kept], allowed_hosts=hosts) == [200]


def test_ipv6_allowed_origins_reach_fastmcp_with_literal_brackets() -> None:
    options = host_origin_options([], ["http://[fd00::*]:8000", "https://app.example"])
    assert options["allowed_origins"] == ["http://[[]fd00::*[]]:8000", "https://app.example"]
