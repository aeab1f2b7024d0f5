"""``BodyLimitMiddleware``: 413 before reading, 408 for slow bodies, 400 for deep JSON."""

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from ctxfy.adapters.body_limit import (
    DEPTH_CHECK_BRACKETS,
    BodyLimitMiddleware,
    json_nesting_too_deep,
)


class Echo:
    """An app answering with the body it read; records whether it was called."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def _scope(headers: Sequence[tuple[bytes, bytes]], method: str = "POST") -> Scope:
    return {"type": "http", "method": method, "path": "/mcp", "headers": list(headers)}


async def _call(
    app: BodyLimitMiddleware, scope: Scope, messages: list[Message], *, gap_s: float = 0.0
) -> tuple[int | None, dict[str, str], bytes, int]:
    """Run ``app``; return (status, headers, body, messages consumed)."""
    consumed = 0

    async def receive() -> Message:
        nonlocal consumed
        if consumed < len(messages):
            if gap_s:
                await asyncio.sleep(gap_s)
            consumed += 1
            return messages[consumed - 1]
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if not sent:
        return None, {}, b"", consumed
    headers = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:]), consumed


def _chunks(data: bytes, size: int) -> list[Message]:
    parts = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]


async def test_a_declared_length_over_the_limit_is_refused_without_reading() -> None:
    app = Echo()
    middleware = BodyLimitMiddleware(app, max_body_bytes=100)
    scope = _scope([(b"content-length", b"101"), (b"content-type", b"application/json")])
    status, headers, body, consumed = await _call(middleware, scope, _chunks(b"x" * 101, 10))
    assert status == 413
    assert consumed == 0
    assert app.calls == 0
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["detail"] == "request body larger than 100 bytes"


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    app = Echo()
    middleware = BodyLimitMiddleware(app, max_body_bytes=100)
    scope = _scope([(b"transfer-encoding", b"chunked")])
    status, _, _, consumed = await _call(middleware, scope, _chunks(b"x" * 1000, 30))
    assert status == 413
    assert consumed == 4  # 120 bytes read, the remaining 880 never
    assert app.calls == 0


async def test_a_body_within_the_limit_reaches_the_app_in_one_piece() -> None:
    app = Echo()
    middleware = BodyLimitMiddleware(app, max_body_bytes=100)
    data = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    scope = _scope([(b"content-length", str(len(data)).encode())])
    status, _, body, _ = await _call(middleware, scope, _chunks(data, 7))
    assert (status, body) == (200, data)
    scope = _scope([(b"transfer-encoding", b"chunked")])
    assert (await _call(middleware, scope, _chunks(b"x" * 100, 30)))[:3:2] == (200, b"x" * 100)


async def test_a_slow_body_gets_408_after_the_timeout() -> None:
    app = Echo()
    middleware = BodyLimitMiddleware(app, body_timeout_s=0.2)
    scope = _scope([(b"content-length", b"100")])
    started = asyncio.get_running_loop().time()
    stalled: list[Message] = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]
    status, headers, body, _ = await _call(middleware, scope, stalled)
    elapsed = asyncio.get_running_loop().time() - started
    assert status == 408
    assert 0.2 <= elapsed < 1.0
    assert headers["connection"] == "close"
    assert "0.2 s" in json.loads(body)["detail"]
    assert app.calls == 0


async def test_a_trickling_body_is_bounded_by_the_total_time_not_per_chunk() -> None:
    middleware = BodyLimitMiddleware(Echo(), body_timeout_s=0.3)
    scope = _scope([(b"content-length", b"100")])
    status, *_ = await _call(middleware, scope, _chunks(b"x" * 100, 5), gap_s=0.05)
    assert status == 408


async def test_requests_without_a_body_pass_straight_through() -> None:
    app = Echo()
    middleware = BodyLimitMiddleware(app, max_body_bytes=1)
    status, _, body, _ = await _call(middleware, _scope([], method="GET"), _chunks(b"", 1))
    assert (status, body, app.calls) == (200, b"", 1)


async def test_a_client_gone_mid_body_gets_no_answer() -> None:
    app = Echo()
    middleware = BodyLimitMiddleware(app)
    scope = _scope([(b"content-length", b"100")])
    messages: list[Message] = [
        {"type": "http.request", "body": b"x" * 10, "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert (await _call(middleware, scope, messages))[0] is None
    assert app.calls == 0


async def test_json_nested_too_deeply_for_the_parser_is_a_400() -> None:
    app = Echo()
    middleware = BodyLimitMiddleware(app)
    deep = b"[" * 100_000
    scope = _scope([(b"content-length", str(len(deep)).encode()), (b"content-type", b"json")])
    status, headers, body, _ = await _call(middleware, scope, _chunks(deep, 65536))
    assert status == 400
    assert "connection" not in headers  # the whole body was read: the connection is fine
    assert json.loads(body)["detail"] == "JSON body nested too deeply to parse"
    assert app.calls == 0
    # The same bytes under another content type are the application's business.
    scope = _scope([(b"content-length", str(len(deep)).encode())])
    assert (await _call(middleware, scope, _chunks(deep, 65536)))[0] == 200


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (b"[" * 100_000, True),
        (b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, True),
        (b"[" * 500 + b"]" * 500, False),  # deep, but parseable on every supported Python
        (b'{"markdown": "' + b"[" * 100_000 + b'"}', False),  # brackets inside a string
        (b"[" * (DEPTH_CHECK_BRACKETS - 1), False),  # too few brackets to need a parse
        (b"not json [[[" + b"[" * DEPTH_CHECK_BRACKETS, False),  # malformed: the app says so
    ],
)
def test_json_nesting_too_deep(body: bytes, too_deep: bool) -> None:
    assert json_nesting_too_deep(body) is too_deep


@pytest.mark.parametrize("kwargs", [{"max_body_bytes": 0}, {"body_timeout_s": 0.0}])
def test_limits_must_be_positive(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        BodyLimitMiddleware(Echo(), **kwargs)


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    await BodyLimitMiddleware(app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
