"""Security headers and opt-in CORS on a plain Starlette app."""

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctxfy.adapters.http_security import (
    SecurityHeadersMiddleware,
    cors_middleware,
    host_origin_options,
)


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
