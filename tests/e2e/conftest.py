"""Fixtures for end-to-end tests: the real ``python -m ctxfy`` process."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.ctxfy_process import wait_ready


@pytest.fixture
def server(tmp_path: Path, unused_port: int) -> Iterator[tuple[str, str]]:
    port = unused_port
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "CTXFY_DATA_DIR": str(data_dir),
        "CTXFY_PORT": str(port),
    }
    # Output goes to a file, not a pipe: a busy server must never block on a full pipe.
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "ctxfy"], env=env, stdout=output, stderr=output
        )
        base = f"http://127.0.0.1:{port}"
        # First start on loopback with an empty key store: the bootstrap admin key is in a file.
        key_file = data_dir / "bootstrap-admin.key"
        try:
            wait_ready(process, base, log)
            assert oct(key_file.stat().st_mode & 0o777) == "0o600"
            yield base, key_file.read_text(encoding="utf-8").strip()
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
            assert process.returncode == 0, _tail(log)


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-2000:]
