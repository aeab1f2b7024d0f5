"""Shared fixtures: a fake OpenAI-compatible LLM server on 127.0.0.1, free ports."""

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ctxfy.testing import free_tcp_port

ServeHttp = Callable[[ASGIApp], contextlib.AbstractAsyncContextManager[str]]


class FakeLLMServer:
    """A real HTTP server speaking the OpenAI chat-completions protocol.

    Attributes:
        answers: Texts to answer with, in order (the last one repeats).
        mode: ``"ok"``, ``"error"`` (HTTP 500), ``"garbage"`` (not JSON) or ``"hang"``.
        model: The model name reported in answers.
        requests: Every JSON body received, with its Authorization header.
    """

    def __init__(self) -> None:
        self.answers: list[str] = ["hello"]
        self.mode = "ok"
        self.model = "fake-openai-model"
        self.requests: list[dict[str, Any]] = []
        self.port = free_tcp_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        body["_authorization"] = request.headers.get("authorization")
        self.requests.append(body)
        if self.mode == "error":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if self.mode == "garbage":
            return PlainTextResponse("<html>not json</html>")
        if self.mode == "hang":
            await asyncio.sleep(30)
        text = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": self.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}},
                ],
            }
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def fake_llm_server() -> Iterator[FakeLLMServer]:
    """A fake OpenAI-compatible server, started for one test."""
    server = FakeLLMServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unused_port() -> int:
    """A TCP port free on 127.0.0.1 when the test starts."""
    return free_tcp_port()


@pytest.fixture
def seed_text() -> str:
    """The seed context stack this project was specified from."""
    from pathlib import Path

    return (Path(__file__).parent / "fixtures" / "context-stack-ctxfy-production.md").read_text(
        encoding="utf-8"
    )


@contextlib.asynccontextmanager
async def _serve_http(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port; yield its base URL.

    Unlike cancelling the server task, ``should_exit`` shuts uvicorn down gracefully, so no
    socket is left open when the test ends.
    """
    port = free_tcp_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def serve_http() -> ServeHttp:
    """Return an async context manager serving an ASGI app over real HTTP on 127.0.0.1."""
    return _serve_http
