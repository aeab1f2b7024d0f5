"""In-process costs: key verification, validation, render/parse/lint of a context stack.

Each figure is the median of several repeats of an auto-ranged loop (``timeit``-style), so
one slow repeat (another process taking the CPU) does not move it. Async operations are
timed inside one event loop, awaiting one call at a time.

Run alone: ``python bench/inprocess.py [--smoke]`` prints the figures as JSON.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from payloads import PROMPT_ARGUMENTS, SEED_STACK

from ctxfy.adapters.auth import ApiKeyVerifier
from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.keystore_sqlite import SqliteKeyStore
from ctxfy.core.injection import detect_injection
from ctxfy.core.keys import KeyStore, Scope
from ctxfy.core.lint import lint_markdown
from ctxfy.core.markdown import parse_context_stack, render_context_stack
from ctxfy.core.params import validate_arguments
from ctxfy.core.prompt import render_prompt
from ctxfy.prompts import CONTEXT_STACK, builtin_blocks


def _sync_us(func: Callable[[], object], repeats: int, min_time: float) -> float:
    loops = 1
    while True:
        started = time.perf_counter()
        for _ in range(loops):
            func()
        if time.perf_counter() - started >= min_time:
            break
        loops *= 2
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(loops):
            func()
        runs.append((time.perf_counter() - started) / loops)
    return statistics.median(runs) * 1e6


async def _async_us(func: Callable[[], Awaitable[object]], repeats: int, min_time: float) -> float:
    loops = 1
    while True:
        started = time.perf_counter()
        for _ in range(loops):
            await func()
        if time.perf_counter() - started >= min_time:
            break
        loops *= 2
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(loops):
            await func()
        runs.append((time.perf_counter() - started) / loops)
    return statistics.median(runs) * 1e6


async def _issue_key(store: KeyStore) -> str:
    issued = await KeyAdmin(store).create(name="bench", scope=Scope.WRITE)
    return str(issued.as_json()["key"])


async def _key_verification(repeats: int, min_time: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stores: dict[str, KeyStore] = {
            "memory": InMemoryKeyStore(),
            "sqlite": SqliteKeyStore(Path(tmp) / "ctxfy.db"),
        }
        for name, store in stores.items():
            key = await _issue_key(store)
            for cached in (True, False):
                verifier = ApiKeyVerifier(store, cache_ttl=5.0 if cached else 0.0)
                token = await verifier.verify_token(key)
                if token is None:
                    raise RuntimeError("the bench key does not verify")
                us = await _async_us(lambda v=verifier, k=key: v.verify_token(k), repeats, min_time)
                label = f"{name}_{'cached' if cached else 'uncached'}"
                results[label] = {"us_per_call": round(us, 2), "per_second": round(1e6 / us)}
            await store.aclose()
    return results


def _core(repeats: int, min_time: float) -> dict[str, Any]:
    params = CONTEXT_STACK.params
    blocks = builtin_blocks()
    values = validate_arguments(params, PROMPT_ARGUMENTS).values
    stack = parse_context_stack(SEED_STACK)
    rendered = render_context_stack(stack)
    cases: dict[str, Callable[[], object]] = {
        "validate_arguments": lambda: validate_arguments(params, PROMPT_ARGUMENTS),
        "detect_injection": lambda: detect_injection(values),
        "validation_per_request": lambda: detect_injection(
            validate_arguments(params, PROMPT_ARGUMENTS).values
        ),
        "render_prompt_context_stack": lambda: render_prompt(CONTEXT_STACK, values, blocks),
        "render_context_stack": lambda: render_context_stack(stack),
        "parse_context_stack": lambda: parse_context_stack(rendered),
        "lint_markdown_seed": lambda: lint_markdown(SEED_STACK),
    }
    return {
        name: {"us_per_call": round(_sync_us(func, repeats, min_time), 2)}
        for name, func in cases.items()
    }


def measure(*, smoke: bool = False) -> dict[str, Any]:
    """Return every in-process figure."""
    repeats, min_time = (3, 0.02) if smoke else (7, 0.2)
    return {
        "key_verification": asyncio.run(_key_verification(repeats, min_time)),
        "core": _core(repeats, min_time),
    }


if __name__ == "__main__":
    print(json.dumps(measure(smoke="--smoke" in sys.argv), indent=2))
