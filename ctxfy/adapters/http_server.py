"""Running the ASGI app with uvicorn, with a clean exit on SIGTERM."""

import math
from types import FrameType

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ctxfy.adapters.http_timeouts import DEFAULT_HEADER_TIMEOUT_S, with_header_timeout


class GracefulServer(uvicorn.Server):
    """A uvicorn server that exits with status 0 after a graceful SIGTERM/SIGINT shutdown.

    uvicorn re-raises the signal once it has shut down, so the process ends with
    ``-SIGTERM``; orchestrators and process supervisors read that as a crash. A requested stop
    that completed gracefully is a success, so this server does not re-raise.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start a graceful shutdown (a second SIGINT forces it), without re-raising."""
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    grace_s: float,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, letting in-flight requests finish.

    Args:
        app: The ASGI application.
        host: Address to bind.
        port: TCP port.
        grace_s: Time in-flight requests get to finish after a stop signal.
        header_timeout_s: Time a client has to send a request's headers (slow clients are
            disconnected with ``408``; see :mod:`ctxfy.adapters.http_timeouts`).
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        http=with_header_timeout(AutoHTTPProtocol, header_timeout_s),
        server_header=False,
        timeout_graceful_shutdown=math.ceil(grace_s),
    )
    GracefulServer(config).run()
