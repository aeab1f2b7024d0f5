"""ctxfy's benchmark: ctxfy with everything on (B) against bare FastMCP 3 (A), same run.

One command: ``python bench/run.py`` (full, about 15 minutes) or ``python bench/run.py
--smoke`` (under a minute; proves the benchmark still works, its figures mean nothing).
Results go to ``bench/results/`` (``--out``): ``results.json``, ``results.md`` and
``results.png``. See ``docs/performance.md`` for the method and the latest figures.

Method, in short:

- A and B run side by side, both pinned to CPU 0 (``taskset``); the load generators (wrk,
  and this runner for the open loop) are pinned to CPU 1, so each server gets one core, as
  one uvicorn process would use.
  Measurements alternate A and B for each endpoint, so a change in background load hits
  both alike; each figure is the median of ``--rounds`` rounds.
- Both serve stateless HTTP with JSON responses (``CTXFY_STATELESS_HTTP``,
  ``CTXFY_JSON_RESPONSE``): one POST is one complete MCP request, without a session
  handshake or an SSE stream, which is how a load-balanced fleet is deployed and what wrk
  can replay.
- Saturation throughput: closed loop with wrk (``-t1``), 16 and 64 connections. Latency:
  open loop at a fixed rate (100 req/s), measured from each request's scheduled time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import breakdown
import inprocess
import loadgen
import payloads
from servers import Server, pinned

BENCH = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH / "wrk" / "request.lua"

TARGETS = {
    "throughput_ratio_min": 0.85,
    "prompts_get_p95_ms_max": 10.0,
    "health_p95_ms_max": 5.0,
    "key_verifications_per_s_min": 50_000,
    "ready_s_max": 2.0,
}
SEED_TARGETS = {
    "prompt_p95_ms_max": 200.0,
    "concurrent_requests_min": 1000,
    "key_validations_per_s_min": 5_000,
    "availability_min": 0.999,
}


def machine() -> dict[str, Any]:
    """Where the figures were taken."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    versions = {}
    for package in ("ctxfy", "fastmcp", "mcp", "uvicorn", "starlette", "pydantic", "limits"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    wrk = shutil.which("wrk")
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": subprocess.run(
            [wrk, "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0]
        if wrk
        else None,
    }


class RssSampler:
    """Samples a process's resident memory every 0.25 s while active."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def sampling(self) -> Iterator[None]:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.server.rss_kib())
            self._stop.wait(0.25)


def run_wrk(server: Server, endpoint: str, connections: int, duration_s: float) -> dict[str, Any]:
    """Closed-loop run with wrk pinned to CPU 1."""
    request = payloads.request(endpoint, server.key)
    with tempfile.NamedTemporaryFile("wb", suffix=".body", delete=False) as body_file:
        body_file.write(request.body)
    env = {
        **os.environ,
        "WRK_METHOD": request.method,
        "WRK_BODY_FILE": body_file.name,
        "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in request.headers),
    }
    threads = "2" if connections > 64 else "1"
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{server.port}{request.path}",
    ]
    try:
        out = subprocess.run(
            pinned(command, 1 if server.cpu is not None else None),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(body_file.name)
    match = re.search(r"^WRKJSON (.*)$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    errors = data["errors"]
    return {
        "tool": "wrk",
        "connections": connections,
        "requests": data["requests"],
        "elapsed_s": round(seconds, 3),
        "rps": round(data["requests"] / seconds, 1),
        "p50_ms": round(data["p50_us"] / 1000, 3),
        "p99_ms": round(data["p99_us"] / 1000, 3),
        "non_2xx": errors["status"],
        "errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
    }


def run_closed(
    server: Server, endpoint: str, connections: int, duration_s: float
) -> dict[str, Any]:
    """Closed-loop run: wrk when installed, else the Python load generator."""
    if shutil.which("wrk"):
        return run_wrk(server, endpoint, connections, duration_s)
    outcome = asyncio.run(
        loadgen.closed_loop(
            "127.0.0.1",
            server.port,
            [payloads.request(endpoint, server.key)],
            connections=connections,
            duration_s=duration_s,
        )
    )
    return {"tool": "python", "connections": connections, **outcome.summary()}


def run_open(server: Server, endpoint: str, rate: float, duration_s: float) -> dict[str, Any]:
    outcome = asyncio.run(
        loadgen.open_loop(
            "127.0.0.1",
            server.port,
            [payloads.request(endpoint, server.key)],
            rate=rate,
            duration_s=duration_s,
        )
    )
    return {"rate": rate, **outcome.summary()}


async def _one(server: Server, endpoint: str) -> tuple[int, bytes]:
    conn = loadgen.Connection("127.0.0.1", server.port)
    try:
        raw = payloads.request(endpoint, server.key).render("127.0.0.1", server.port)
        return await conn.send(raw)
    finally:
        conn.close()


def check_endpoint(server: Server, endpoint: str) -> str | None:
    """Return why ``endpoint`` does not answer as expected on ``server`` (``None`` if fine)."""
    status, body = asyncio.run(_one(server, endpoint))
    return payloads.answer_ok(endpoint, status, body)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput, with every round's throughput attached."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rounds_rps"] = [r["rps"] for r in runs]
    return chosen


def measure_endpoint(
    args: argparse.Namespace,
    endpoint: str,
    servers: dict[str, Server],
    samplers: dict[str, RssSampler],
) -> dict[str, Any]:
    """Closed-loop throughput (alternating A and B) and open-loop latency of one endpoint."""
    result: dict[str, Any] = {"closed": {}, "open": {}}
    for server in servers.values():  # warm-up
        run_closed(server, endpoint, 16, args.warmup)
    for connections in args.connections:
        rounds: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        for _ in range(args.rounds):
            for kind, server in servers.items():
                with samplers[kind].sampling():
                    rounds[kind].append(run_closed(server, endpoint, connections, args.duration))
        entry = {kind: median_run(runs) for kind, runs in rounds.items()}
        entry["ratio_B_over_A"] = round(entry["B"]["rps"] / entry["A"]["rps"], 3)
        result["closed"][f"c{connections}"] = entry
        print(
            f"{endpoint:12} c{connections:<4} A {entry['A']['rps']:8.1f}/s  "
            f"B {entry['B']['rps']:8.1f}/s  B/A {entry['ratio_B_over_A']:.3f}",
            flush=True,
        )
    # Open loop: rounds alternating A and B too; the round with the median p95 is kept, so a
    # burst of activity from another process spoils one round, not the figure.
    open_rounds: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for _ in range(args.rounds):
        for kind, server in servers.items():
            open_rounds[kind].append(
                run_open(server, endpoint, args.rate, args.open_duration / args.rounds)
            )
    for kind, runs in open_rounds.items():
        ordered = sorted(runs, key=lambda r: r["p95_ms"])
        result["open"][kind] = {
            **ordered[len(ordered) // 2],
            "rounds_p95_ms": [r["p95_ms"] for r in runs],
        }
    print(
        f"{endpoint:12} {args.rate:g}/s  p95 A {result['open']['A']['p95_ms']:.2f} ms"
        f"  B {result['open']['B']['p95_ms']:.2f} ms",
        flush=True,
    )
    return result


def measure_servers(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start A and B side by side and measure every endpoint on both."""
    cpu = None if args.no_pin else 0
    servers = {kind: Server(kind, workdir, cpu=cpu) for kind in ("A", "B")}
    servers["A"].key = servers["B"].create_key()  # A ignores it; the bytes sent are the same
    samplers = {kind: RssSampler(s) for kind, s in servers.items()}
    out: dict[str, Any] = {"servers": {}, "endpoints": {}}
    try:
        for server in servers.values():
            server.start()
        time.sleep(1.0)
        for kind, server in servers.items():
            out["servers"][kind] = {
                "first_ready_s": round(server.ready_s or 0, 3),
                "rss_idle_mib": round(server.rss_kib() / 1024, 1),
            }
        for endpoint in args.endpoints:
            problems = {k: check_endpoint(s, endpoint) for k, s in servers.items()}
            if any(problems.values()):
                out["endpoints"][endpoint] = {"skipped": problems}
                print(f"skip {endpoint}: {problems}", flush=True)
                continue
            out["endpoints"][endpoint] = measure_endpoint(args, endpoint, servers, samplers)
        if args.concurrency:
            out["concurrency"] = {}
            for kind, server in servers.items():
                with samplers[kind].sampling():
                    # Long enough for 1000 connections to get past their first requests.
                    out["concurrency"][kind] = run_closed(
                        server, "prompts_get", args.concurrency, max(15.0, args.duration)
                    )
            print(f"c{args.concurrency}: {out['concurrency']}", flush=True)
        for kind, server in servers.items():
            out["servers"][kind]["rss_peak_under_load_mib"] = round(
                samplers[kind].peak_kib / 1024, 1
            )
            out["servers"][kind]["rss_after_load_mib"] = round(server.rss_kib() / 1024, 1)
    finally:
        for kind, server in servers.items():
            out["servers"].setdefault(kind, {})["exit_code"] = server.stop()
    out["servers"]["B"]["request_log_lines"] = servers["B"].request_log_lines()
    return out


def measure_startup(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Seconds from spawn to a ready ``/ready``, for fresh processes (key store exists)."""
    out: dict[str, Any] = {}
    for kind in ("A", "B"):
        times = []
        for _ in range(args.startup_runs):
            server = Server(kind, workdir, cpu=None if args.no_pin else 0)
            if kind == "B":
                server.create_key()
            try:
                times.append(server.start())
            finally:
                server.stop()
        out[kind] = {
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "runs_s": [round(t, 3) for t in times],
        }
    return out


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    """Each target with the measured figure and whether it is met."""
    endpoints = results["load"]["endpoints"]
    ratios = {
        f"{name}/{conns}": entry["ratio_B_over_A"]
        for name, data in endpoints.items()
        if "closed" in data
        for conns, entry in data["closed"].items()
    }
    min_ratio = min(ratios.values()) if ratios else None
    prompt_p95 = endpoints.get("prompts_get", {}).get("open", {}).get("B", {}).get("p95_ms")
    health_p95 = endpoints.get("health", {}).get("open", {}).get("B", {}).get("p95_ms")
    verify = results["inprocess"]["key_verification"]["sqlite_cached"]["per_second"]
    ready = results["startup"]["B"]["median_s"]
    concurrency = results["load"].get("concurrency", {}).get("B")

    def check(value: float | None, limit: float, *, minimum: bool) -> dict[str, Any]:
        met = None if value is None else (value >= limit if minimum else value <= limit)
        return {"measured": value, "target": limit, "met": met}

    goals = {
        "throughput_ratio_min": check(min_ratio, TARGETS["throughput_ratio_min"], minimum=True),
        "prompts_get_p95_ms": check(prompt_p95, TARGETS["prompts_get_p95_ms_max"], minimum=False),
        "health_p95_ms": check(health_p95, TARGETS["health_p95_ms_max"], minimum=False),
        "key_verifications_per_s": check(
            verify, TARGETS["key_verifications_per_s_min"], minimum=True
        ),
        "ready_s": check(ready, TARGETS["ready_s_max"], minimum=False),
    }
    seed = {
        "prompt_p95_ms": check(prompt_p95, SEED_TARGETS["prompt_p95_ms_max"], minimum=False),
        "key_validations_per_s": check(
            verify, SEED_TARGETS["key_validations_per_s_min"], minimum=True
        ),
    }
    if concurrency:
        ok = concurrency["errors"] == 0 and concurrency["non_2xx"] == 0
        seed["concurrent_requests"] = {
            "measured": concurrency["connections"] if ok else 0,
            "target": SEED_TARGETS["concurrent_requests_min"],
            "met": ok and concurrency["connections"] >= SEED_TARGETS["concurrent_requests_min"],
        }
    return {"ratios": ratios, "targets": goals, "seed_targets": seed}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}" if value < 100 else f"{value:,.0f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def _md_header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    mode = "smoke: figures not meaningful" if results["smoke"] else "full"
    generator = m["wrk"] or "python (bench/loadgen.py)"
    return [
        "# ctxfy benchmark results",
        "",
        f"Run {results['started_at']} ({mode}).",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['platform']}; "
        f"Python {m['python']}; fastmcp {m['packages']['fastmcp']}, mcp {m['packages']['mcp']}, "
        f"uvicorn {m['packages']['uvicorn']}; load generator: {generator}.",
        f"Load average (1/5/15 min): before {results['loadavg_before']}, after "
        f"{results['loadavg_after']}.",
        "",
        "A = bare FastMCP 3 (same prompt and tool, no middleware); B = ctxfy `build_server()` "
        "with auth, scopes, rate limit, validation, JSON logs to a file, metrics.",
        "",
    ]


def _md_load(results: dict[str, Any]) -> list[str]:
    endpoints = results["load"]["endpoints"]
    lines = [
        "## Saturation throughput (closed loop, requests/s)",
        "",
        "| endpoint | connections | A req/s | B req/s | B/A | A p99 ms | B p99 ms | B errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in endpoints.items():
        if "skipped" in data:
            lines.append(f"| {name} | - | skipped: {data['skipped']} | | | | | |")
            continue
        for conns, e in data["closed"].items():
            lines.append(
                f"| {name} | {conns[1:]} | {_fmt(e['A']['rps'])} | {_fmt(e['B']['rps'])} | "
                f"{e['ratio_B_over_A']:.2f} | {_fmt(e['A']['p99_ms'])} | "
                f"{_fmt(e['B']['p99_ms'])} | {e['B']['errors'] + e['B']['non_2xx']} |"
            )
    lines += [
        "",
        f"## Latency at a fixed offered load (open loop, {results['args']['rate']:g} req/s)",
        "",
        "| endpoint | A p50 | A p95 | A p99 | B p50 | B p95 | B p99 | B non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in endpoints.items():
        if "open" in data:
            a, b = data["open"]["A"], data["open"]["B"]
            lines.append(
                f"| {name} | {a['p50_ms']:.2f} | {a['p95_ms']:.2f} | {a['p99_ms']:.2f} | "
                f"{b['p50_ms']:.2f} | {b['p95_ms']:.2f} | {b['p99_ms']:.2f} | "
                f"{b['non_2xx'] + b['errors']} |"
            )
    lines += ["", "Milliseconds, measured from each request's scheduled send time.", ""]
    if "concurrency" in results["load"]:
        c = results["load"]["concurrency"]
        lines += [
            f"## {c['B']['connections']} concurrent connections (prompts/get, closed loop)",
            "",
            "| server | req/s | p50 ms | p99 ms | errors | non-2xx |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for kind in ("A", "B"):
            r = c[kind]
            lines.append(
                f"| {kind} | {_fmt(r['rps'])} | {_fmt(r['p50_ms'])} | {_fmt(r['p99_ms'])} | "
                f"{r['errors']} | {r['non_2xx']} |"
            )
        lines.append("")
    return lines


def _md_process(results: dict[str, Any]) -> list[str]:
    s, st = results["load"]["servers"], results["startup"]
    lines = [
        "## Start-up and memory",
        "",
        "| server | ready (median of runs) | ready max | RSS idle MiB | RSS peak under load MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in ("A", "B"):
        lines.append(
            f"| {kind} | {st[kind]['median_s']:.2f} s | {st[kind]['max_s']:.2f} s | "
            f"{s[kind]['rss_idle_mib']} | {s[kind].get('rss_peak_under_load_mib')} |"
        )
    lines += ["", "## In-process costs", "", "| operation | µs per call | per second |"]
    lines.append("|---|---:|---:|")
    for name, r in results["inprocess"]["key_verification"].items():
        lines.append(
            f"| key verification, {name.replace('_', ', ')} | {r['us_per_call']} | "
            f"{r['per_second']:,} |"
        )
    for name, r in results["inprocess"]["core"].items():
        lines.append(f"| {name} | {r['us_per_call']} | {round(1e6 / r['us_per_call']):,} |")
    b = results["breakdown"]
    lines += [
        "",
        "## Where B's extra time per request goes",
        "",
        f"In process (no sockets), CPU per `prompts/get`: A {b['A_us']:.0f} µs, "
        f"B {b['B_us']:.0f} µs, difference {b['overhead_us']:.0f} µs. Each step switches one "
        "more feature off, from B down to ctxfy's prompt on plain FastMCP, then A; a step's "
        "cost is the time it saves, and the costs add up to the difference.",
        "",
        "| step: switched off | cost µs |",
        "|---|---:|",
    ]
    lines += [
        f"| {name}: {f['switched_off']} | {f['cost_us']:.0f} |" for name, f in b["features"].items()
    ]
    return lines


def _md_targets(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Targets", "", "| target | measured | goal | met |", "|---|---:|---:|---|"]
    for group in ("targets", "seed_targets"):
        for name, t in results["evaluation"][group].items():
            met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
            label = f"{name} ({'seed' if group == 'seed_targets' else 'ctxfy'})"
            lines.append(f"| {label} | {_fmt(t['measured'])} | {_fmt(t['target'])} | {met} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    sections = (_md_header, _md_load, _md_process, _md_targets)
    return "\n".join(line for section in sections for line in section(results)) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    endpoints = {
        n: d for n, d in results["load"]["endpoints"].items() if "closed" in d and "open" in d
    }
    names = list(endpoints)
    conns = list(next(iter(endpoints.values()))["closed"]) if endpoints else []
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / max(1, len(conns))
    for i, c in enumerate(conns):
        ratios = [endpoints[n]["closed"][c]["ratio_B_over_A"] for n in names]
        bars = left.bar(
            [x + (i - (len(conns) - 1) / 2) * width for x in range(len(names))],
            ratios,
            width,
            label=f"{c[1:]} connections",
            color=("#2f5d9b", "#c4561d", "#7a9a3a")[i % 3],
        )
        for bar, n in zip(bars, names, strict=True):
            entry = endpoints[n]["closed"][c]
            left.annotate(
                f"{entry['ratio_B_over_A']:.2f}\n{entry['B']['rps']:,.0f}/{entry['A']['rps']:,.0f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    left.axhline(0.85, color="#444444", linestyle="--", linewidth=1, label="target 0.85")
    left.set_ylim(0, 1.25)
    left.set_ylabel("B/A saturation throughput")
    left.set_title("Throughput of ctxfy relative to bare FastMCP (labels: ratio, B/A req/s)")
    left.set_xticks(range(len(names)), names)
    left.legend(fontsize=7, loc="upper right")
    for j, kind in enumerate(("A", "B")):
        values = [endpoints[n]["open"][kind]["p95_ms"] for n in names]
        right.bar(
            [x + (j - 0.5) * 0.4 for x in range(len(names))],
            values,
            0.4,
            label=f"{'A bare' if kind == 'A' else 'B ctxfy'} p95",
            color=("#9db4d3", "#2f5d9b")[j],
        )
    right.axhline(
        10, color="#c4561d", linestyle="--", linewidth=1, label="prompts/get target 10 ms"
    )
    right.axhline(5, color="#7a9a3a", linestyle=":", linewidth=1, label="/health target 5 ms")
    right.set_xticks(range(len(names)), names)
    right.set_ylabel("ms")
    right.set_title(f"p95 latency at {results['args']['rate']:g} req/s (open loop)")
    right.legend(fontsize=7)
    m = results["machine"]
    fig.suptitle(
        f"ctxfy vs bare FastMCP - {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, "
        f"load avg before {results['loadavg_before'][0]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny durations: check it works")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--duration", type=float, help="seconds per closed-loop run (10)")
    parser.add_argument("--rounds", type=int, help="alternating A/B rounds per figure (3)")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop rate (100/s)")
    parser.add_argument("--open-duration", type=float, help="seconds per open-loop run (30)")
    parser.add_argument("--connections", type=int, nargs="+", help="closed-loop connections")
    parser.add_argument("--concurrency", type=int, help="one run at this many connections")
    parser.add_argument("--startup-runs", type=int, help="fresh starts timed per server (5)")
    parser.add_argument("--endpoints", nargs="+", default=list(payloads.ENDPOINTS))
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs with taskset")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only write results.md and the chart again from results.json in --out",
    )
    parser.add_argument(
        "--update-breakdown",
        action="store_true",
        help="only measure the cost breakdown again, into the existing results in --out",
    )
    parser.add_argument(
        "--docs-chart",
        type=Path,
        default=BENCH.parent / "docs" / "assets" / "performance.png",
        help="where a full run also copies the chart for docs/performance.md",
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    defaults = {
        "duration": 1.0 if smoke else 10.0,
        "rounds": 1 if smoke else 3,
        "open_duration": 1.0 if smoke else 30.0,
        "connections": [16] if smoke else [16, 64],
        "concurrency": 0 if smoke else 1000,
        "startup_runs": 1 if smoke else 5,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.warmup = 1.0 if smoke else 3.0
    return args


def write(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Write results.json, results.md and results.png (and the docs chart)."""
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / "results.md").write_text(markdown(results), encoding="utf-8")
    chart(results, args.out / "results.png")
    if args.docs_chart is not None and not results["smoke"]:
        args.docs_chart.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "results.png", args.docs_chart)


