"""Shared pieces of the reliability suite: real ctxfy processes, Redis, a fake LLM, clients.

Every server here is the real ``python -m ctxfy`` in its own process, configured only
through ``CTXFY_*`` variables, with its JSON log lines (stdout) in a file the test reads
afterwards. Every HTTP response the tests receive is *tracked*: its ``X-Request-ID`` is
kept, so that the log and the metrics can be reconciled with what the clients saw.

Durations are bounded and documented where they are set; tolerances for timing checks are
generous because CI runs on two shared cores (see ``docs/reliability.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ctxfy.testing import free_tcp_port

ROOT = Path(__file__).resolve().parents[2]
SEED_STACK = (ROOT / "tests" / "fixtures" / "context-stack-ctxfy-production.md").read_text(
    encoding="utf-8"
)

#: Extra time allowed on top of a documented bound, for a loaded 2-core CI machine.
CI_TOLERANCE_S = 0.5

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}

#: The configuration every server of the suite starts from (load-run settings; probes are
#: logged at INFO so that every response can be matched with its log line).
BASE_ENV = {
    "CTXFY_LOG_HEALTH_CHECKS": "true",
    "CTXFY_HOST": "127.0.0.1",
    "CTXFY_STATELESS_HTTP": "true",
    "CTXFY_JSON_RESPONSE": "true",
    "CTXFY_LOG_FORMAT": "json",
    "CTXFY_LOG_LEVEL": "INFO",
}


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    """A JSON-RPC request object."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


def bearer(key: str) -> dict[str, str]:
    """MCP headers with ``Authorization: Bearer <key>``."""
    return {**MCP_HEADERS, "Authorization": f"Bearer {key}"}


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


class Tracker:
    """Collects the ``X-Request-ID`` of every response a test received (thread-safe)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._lock = threading.Lock()

    def add(self, response: httpx.Response) -> None:
        request_id = response.headers.get("x-request-id")
        if request_id is not None:
            with self._lock:
                self.ids.append(request_id)

    async def add_async(self, response: httpx.Response) -> None:
        self.add(response)

    def client(self, **kwargs: Any) -> httpx.Client:
        """A sync client whose responses are tracked."""
        return httpx.Client(event_hooks={"response": [self.add]}, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An async client whose responses are tracked."""
        return httpx.AsyncClient(event_hooks={"response": [self.add_async]}, **kwargs)


class CtxfyServer:
    """One ``python -m ctxfy`` process on 127.0.0.1.

    Args:
        workdir: Directory for its data, stdout (JSON log) and stderr files.
        env: ``CTXFY_*`` settings on top of :data:`BASE_ENV`.
        tracker: Receives the request ids of the readiness polls and admin calls.
    """

    def __init__(self, workdir: Path, env: dict[str, str], tracker: Tracker | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_tcp_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / "data"
        self.log_path = workdir / "stdout.jsonl"
        self.err_path = workdir / "stderr.txt"
        self.tracker = tracker if tracker is not None else Tracker()
        self.env = {
            **os.environ,
            **BASE_ENV,
            "CTXFY_DATA_DIR": str(self.data_dir),
            "CTXFY_PORT": str(self.port),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float = 30.0) -> CtxfyServer:
        """Start the process and wait until ``/ready`` answers 200."""
        with self.log_path.open("ab") as out, self.err_path.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ctxfy"], env=self.env, stdout=out, stderr=err
            )
        deadline = time.monotonic() + timeout_s
        with self.tracker.client(timeout=2) as client:
            while True:
                if self.process.poll() is not None:
                    pytest.fail(f"ctxfy exited at start: {self.stderr()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.base}/ready").status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"ctxfy not ready in {timeout_s} s: {self.stderr()[-3000:]}")
                time.sleep(0.05)

    def admin_key(self) -> str:
        """The bootstrap admin key written on first start with an empty key store."""
        return (self.data_dir / "bootstrap-admin.key").read_text(encoding="utf-8").strip()

    def create_key(
        self, scope: str, *, admin_key: str | None = None, rate_limit: str | None = None
    ) -> tuple[str, str]:
        """Create a key through ``POST /v1/keys``; return ``(key_id, key)``."""
        body: dict[str, Any] = {"name": f"reliability {scope}", "scope": scope}
        if rate_limit is not None:
            body["rate_limit"] = rate_limit
        with self.tracker.client(timeout=10) as client:
            response = client.post(
                f"{self.base}/v1/keys",
                json=body,
                headers={"Authorization": f"Bearer {admin_key or self.admin_key()}"},
            )
        assert response.status_code == 201, response.text
        data = response.json()
        return str(data["key_id"]), str(data["key"])

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        """Wait for the process to exit; return its exit code."""
        assert self.process is not None
        self.exit_code = self.process.wait(timeout=timeout_s)
        return self.exit_code

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait (SIGKILL when it does not exit in time)."""
        if self.process is None:
            return -1
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON line the server wrote to stdout (fails on a line that is not JSON)."""
        records = []
        for number, line in enumerate(self.log_path.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    pytest.fail(f"log line {number + 1} is not JSON: {line[:200]!r}")
        return records

    def request_lines(self) -> list[dict[str, Any]]:
        """The request lines (``mcp.request`` and ``http.request``)."""
        return [r for r in self.log_records() if r.get("event") in ("mcp.request", "http.request")]

    def metrics(self, key: str) -> dict[str, float]:
        """Scrape ``/metrics`` (tracked) into ``{"name{labels}": value}``."""
        with self.tracker.client(timeout=10) as client:
            response = client.get(
                f"{self.base}/metrics", headers={"Authorization": f"Bearer {key}"}
            )
        assert response.status_code == 200, response.text
        return parse_prometheus(response.text)


# Label values may contain braces (``http_route="/v1/prompts/{name}"``): labels run to the
# last ``}`` of the line.
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\d+)?$")


