"""Start and stop the two servers under test, and read their resident memory."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """Prefix ``command`` with ``taskset -c cpu`` when asked and available."""
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def get_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """Return the status of ``GET path``, or ``None`` when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


class Server:
    """A server process: A (bare FastMCP) or B (``python -m ctxfy``)."""

    def __init__(self, kind: str, workdir: Path, *, cpu: int | None = None) -> None:
        self.kind = kind
        self.workdir = workdir
        self.cpu = cpu
        self.port = free_port()
        self.key: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"server-{kind}.log"
        self.ready_s: float | None = None
        self._log: IO[bytes] | None = None
        self.env = dict(os.environ)
        if kind == "B":
            data = workdir / "data-B"
            self.env |= {
                "CTXFY_DATA_DIR": str(data),
                "CTXFY_PORT": str(self.port),
                "CTXFY_STATELESS_HTTP": "true",
                "CTXFY_JSON_RESPONSE": "true",
                "CTXFY_RATE_LIMIT": "1000000/minute",
                "CTXFY_LOG_FORMAT": "json",
                "CTXFY_LOG_LEVEL": "INFO",
            }

    def create_key(self) -> str:
        """Create a write-scoped key in B's store with the CLI (before the server starts)."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctxfy",
                "keys",
                "create",
                "--name",
                "bench",
                "--scope",
                "write",
                "--json",
            ],
            env=self.env,
            capture_output=True,
            check=True,
        )
        self.key = str(json.loads(out.stdout)["key"])
        return self.key

    def command(self) -> list[str]:
        if self.kind == "A":
            return [sys.executable, str(BENCH / "bare_server.py"), str(self.port)]
        return [sys.executable, "-m", "ctxfy"]

    def start(self, timeout: float = 60.0) -> float:
        """Start the process; return seconds from spawn to the first ``200`` from ``/ready``."""
        self._log = self.log_path.open("ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            pinned(self.command(), self.cpu),
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.kind} exited; see {self.log_path}")
            if get_status(self.port, "/ready", timeout=0.5) == 200:
                self.ready_s = time.perf_counter() - started
                return self.ready_s
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"server {self.kind} was not ready within {timeout} s")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("not started")
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, return the exit code."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def request_log_lines(self) -> int:
        """Number of request lines (``mcp.request`` / ``http.request``) B wrote."""
        count = 0
        with self.log_path.open(encoding="utf-8", errors="replace") as log:
            for line in log:
                if '"event": "mcp.request"' in line or '"event": "http.request"' in line:
                    count += 1
        return count