def failures(results: dict[str, Any]) -> list[str]:
    """What went wrong in a run: skipped endpoints, failed requests, unclean exits.

    Throughput and latency are never judged here (see ``evaluate``); these are the
    faults that make a run's figures meaningless, so the run exits non-zero on them.
    """
    found: list[str] = []
    load = results.get("load", {})
    for endpoint, entry in load.get("endpoints", {}).items():
        if "skipped" in entry:
            found.append(f"{endpoint}: not measured, the check request failed: {entry['skipped']}")
            continue
        runs = [
            (f"closed {c}", run)
            for c, pair in entry["closed"].items()
            for run in pair.values()
            if isinstance(run, dict)
        ]
        runs += [("open", run) for run in entry["open"].values()]
        for label, run in runs:
            bad = run["errors"] + run["non_2xx"]
            if bad:
                found.append(f"{endpoint} {label}: {bad} failed requests")
    # ctxfy exits 0 on SIGTERM; bare uvicorn re-raises the signal after its clean shutdown.
    clean = {"A": (0, -signal.SIGTERM, None), "B": (0, None)}
    for kind, server in load.get("servers", {}).items():
        if server.get("exit_code") not in clean[kind]:
            found.append(f"server {kind} exited with {server['exit_code']}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render_only:
        write(json.loads((args.out / "results.json").read_text(encoding="utf-8")), args)
        return 0
    if args.update_breakdown:
        results = json.loads((args.out / "results.json").read_text(encoding="utf-8"))
        results["breakdown"] = breakdown.measure(smoke=args.smoke)
        results["breakdown"]["loadavg"] = [round(x, 2) for x in os.getloadavg()]
        write(results, args)
        print(markdown(results))
        return 0
    if not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        # The runner (open-loop client, in-process figures) stays off the servers' CPU 0.
        os.sched_setaffinity(0, {1})
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "targets": TARGETS,
        "seed_targets": SEED_TARGETS,
    }
    print(f"machine: {results['machine']['cpu']}, load {results['loadavg_before']}", flush=True)
    results["inprocess"] = inprocess.measure(smoke=args.smoke)
    results["breakdown"] = breakdown.measure(smoke=args.smoke)
    results["breakdown"]["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print("in-process: done", flush=True)
    with tempfile.TemporaryDirectory(prefix="ctxfy-bench-") as tmp:
        results["load"] = measure_servers(args, Path(tmp))
        results["startup"] = measure_startup(args, Path(tmp))
    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    results["evaluation"] = evaluate(results)
    results["duration_s"] = round(time.perf_counter() - started, 1)
    write(results, args)
    print(markdown(results))
    print(f"wrote {args.out}/results.json, results.md, results.png in {results['duration_s']} s")
    problems = failures(results)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
