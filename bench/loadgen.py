"""A small asyncio HTTP/1.1 load generator: open loop (fixed rate) and closed loop.

Why not httpx: at a few hundred requests per second the client's own CPU time matters on a
2-core machine, and its pool adds latency of its own. This client writes pre-built request
bytes on kept-alive connections and reads just enough of the answer (status line,
``Content-Length`` or chunked body) to know it is complete.

Open loop: requests are *scheduled* at ``rate`` per second whatever the server does, and
each latency is measured from the scheduled time (so a slow server is not hidden by the
client waiting for it: no coordinated omission). Closed loop: ``connections`` workers each
send the next request as soon as the previous answer arrives (what wrk does); it is used
when wrk is not installed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One request, rendered once to bytes."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def render(self, host: str, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Outcome:
    """What a run produced: latencies of answered requests and counts by status."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed_s: float = 0.0
    late_starts: int = 0

    @property
    def answered(self) -> int:
        return len(self.latencies_s)

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000

    def summary(self) -> dict[str, object]:
        non_2xx = sum(n for s, n in self.statuses.items() if not 200 <= s < 300)
        return {
            "requests": self.answered,
            "elapsed_s": round(self.elapsed_s, 3),
            "rps": round(self.answered / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "p50_ms": round(self.percentile_ms(50), 3),
            "p95_ms": round(self.percentile_ms(95), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "max_ms": round(max(self.latencies_s) * 1000, 3) if self.latencies_s else None,
            "non_2xx": non_2xx,
            "errors": self.errors,
            "late_starts": self.late_starts,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


#: Reconnect a connection idle for longer than this: uvicorn closes idle ones after 5 s,
#: and a request written just as the server closes would be lost (not the server's fault).
MAX_IDLE_S = 4.0


class Connection:
    """One kept-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_used = 0.0

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        if self._writer is not None and now - self._last_used > MAX_IDLE_S:
            self.close()
        self._last_used = now
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request and return (status, body); reconnects when the server closed."""
        reader, writer = await self._open()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length: int | None = None
        chunked = close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            parts: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        else:
            body = await reader.readexactly(length or 0)
        if close:
            self.close()
        self._last_used = time.monotonic()
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def open_loop(
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    rate: float,
    duration_s: float,
    timeout_s: float = 10.0,
) -> Outcome:
    """Send ``rate`` requests per second for ``duration_s``, cycling through ``requests``."""
    raws = [r.render(host, port) for r in requests]
    idle: list[Connection] = [Connection(host, port) for _ in range(8)]
    outcome = Outcome()
    tasks: set[asyncio.Task[None]] = set()

    async def one(raw: bytes, scheduled: float) -> None:
        conn = idle.pop() if idle else Connection(host, port)
        try:
            status, _ = await asyncio.wait_for(conn.send(raw), timeout_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            outcome.errors += 1
            conn.close()
            return
        outcome.latencies_s.append(time.perf_counter() - scheduled)
        outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
        idle.append(conn)

    loop_start = time.perf_counter()
    total = int(rate * duration_s)
    for i in range(total):
        scheduled = loop_start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.002:
            outcome.late_starts += 1
        task = asyncio.create_task(one(raws[i % len(raws)], scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    outcome.elapsed_s = time.perf_counter() - loop_start
    for conn in idle:
        conn.close()
    return outcome


async def closed_loop(
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    connections: int,
    duration_s: float,
    timeout_s: float = 10.0,
) -> Outcome:
    """Keep ``connections`` requests in flight for ``duration_s`` (like wrk)."""
    raws = [r.render(host, port) for r in requests]
    outcome = Outcome()
    deadline = time.perf_counter() + duration_s

    async def worker(offset: int) -> None:
        conn = Connection(host, port)
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(conn.send(raws[i % len(raws)]), timeout_s)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                outcome.errors += 1
                conn.close()
                continue
            outcome.latencies_s.append(time.perf_counter() - started)
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
            i += 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    outcome.elapsed_s = time.perf_counter() - started
    return outcome
