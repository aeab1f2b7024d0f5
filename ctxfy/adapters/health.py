"""``/health`` (liveness) and ``/ready`` (readiness) routes for any FastMCP server."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse

#: A readiness check: returns normally when the dependency is usable, raises otherwise.
ReadinessCheck = Callable[[], Awaitable[None]]

#: Where the liveness route is served.
LIVENESS_PATH = "/health"


def liveness_response() -> JSONResponse:
    """Return the answer to a liveness probe: ``200 {"status": "ok"}``, never cached.

    :class:`~ctxfy.adapters.health_fastpath.LivenessProbeMiddleware` renders it once and
    replays its bytes, so the route and the fast path cannot drift apart.
    """
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


def add_health_routes(
    mcp: FastMCP[Any],
    checks: Mapping[str, ReadinessCheck],
    *,
    check_timeout_s: float = 2.0,
) -> None:
    """Add ``GET /health`` and ``GET /ready`` to ``mcp``.

    ``/health`` answers 200 while the process serves requests and checks nothing else.
    ``/ready`` runs every check concurrently, each bounded by ``check_timeout_s``, and
    answers 200, or 503 with a JSON body naming each failing dependency. Neither route is
    behind MCP auth: orchestrators must reach them without a key. In front of a whole HTTP
    stack, add :class:`~ctxfy.adapters.health_fastpath.LivenessProbeMiddleware` so that
    plain ``/health`` probes are answered without crossing it.

    Args:
        mcp: The server.
        checks: Named readiness checks, e.g. ``{"prompt_catalog": ..., "key_store": ...}``.
        check_timeout_s: Time allowed for each check.

    Example:
        ```python
        async def database() -> None:
            await pool.execute("SELECT 1")

        add_health_routes(mcp, {"database": database})
        ```
    """

    async def health(_request: Request) -> JSONResponse:
        return liveness_response()

    async def run_check(check: ReadinessCheck) -> str | None:
        try:
            async with asyncio.timeout(check_timeout_s):
                await check()
        except TimeoutError:
            return f"no answer within {check_timeout_s:g} s"
        except Exception as exc:
            return type(exc).__name__
        return None

    async def ready(_request: Request) -> JSONResponse:
        names = list(checks)
        results = await asyncio.gather(*(run_check(checks[n]) for n in names))
        failing = {n: r for n, r in zip(names, results, strict=True) if r is not None}
        body = {
            "status": "not ready" if failing else "ready",
            "checks": {n: ("ok" if n not in failing else "failing") for n in names},
        }
        if failing:
            body["failing"] = failing
        return JSONResponse(
            body, status_code=503 if failing else 200, headers={"Cache-Control": "no-store"}
        )

    mcp.custom_route(LIVENESS_PATH, methods=["GET"], include_in_schema=True)(health)
    mcp.custom_route("/ready", methods=["GET"], include_in_schema=True)(ready)
