"""Helpers for the REST façade tests: ctxfy's full server over real HTTP, with keys."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
from fastmcp import FastMCP

from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.metrics import PrometheusMetrics, build_prometheus_metrics
from ctxfy.core.keys import Scope
from ctxfy.server import build_http_app, build_server
from ctxfy.settings import Settings
from ctxfy.testing import RecordingMetrics
from tests.integration.access_support import serve_app

PROMPT_FILE = """---
name: release_notes
title: Release notes
description: Drafts release notes from a list of changes.
parameters:
  - name: changes
    type: list[string]
    required: true
    max_items: 20
    example: '["Add key rotation", "Fix the SQLite lock"]'
  - name: tone
    type: enum
    choices: [formal, friendly]
    example: friendly
  - name: limit
    type: integer
    example: "12"
---
Write release notes for these changes:

{{changes}}

Tone: {{tone}}
At most {{limit}} lines.
"""


@attrs.frozen
class RestServer:
    """A running ctxfy server (auth on unless asked otherwise) and a key per scope."""

    url: str
    mcp: FastMCP[Any]
    metrics: RecordingMetrics | PrometheusMetrics
    keys: dict[Scope, str]

    def headers(self, scope: Scope = Scope.READ, *, bearer: bool = False) -> dict[str, str]:
        key = self.keys[scope]
        return {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}

    def client(self, scope: Scope | None = Scope.READ) -> httpx.AsyncClient:
        headers = self.headers(scope) if scope is not None else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


def write_prompt_dir(directory: Path) -> Path:
    """A prompts directory with one user prompt using integer, enum and list parameters."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "release_notes.md").write_text(PROMPT_FILE, encoding="utf-8")
    return directory


@asynccontextmanager
async def rest_server(
    tmp_path: Path,
    *,
    settings: Settings | None = None,
    prometheus: bool = False,
    **overrides: Any,
) -> AsyncIterator[RestServer]:
    """Serve :func:`build_server`'s app on 127.0.0.1 with an in-memory key store.

    Metrics are recorded in memory, or exported on ``/metrics`` when ``prometheus``.
    """
    settings = settings or Settings(data_dir=tmp_path / "data")
    store = InMemoryKeyStore()
    admin = KeyAdmin(store)
    keys = {
        scope: (await admin.create(name=f"{scope.value} key", scope=scope)).key.text
        for scope in Scope
    }
    metrics = build_prometheus_metrics() if prometheus else RecordingMetrics()
    mcp = build_server(settings, key_store=store, metrics=metrics, **overrides)
    app = build_http_app(mcp, settings, metrics=metrics)
    try:
        async with serve_app(app) as url:
            yield RestServer(url, mcp, metrics, keys)
    finally:
        if isinstance(metrics, PrometheusMetrics):
            metrics.shutdown()
