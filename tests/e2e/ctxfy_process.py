"""The real ``python -m ctxfy`` process for REST and docs end-to-end tests."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest


@attrs.frozen
class CtxfyProcess:
    """A running server: its base URL, its bootstrap admin key and its log file."""

    base: str
    admin_key: str
    log: Path

    def create_key(self, scope: str) -> str:
        """Create a key through ``POST /v1/keys`` and return its text."""
        response = httpx.post(
            f"{self.base}/v1/keys",
            json={"name": f"e2e {scope}", "scope": scope},
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key


@contextlib.contextmanager
def ctxfy_process(tmp_path: Path, port: int, **env: str) -> Iterator[CtxfyProcess]:
    """Start ``python -m ctxfy`` on 127.0.0.1:``port`` and stop it with SIGTERM.

    Its output goes to a file, not a pipe: a busy server must never block on a full pipe.
    """
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    environment = {
        **os.environ,
        "CTXFY_DATA_DIR": str(data_dir),
        "CTXFY_HOST": "127.0.0.1",
        "CTXFY_PORT": str(port),
        **env,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "ctxfy"], env=environment, stdout=output, stderr=output
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(process, base, log)
            admin_key = (data_dir / "bootstrap-admin.key").read_text(encoding="utf-8").strip()
            yield CtxfyProcess(base, admin_key, log)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    """Return once ``base``/ready answers 200; fail the test if the process exits or 30 s pass."""
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited early: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("server did not become ready in 30 s")
        time.sleep(0.1)
