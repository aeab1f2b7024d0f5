"""CTXFY_MAX_BODY_BYTES, CTXFY_BODY_TIMEOUT_S and CTXFY_HEADER_TIMEOUT_S, end to end."""

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message

from ctxfy import cli
from ctxfy.adapters import http_server
from ctxfy.adapters.body_limit import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES
from ctxfy.adapters.http_timeouts import DEFAULT_HEADER_TIMEOUT_S
from ctxfy.core.errors import ConfigurationError
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings


def test_defaults_are_the_adapters_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 4_194_304
    assert settings.body_timeout_s == DEFAULT_BODY_TIMEOUT_S == 10
    assert settings.header_timeout_s == DEFAULT_HEADER_TIMEOUT_S == 10


def test_the_limits_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CTXFY_MAX_BODY_BYTES": "1048576",
            "CTXFY_BODY_TIMEOUT_S": "2.5",
            "CTXFY_HEADER_TIMEOUT_S": " 5 ",
        }
    )
    assert settings.max_body_bytes == 1_048_576
    assert settings.body_timeout_s == 2.5
    assert settings.header_timeout_s == 5.0


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("CTXFY_MAX_BODY_BYTES", "0", "at least 1"),
        ("CTXFY_MAX_BODY_BYTES", "-5", "at least 1"),
        ("CTXFY_MAX_BODY_BYTES", "4MiB", "invalid literal"),
        ("CTXFY_MAX_BODY_BYTES", "1.5", "invalid literal"),
        ("CTXFY_BODY_TIMEOUT_S", "0", "greater than 0"),
        ("CTXFY_BODY_TIMEOUT_S", "soon", "could not convert"),
        ("CTXFY_BODY_TIMEOUT_S", "nan", "greater than 0"),
        ("CTXFY_HEADER_TIMEOUT_S", "-1", "greater than 0"),
        ("CTXFY_HEADER_TIMEOUT_S", "10s", "could not convert"),
    ],
)
def test_an_invalid_limit_names_the_variable_and_the_rule(name: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigurationError, match=name) as raised:
        Settings.from_env({name: value})
    assert rule in str(raised.value)
    assert repr(value) in str(raised.value)


def _app(tmp_path: Path, environ: Mapping[str, str]) -> Any:
    settings = Settings.from_env({"CTXFY_AUTH": "off", "CTXFY_DATA_DIR": str(tmp_path), **environ})
    return build_http_app(build_server(settings), settings)


async def test_a_lowered_max_body_bytes_refuses_bigger_bodies_with_413(tmp_path: Path) -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "padding": "' + b"x" * 60 + b'"}'
    assert 64 < len(body) < DEFAULT_MAX_BODY_BYTES
    lowered = _app(tmp_path, {"CTXFY_MAX_BODY_BYTES": "64"})
    default = _app(tmp_path, {})
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=lowered), base_url="http://127.0.0.1:8000"
    ) as http:
        refused = await http.post("/mcp", content=body, headers=headers)
        small = await http.post("/health", content=b"{}", headers=headers)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=default), base_url="http://127.0.0.1:8000"
    ) as http:
        accepted = await http.post("/health", content=body, headers=headers)
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert "64 bytes" in refused.json()["detail"]
    assert small.status_code == 405  # within the limit: reaches the router
    assert accepted.status_code == 405  # the default limit lets the same body through


async def test_a_lowered_body_timeout_gives_408(tmp_path: Path) -> None:
    app = _app(tmp_path, {"CTXFY_BODY_TIMEOUT_S": "0.05"})
    sent: list[Message] = []
    chunks = [{"type": "http.request", "body": b'{"jsonrpc":', "more_body": True}]

    async def receive() -> Message:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(5)  # the rest of the body never comes
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    async with asyncio.timeout(2):
        await app(scope, receive, send)
    assert sent[0]["status"] == 408


def test_the_cli_passes_the_header_timeout_to_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_serve(app: object, **kwargs: Any) -> None:
        calls.append(kwargs)

    monkeypatch.setattr(http_server, "serve", fake_serve)
    environ = {
        "CTXFY_AUTH": "off",
        "CTXFY_DATA_DIR": str(tmp_path),
        "CTXFY_HEADER_TIMEOUT_S": "3.5",
    }
    assert cli.main(["serve", "--port", "0"], environ) == 0
    [kwargs] = calls
    assert kwargs["header_timeout_s"] == 3.5
