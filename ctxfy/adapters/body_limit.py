"""``BodyLimitMiddleware``: bound the size of request bodies and the time to send them.

Neither uvicorn nor the MCP SDK bounds a request body: the SDK reads the whole body of a
POST to ``/mcp`` into memory before parsing it, and waits for it as long as the client
cares to trickle it. This ASGI middleware answers, before the application sees anything:

- ``413`` (``application/problem+json``) when ``Content-Length`` is over the limit: nothing
  of the body is read;
- ``413`` as soon as a body sent without a length (chunked) passes the limit: the rest is
  not read;
- ``408`` when the whole body has not arrived within ``body_timeout_s`` of the request
  start (a slow or stalled client);
- ``400`` when a JSON body nests arrays and objects deeper than Python's JSON parser can
  follow: it recurses once per level, and a body of 100,000 ``[`` makes the MCP SDK fail
  with ``RecursionError`` (an HTTP 500 and a crashed stateless session) instead of
  answering with a parse error. An ordinary body costs two byte counts; one with at least
  :data:`DEPTH_CHECK_BRACKETS` brackets is parsed once more here (what the SDK does anyway).

Both answers carry ``Connection: close``: the unread rest of the body makes the connection
unusable. An accepted body (at most ``max_body_bytes``) is handed to the application in one
piece; requests without a body (``GET``) pass straight through. Memory held for bodies is
therefore bounded by ``max_body_bytes`` times the number of requests in flight.

Example:
    ```python
    app = mcp.http_app()
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=1_048_576, body_timeout_s=10)
    ```
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ctxfy.adapters.problems import problem_response

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_MAX_BODY_BYTES",
    "DEPTH_CHECK_BRACKETS",
    "BodyLimitMiddleware",
    "json_nesting_too_deep",
]

#: 4 MiB: above the largest valid request (``lint_context_stack``'s 200,000 characters,
#: even JSON-escaped), far below what would strain memory.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: Time a client has to send a whole body (400 KiB/s for the largest one).
DEFAULT_BODY_TIMEOUT_S = 10.0
#: A body with fewer ``[`` and ``{`` cannot nest deep enough to trouble a JSON parser.
DEPTH_CHECK_BRACKETS = 256


def json_nesting_too_deep(body: bytes) -> bool:
    """Return whether Python's JSON parser gives up on ``body``'s nesting (``RecursionError``).

    Malformed JSON is not judged here: the application's parser reports it as usual.

    Example:
        >>> json_nesting_too_deep(b"[" * 100_000)
        True
        >>> json_nesting_too_deep(b'{"text": "' + b"[" * 100_000 + b'"}')
        False
    """
    if body.count(b"[") + body.count(b"{") < DEPTH_CHECK_BRACKETS:
        return False
    try:
        json.loads(body)
    except RecursionError:
        return True
    except ValueError:
        return False
    return False


def _body_headers(scope: Scope) -> tuple[int | None, bool, bool]:
    """Return (declared ``Content-Length``, chunked, JSON content type) of a request."""
    declared: int | None = None
    chunked = is_json = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The HTTP server has already refused a malformed or conflicting length.
            declared = int(value) if value.strip().isdigit() else None
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"content-type":
            is_json = b"json" in value.lower()
    return declared, chunked, is_json


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class _Gone(Exception):
    """The client disconnected before the end of its body."""


class BodyLimitMiddleware:
    """Refuse oversized (413), slow (408) or too deeply nested JSON (400) request bodies.

    Args:
        app: The wrapped ASGI application.
        max_body_bytes: Largest accepted body, in bytes.
        body_timeout_s: Time from the start of the request to the end of its body.

    Raises:
        ValueError: A limit is not positive.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    ) -> None:
        if max_body_bytes < 1 or body_timeout_s <= 0:
            raise ValueError("max_body_bytes and body_timeout_s must be positive")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared size, read the body within the limits, then call the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked, is_json = _body_headers(scope)
        if not chunked and not declared:
            await self.app(scope, receive, send)  # no body: nothing to bound
            return
        try:
            if declared is not None and declared > self.max_body_bytes:
                raise _Refused(413)
            body = await self._read(receive)
            if is_json and json_nesting_too_deep(body):
                raise _Refused(400)
        except _Refused as refused:
            await self._refuse(scope, receive, send, refused.status)
            return
        except _Gone:
            return  # there is no one left to answer
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: wait for the disconnect as usual

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Gone
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise _Refused(413)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(408) from None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        if status == 413:
            detail = f"request body larger than {self.max_body_bytes} bytes"
        elif status == 408:
            detail = f"request body not received within {self.body_timeout_s:g} s"
        else:
            detail = "JSON body nested too deeply to parse"
        # The unread rest of a refused body makes the connection unusable: close it.
        headers = {"Connection": "close"} if status != 400 else None
        response = problem_response(status, detail, headers=headers)
        await response(scope, receive, send)
