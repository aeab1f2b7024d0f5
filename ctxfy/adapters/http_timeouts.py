"""A request-header timeout for uvicorn, against slow clients ("slowloris").

uvicorn closes a kept-alive connection that stays idle (``timeout_keep_alive``), but it has
no limit on the time a client takes to send a request's *headers*: a connection that
sends half a request line, or a header a byte at a time, is held open for ever, and enough
of them exhaust the process's file descriptors. :func:`with_header_timeout` derives, from
uvicorn's HTTP protocol class (h11 or httptools), one that closes a connection whose
request headers are not complete within ``header_timeout_s`` of its first byte (or of the
connection, for the first request). Once the headers are in, the body is bounded by
:class:`~ctxfy.adapters.body_limit.BodyLimitMiddleware` and the idle time between requests
by uvicorn's keep-alive timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["DEFAULT_HEADER_TIMEOUT_S", "with_header_timeout"]

#: Time a client has to send a request line and its headers.
DEFAULT_HEADER_TIMEOUT_S = 10.0

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 37\r\n"
    b"connection: close\r\n\r\n"
    b"request headers not received in time\n"
)


def with_header_timeout(
    base: type[Any], header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
) -> type[Any]:
    """Return a subclass of uvicorn's protocol ``base`` enforcing a request-header timeout.

    Args:
        base: ``uvicorn.protocols.http.auto.AutoHTTPProtocol`` (or the h11/httptools class).
        header_timeout_s: Seconds a client has to complete a request's headers.

    Returns:
        The protocol class to pass as ``uvicorn.Config(http=...)``.

    Raises:
        ValueError: The timeout is not positive.

    Example:
        ```python
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        config = uvicorn.Config(app, http=with_header_timeout(AutoHTTPProtocol, 10.0))
        ```
    """
    if header_timeout_s <= 0:
        raise ValueError("header_timeout_s must be positive")

    class HeaderTimeoutProtocol(base):  # type: ignore[misc]
        """uvicorn's protocol, closing connections whose request headers are too slow."""

        _ctxfy_header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._ctxfy_update()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._ctxfy_update()

        def connection_lost(self, exc: Exception | None) -> None:
            self._ctxfy_cancel()
            super().connection_lost(exc)

        def _ctxfy_waiting_for_headers(self) -> bool:
            cycle = getattr(self, "cycle", None)
            return cycle is None or bool(getattr(cycle, "response_complete", True))

        def _ctxfy_update(self) -> None:
            if not self._ctxfy_waiting_for_headers():
                self._ctxfy_cancel()  # a request is being served: its headers are in
            elif self._ctxfy_header_timer is None and not self.transport.is_closing():
                loop = asyncio.get_running_loop()
                self._ctxfy_header_timer = loop.call_later(header_timeout_s, self._ctxfy_expire)

        def _ctxfy_cancel(self) -> None:
            if self._ctxfy_header_timer is not None:
                self._ctxfy_header_timer.cancel()
                self._ctxfy_header_timer = None

        def _ctxfy_expire(self) -> None:
            self._ctxfy_header_timer = None
            if self.transport.is_closing() or not self._ctxfy_waiting_for_headers():
                return
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    HeaderTimeoutProtocol.__qualname__ = f"HeaderTimeout{base.__name__}"
    return HeaderTimeoutProtocol
