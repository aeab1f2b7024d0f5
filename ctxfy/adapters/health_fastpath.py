"""``LivenessProbeMiddleware``: answer ``GET /health`` before the rest of the HTTP stack.

Orchestrators probe liveness every few seconds per replica, and the answer never changes.
Through the whole stack (request context, trace context, security headers, body limits,
Host/Origin guard, authentication, routing) a probe costs several times what the bare route
does. This outermost ASGI layer answers a *plain* probe itself with bytes rendered once: the
route's own response (:func:`~ctxfy.adapters.health.liveness_response`), the headers
:class:`~ctxfy.adapters.http_security.SecurityHeadersMiddleware` adds, and an
``X-Request-ID`` (a valid incoming one echoed, a new one otherwise). What users see of a
probe is kept: it is counted in ``http.server.request.duration`` (route ``/health``) and
gets its DEBUG ``http.request`` line, carrying the request id.

A plain probe is a ``GET`` or ``HEAD`` of exactly ``/health`` without a body, an
``Origin``, credentials (``Authorization``, ``X-API-Key``) or a ``traceparent``: what
kubelet, Docker and load balancers send. Anything else goes through the full stack and gets
exactly today's answer (``405`` for ``POST``, CORS headers for browsers, the trace
continued in the log line, ...).

Plain probes skip the Host allow-list on purpose. The answer is a constant that reveals
nothing but liveness, takes no input and changes no state, so DNS rebinding gains nothing
from it; a probe sent with an unexpected ``Host`` (a sidecar or node agent relaying it, a
probe to a loopback-bound server through a port mapping) must not restart a healthy
process. ``/ready`` and every other route keep the full Host/Origin validation.

Example:
    ```python
    app = mcp.http_app()
    app.add_middleware(LivenessProbeMiddleware, metrics=recorder)  # added last: outermost
    ```
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from ctxfy.adapters.health import LIVENESS_PATH, liveness_response
from ctxfy.adapters.http_security import DEFAULT_SECURITY_HEADERS, security_headers
from ctxfy.adapters.request_lines import REQUEST_ID_HEADER, log_http_request, new_request_id
from ctxfy.core.telemetry import (
    MetricsRecorder,
    NullMetricsRecorder,
    http_log_level,
    valid_request_id,
)

__all__ = ["LivenessProbeMiddleware"]

_PROBE_METHODS = frozenset({"GET", "HEAD"})
#: Request headers that make a request more than a plain probe: it takes the full stack.
_FULL_TREATMENT = frozenset(
    {b"origin", b"authorization", b"x-api-key", b"traceparent", b"transfer-encoding"}
)
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode("latin-1")


class LivenessProbeMiddleware:
    """Answer plain ``GET``/``HEAD /health`` probes without entering the wrapped app.

    Add it last (outermost). Leave it out when every probe should get the full treatment
    (``CTXFY_LOG_HEALTH_CHECKS=true``).

    Args:
        app: The wrapped ASGI app, which serves everything else (and ``/health`` itself).
        metrics: Where to record ``http.server.request.duration``; nothing when ``None``.
        headers: The security headers to send (default: those of
            :class:`~ctxfy.adapters.http_security.SecurityHeadersMiddleware`).
        hsts_max_age: When set, adds ``Strict-Transport-Security``, as that middleware does.
        path: The liveness path.

    Example:
        ```python
        app = mcp.http_app()
        app.add_middleware(SecurityHeadersMiddleware)
        app.add_middleware(LivenessProbeMiddleware)
        ```
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: MetricsRecorder | None = None,
        headers: Mapping[str, str] = DEFAULT_SECURITY_HEADERS,
        hsts_max_age: int | None = None,
        path: str = LIVENESS_PATH,
    ) -> None:
        self.app = app
        self._metrics = metrics if metrics is not None else NullMetricsRecorder()
        self._path = path
        response = liveness_response()
        self._status = response.status_code
        self._body = bytes(response.body)
        route_headers = {name for name, _ in response.raw_headers}
        self._headers = [
            *response.raw_headers,
            *(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in security_headers(headers, hsts_max_age).items()
                # As SecurityHeadersMiddleware: a header the route sets itself wins.
                if name.lower().encode("latin-1") not in route_headers
            ),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a plain liveness probe; pass everything else on unchanged."""
        if (
            scope["type"] != "http"
            or scope["path"] != self._path
            or scope["method"] not in _PROBE_METHODS
            or scope.get("root_path")  # mounted: let the router resolve the path
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming: bytes | None = None
        for name, value in scope["headers"]:
            if name in _FULL_TREATMENT or (name == b"content-length" and value != b"0"):
                await self.app(scope, receive, send)
                return
            if name == _REQUEST_ID and incoming is None:
                incoming = value
        request_id = incoming.decode("latin-1") if incoming is not None else ""
        if not valid_request_id(request_id):
            request_id = new_request_id()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self._status,
                    "headers": [*self._headers, (_REQUEST_ID, request_id.encode("latin-1"))],
                }
            )
            await send({"type": "http.response.body", "body": self._body})
        finally:
            self._finish(scope["method"], request_id, time.perf_counter() - started)

    def _finish(self, method: str, request_id: str, duration_s: float) -> None:
        """Record the metric and write the DEBUG line RequestContextMiddleware would."""
        self._metrics.record_http(
            method=method, route=self._path, status=self._status, duration_s=duration_s
        )
        log_http_request(
            method=method,
            path=self._path,
            status=self._status,
            error_type=None,
            duration_s=duration_s,
            level=http_log_level(self._status, quiet=True),
            request_id=request_id,
            transport="http",
        )
