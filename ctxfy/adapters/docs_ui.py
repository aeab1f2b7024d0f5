"""``/docs`` (Swagger UI, served offline) and ``/openapi.json`` for a FastMCP server.

The page's scripts and styles come from the ``openapi-ui-bundles`` package (Swagger UI 5)
and from ctxfy itself: nothing is fetched from a CDN. Its ``Content-Security-Policy``
lets the browser load code, styles and data from this server only (``'self'``), so no
request can leave for another host, even from injected content.

``/openapi.json`` is built from the live registry on each request (:mod:`ctxfy.adapters.openapi`).
When the document is not public it needs a ``read`` key; the page then asks for one and
sends it in ``X-API-Key``. The page and its assets hold no data and are always served.
"""

import html
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from openapi_ui_bundles import swagger_ui
from openapi_ui_bundles.__about__ import __version__ as _BUNDLE_VERSION
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from ctxfy.adapters.problems import problem_response
from ctxfy.adapters.rest_guard import RequireScope

__all__ = ["DOCS_CSP", "SpecSource", "register_docs"]

#: The ``/docs`` policy: everything from this server only; no inline script, no framing.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

#: Builds the OpenAPI document for one request (it sees the app's routes).
SpecSource = Callable[[Request], Awaitable[dict[str, Any]]]

_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css?v={version}">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png?v={version}">
</head>
<body>
<form id="ctxfy-key-form" class="swagger-ui wrapper" hidden>
<p id="ctxfy-key-message"></p>
<label for="ctxfy-key">API key</label>
<input id="ctxfy-key" type="password" autocomplete="off" spellcheck="false">
<button type="submit" class="btn">Load</button>
</form>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js?v={version}"></script>
<script src="docs/ctxfy-docs.js?v={version}"></script>
</body>
</html>
"""


def _script() -> bytes:
    return resources.files("ctxfy.adapters").joinpath("static/docs.js").read_bytes()


def register_docs(
    mcp: FastMCP[Any],
    spec: SpecSource,
    *,
    guard: RequireScope | None = None,
    title: str = "ctxfy",
) -> None:
    """Add ``GET /openapi.json``, ``GET /docs`` and the page's assets to ``mcp``.

    Args:
        mcp: The server.
        spec: Builds the OpenAPI document, e.g. with
            :func:`~ctxfy.adapters.openapi.server_openapi`.
        guard: When given, ``/openapi.json`` needs what it checks (typically a ``read``
            key); ``None`` makes the document public.
        title: Shown in the page title.

    Example:
        ```python
        async def spec(request: Request) -> dict[str, Any]:
            return await server_openapi(mcp, title="my-server", auth=False)

        register_docs(mcp, spec)  # then open http://127.0.0.1:8000/docs
        ```
    """
    page = _PAGE.format(title=html.escape(title), version=html.escape(_BUNDLE_VERSION))
    headers = {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}
    static: Path = swagger_ui.static_path
    script: list[bytes] = []

    async def openapi_json(request: Request) -> Response:
        extra: dict[str, str] = {}
        if guard is not None:
            refusal, extra = await guard.admit(request)
            if refusal is not None:
                return refusal
        return JSONResponse(await spec(request), headers={"Cache-Control": "no-cache", **extra})

    async def docs_page(_request: Request) -> Response:
        return HTMLResponse(page, headers=headers)

    async def docs_script(_request: Request) -> Response:
        if not script:
            script.append(_script())
        return Response(script[0], media_type="text/javascript; charset=utf-8", headers=headers)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        media_type = _ASSETS.get(name)
        if media_type is None:  # an allow-list: no path ever reaches the file system
            return problem_response(404, "no such asset")
        return FileResponse(
            static / name,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )

    mcp.custom_route("/openapi.json", methods=["GET"])(openapi_json)
    mcp.custom_route("/docs", methods=["GET"])(docs_page)
    mcp.custom_route("/docs/ctxfy-docs.js", methods=["GET"])(docs_script)
    mcp.custom_route("/docs/assets/{name}", methods=["GET"])(asset)
