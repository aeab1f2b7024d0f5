"""Shared fixtures: a fake OpenAI-compatible LLM server on 127.0.0.1, free ports.

Also a session-wide guard: no log line written during the test session may hold API-key
material (see :class:`KeyMaterialWatch`).
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ctxfy.core.keys import KEY_PATTERN
from ctxfy.testing import free_tcp_port

if TYPE_CHECKING:
    from loguru import Record

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


# --- no key material in any log of the session ------------------------------------------

#: Files tests leave under pytest's base temporary directory that hold a process's logs
#: (``tests/e2e/ctxfy_process.py``, ``tests/reliability/support.py``, the replicas of
#: ``test_ratelimit.py``). Hidden directories (``.npm``, ``.cache``) are tools' caches and
#: are not read.
_LOG_SUFFIXES = (".log", ".jsonl")
_LOG_NAMES = ("stderr.txt", "stdout.txt")


class KeyMaterialWatch:
    """Collects every log line of the session that holds text shaped like an API key.

    It reads records where no test can take it away:

    * **loguru**: a global *patcher* (``logger.configure(patcher=...)``), which sees every
      record before any sink. A sink would not do: ``configure_logging`` and several
      tests call ``logger.remove()``, which drops every sink but keeps the patcher.
    * **standard library logging**: the log-record factory, which sees every record a
      logger creates, whatever handlers tests install or replace.
    * **subprocess logs**: at the end, the log files under pytest's base temporary
      directory (servers started by the e2e and reliability helpers write there).

    Limits: text printed straight to stdout/stderr (not through a logger) is not seen,
    and neither are the local variables a sink with ``diagnose=True`` would render into
    a traceback (ctxfy's own sink sets ``diagnose=False``). Records below every sink's
    level are not seen either, but they are not written anywhere.
    """

    def __init__(self) -> None:
        self.leaks: list[str] = []
        self.records = 0

    def check(self, where: str, text: str) -> None:
        self.records += 1
        if KEY_PATTERN.search(text):
            # Masked, so that the report of a leak does not leak the key once more.
            self.leaks.append(f"{where}: {KEY_PATTERN.sub('<API KEY>', text)[:500]}")

    def loguru_patcher(self, record: "Record") -> None:
        parts = [record["message"], *(str(value) for value in record["extra"].values())]
        if record["exception"] is not None:
            parts.append(repr(record["exception"].value))
        self.check(f"loguru {record['name']}", " ".join(parts))

    def record_factory(self, make: Callable[..., logging.LogRecord]) -> Callable[..., Any]:
        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            try:
                text = record.getMessage()
            except Exception:  # bad %-arguments: the handler will say so; check the parts
                text = f"{record.msg} {record.args}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" {record.exc_info[1]!r}"
            self.check(f"logging {record.name}", text)
            return record

        return factory

    def check_files(self, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if not (path.suffix in _LOG_SUFFIXES or path.name in _LOG_NAMES):
                continue
            if any(part.startswith(".") for part in path.relative_to(root).parts):
                # A tool's own cache under a test's HOME (npm logs the argv of
                # ``npx ... --header "Authorization: Bearer <key>"``), not a server's log.
                continue
            if not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), start=1):
                self.check(f"{path.relative_to(root)}:{number}", line)


@pytest.fixture(scope="session", autouse=True)
def no_key_material_in_logs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KeyMaterialWatch]:
    """Fail the session if any log line written during it holds an API key."""
    watch = KeyMaterialWatch()
    logger.configure(patcher=watch.loguru_patcher)
    make_record = logging.getLogRecordFactory()
    logging.setLogRecordFactory(watch.record_factory(make_record))
    try:
        yield watch
    finally:
        logging.setLogRecordFactory(make_record)
        logger.configure(patcher=lambda _record: None)  # loguru cannot unset a patcher
    watch.check_files(tmp_path_factory.getbasetemp())
    if watch.leaks:
        pytest.fail(
            f"{len(watch.leaks)} log line(s) hold API-key material:\n" + "\n".join(watch.leaks)
        )
