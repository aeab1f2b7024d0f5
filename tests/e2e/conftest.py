"""Fixtures for end-to-end tests: the real ``python -m ctxfy`` process."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


@pytest.fixture
def server(tmp_path: Path, unused_port: int) -> Iterator[tuple[str, str]]:
    port = unused_port
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "CTXFY_DATA_DIR": str(data_dir),
        "CTXFY_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ctxfy"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            _out, err = process.communicate()
            pytest.fail(f"server exited early: {err.decode(errors='replace')}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.communicate()
            pytest.fail("server did not become ready in 30 s")
        time.sleep(0.1)
    # First start on loopback with an empty key store: the bootstrap admin key is in a file.
    key_file = data_dir / "bootstrap-admin.key"
    try:
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        yield base, key_file.read_text(encoding="utf-8").strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            _out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        assert process.returncode == 0, err.decode(errors="replace")
