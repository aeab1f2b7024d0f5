"""The liveness fast path: plain probes answered outermost, everything else untouched."""

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from ctxfy.adapters.health_fastpath import LivenessProbeMiddleware
from ctxfy.adapters.logging import configure_logging
from ctxfy.core.telemetry import valid_request_id
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings
from ctxfy.testing import RecordingMetrics

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-resource-policy": "same-origin",
}


class Inner:
    """The wrapped app: answers 299 and remembers what reached it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            self.seen.append((scope["type"], ""))
            return
        self.seen.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})


def client(app: Any, base_url: str = "http://127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def ctxfy_app(tmp_path: Path, **settings: Any) -> Starlette:
    config = Settings(auth=False, data_dir=tmp_path, **settings)
    return build_http_app(build_server(config), config)


async def test_a_plain_probe_is_answered_without_the_wrapped_app() -> None:
    inner = Inner()
    async with client(LivenessProbeMiddleware(inner, hsts_max_age=600)) as http:
        get = await http.get("/health")
        head = await http.head("/health")
    assert inner.seen == []
    for response in (get, head):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-length"] == "15"
        assert response.headers["strict-transport-security"] == "max-age=600"
        assert SECURITY_HEADERS.items() <= response.headers.items()
        assert valid_request_id(response.headers["x-request-id"])
    assert get.json() == {"status": "ok"}
    assert get.headers["x-request-id"] != head.headers["x-request-id"]


async def test_a_valid_request_id_is_echoed_and_an_invalid_one_replaced() -> None:
    async with client(LivenessProbeMiddleware(Inner())) as http:
        echoed = await http.get("/health", headers={"X-Request-ID": "probe-1.a:b_c"})
        replaced = await http.get("/health", headers={"X-Request-ID": "not a valid id!"})
    assert echoed.headers["x-request-id"] == "probe-1.a:b_c"
    assert replaced.headers["x-request-id"] != "not a valid id!"
    assert valid_request_id(replaced.headers["x-request-id"])


@pytest.mark.parametrize(
    ("method", "path", "headers", "content"),
    [
        ("POST", "/health", {}, b""),
        ("DELETE", "/health", {}, b""),
        ("GET", "/health/", {}, b""),
        ("GET", "/ready", {}, b""),
        ("GET", "/health", {"Origin": "https://app.example.com"}, b""),
        ("GET", "/health", {"Authorization": "Bearer x"}, b""),
        ("GET", "/health", {"X-API-Key": "ctxfy_x"}, b""),
        ("GET", "/health", {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}, b""),
        ("GET", "/health", {}, b"a body"),
    ],
)
async def test_anything_but_a_plain_probe_goes_to_the_wrapped_app(
    method: str, path: str, headers: dict[str, str], content: bytes
) -> None:
    inner = Inner()
    async with client(LivenessProbeMiddleware(inner)) as http:
        response = await http.request(method, path, headers=headers, content=content)
    assert response.status_code == 299
    assert inner.seen == [(method, path)]


async def test_a_mounted_app_and_other_scopes_go_to_the_wrapped_app() -> None:
    inner = Inner()
    app = LivenessProbeMiddleware(inner)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/health", "headers": []}
    await app({**scope, "root_path": "/ctxfy"}, receive, send)
    await app({"type": "lifespan"}, receive, send)
    assert inner.seen == [("GET", "/health"), ("lifespan", "")]
    assert sent[0]["status"] == 299


async def test_probes_are_counted_and_logged_at_debug_with_their_request_id() -> None:
    metrics = RecordingMetrics()
    stream = io.StringIO()
    undo = configure_logging("DEBUG", "json", stream)
    try:
        async with client(LivenessProbeMiddleware(Inner(), metrics=metrics)) as http:
            response = await http.get("/health", headers={"X-Request-ID": "probe-7"})
            await http.head("/health")
    finally:
        undo()
    [get, head] = metrics.named("record_http")
    assert (get["method"], get["route"], get["status"]) == ("GET", "/health", 200)
    assert (head["method"], head["route"], head["status"]) == ("HEAD", "/health", 200)
    assert isinstance(get["duration_s"], float)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [line] = [line for line in lines if line["method"] == "GET /health"]
    assert line["level"] == "DEBUG"
    assert line["event"] == "http.request"
    assert line["status"] == "ok"
    assert line["http_status"] == 200
    assert line["request_id"] == response.headers["x-request-id"] == "probe-7"
    assert line["transport"] == "http"


async def test_the_fast_answer_is_the_full_stacks_answer(tmp_path: Path) -> None:
    async with client(ctxfy_app(tmp_path, hsts_max_age=60)) as http:
        fast = await http.get("/health", headers={"X-Request-ID": "same-id"})
    async with client(ctxfy_app(tmp_path, hsts_max_age=60, log_health_checks=True)) as http:
        full = await http.get("/health", headers={"X-Request-ID": "same-id"})
    assert fast.status_code == full.status_code == 200
    assert fast.content == full.content
    assert fast.headers.multi_items() == full.headers.multi_items()


def test_build_http_app_puts_the_fast_path_outermost_unless_probes_are_logged(
    tmp_path: Path,
) -> None:
    def names(app: Starlette) -> list[str]:
        return [getattr(m.cls, "__name__", "") for m in app.user_middleware]

    assert names(ctxfy_app(tmp_path))[0] == "LivenessProbeMiddleware"
    assert "LivenessProbeMiddleware" not in names(ctxfy_app(tmp_path, log_health_checks=True))


async def test_a_probe_is_answered_whatever_its_host_other_routes_still_check_it(
    tmp_path: Path,
) -> None:
    # A loopback-bound server validates Host: a relayed probe's Host used to get 421.
    app = ctxfy_app(tmp_path, allowed_hosts=("mcp.example.com",))
    async with client(app) as http:
        probe = await http.get("/health", headers={"Host": "10.1.2.3:8000"})
        ready = await http.get("/ready", headers={"Host": "10.1.2.3:8000"})
        bad_origin = await http.get("/health", headers={"Origin": "http://evil.example"})
    assert probe.status_code == 200
    assert ready.status_code == 421
    assert bad_origin.status_code == 403
    logged = ctxfy_app(tmp_path, allowed_hosts=("mcp.example.com",), log_health_checks=True)
    async with client(logged) as http:
        full = await http.get("/health", headers={"Host": "10.1.2.3:8000"})
    assert full.status_code == 421


async def test_other_methods_on_health_get_the_full_stacks_405(tmp_path: Path) -> None:
    async with client(ctxfy_app(tmp_path)) as http:
        post = await http.post("/health")
    assert post.status_code == 405
    assert set(post.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert SECURITY_HEADERS.items() <= post.headers.items()
    assert valid_request_id(post.headers["x-request-id"])
