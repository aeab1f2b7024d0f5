"""``/health`` (liveness) and ``/ready`` (readiness) routes for any FastMCP server.

A readiness check that starts failing is logged once, at WARNING, with the error's text
(credentials in URLs hidden); its recovery once, at INFO. The ``/ready`` answer itself
names only the error's class, as it is served without a key.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastmcp import FastMCP
from loguru import logger
from starlette.requests import Request
from starlette.responses import JSONResponse

#: A readiness check: returns normally when the dependency is usable, raises otherwise.
ReadinessCheck = Callable[[], Awaitable[None]]

#: Where the liveness route is served.
LIVENESS_PATH = "/health"

# The user-info part of a URL (``redis://user:password@host``): a password, as often as not.
# Greedy up to the last ``@`` before whitespace, so that a password holding ``@`` or ``/``
# is hidden whole; hiding a host or path with it is the lesser harm.
_URL_USERINFO = re.compile(r"(?<=://)\S*@")
_MAX_DETAIL_LENGTH = 500


def _failure_detail(exc: BaseException) -> str:
    """Describe a failed check for the log: class and message, URL credentials hidden."""
    text = _URL_USERINFO.sub("***@", f"{type(exc).__name__}: {exc}")
    return text if len(text) <= _MAX_DETAIL_LENGTH else text[:_MAX_DETAIL_LENGTH] + "..."


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

    failing_now: set[str] = set()  # checks whose failure has been logged
    # Probes overlap and finish in any order: each result is applied only if its probe
    # started after the one whose result was last applied to that check.
    probes_started = 0
    last_applied: dict[str, int] = {}

    async def run_check(check: ReadinessCheck) -> tuple[str, str] | None:
        """Return ``None``, or what the answer says and what the log says of the failure."""
        try:
            async with asyncio.timeout(check_timeout_s):
                await check()
        except TimeoutError:
            reason = f"no answer within {check_timeout_s:g} s"
            return reason, reason
        except Exception as exc:
            return type(exc).__name__, _failure_detail(exc)
        return None

    def log_transitions(results: Mapping[str, tuple[str, str] | None], probe: int) -> None:
        # No await in here: concurrent probes see and update the state one at a time.
        for name, result in results.items():
            if last_applied.get(name, 0) > probe:
                continue  # a newer probe already told this check's state
            last_applied[name] = probe
            if result is not None and name not in failing_now:
                failing_now.add(name)
                logger.bind(event="health.check_failed", check=name, detail=result[1]).warning(
                    "readiness check {} failing: {}", name, result[1]
                )
            elif result is None and name in failing_now:
                failing_now.discard(name)
                logger.bind(event="health.check_recovered", check=name).info(
                    "readiness check {} recovered", name
                )

    async def ready(_request: Request) -> JSONResponse:
        nonlocal probes_started
        probes_started += 1
        probe = probes_started
        names = list(checks)
        results = dict(
            zip(names, await asyncio.gather(*(run_check(checks[n]) for n in names)), strict=True)
        )
        log_transitions(results, probe)
        failing = {n: r[0] for n, r in results.items() if r is not None}
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