def parse_prometheus(text: str) -> dict[str, float]:
    """Parse Prometheus text into ``{"name{labels}": value}`` (comments skipped)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def metric_sum(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for series, value in samples.items():
        metric, _, rest = series.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


@contextlib.contextmanager
def ctxfy_server(
    workdir: Path, env: dict[str, str] | None = None, tracker: Tracker | None = None
) -> Iterator[CtxfyServer]:
    """A started :class:`CtxfyServer`, stopped (SIGTERM, then SIGKILL) at the end."""
    server = CtxfyServer(workdir, env or {}, tracker)
    try:
        yield server.start()
    finally:
        if server.process is not None and server.process.poll() is None:
            try:
                server.stop()
            except subprocess.TimeoutExpired:
                server.kill()


class RedisServer:
    """A ``redis-server`` on a fixed port that a test can stop and start again.

    Keys survive a restart: the append-only file is on, written on every command.
    """

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_tcp_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


class FakeLLM:
    """An OpenAI-compatible chat-completions server in a thread, with fault modes.

    ``mode``: ``ok`` (answers ``answer``), ``slow`` (the same after ``delay_s``), ``error``
    (HTTP 500), ``garbage`` (not JSON) or ``hang`` (sleeps ``hang_s`` before answering).
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.answer = SEED_STACK
        self.delay_s = 2.0
        self.hang_s = 60.0
        self.calls = 0
        self.port = free_tcp_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    async def _chat(self, request: Request) -> Response:
        await request.body()
        self.calls += 1
        if self.mode == "error":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if self.mode == "garbage":
            return PlainTextResponse("<html>not json</html>")
        if self.mode == "hang":
            await asyncio.sleep(self.hang_s)
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "fake-reliability-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.answer}}],
            }
        )

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def assert_logged_once(server: CtxfyServer, ids: list[str]) -> None:
    """Every id in ``ids`` appears on exactly one request line of ``server``'s log."""
    counts: dict[str, int] = {}
    for line in server.request_lines():
        counts[line["request_id"]] = counts.get(line["request_id"], 0) + 1
    missing = [i for i in ids if counts.get(i, 0) == 0]
    repeated = [i for i in ids if counts.get(i, 0) > 1]
    assert not missing, f"{len(missing)} responses have no request line, e.g. {missing[:3]}"
    assert not repeated, f"{len(repeated)} responses have several request lines: {repeated[:3]}"
