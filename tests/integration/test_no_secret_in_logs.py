"""Every log line written while keys are issued, used, refused and managed holds no key."""

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError
from loguru import logger
from mcp import McpError

from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.keystore_sqlite import SqliteKeyStore
from ctxfy.adapters.ratelimit import KeyRateLimiter
from ctxfy.core.keys import KEY_PATTERN, ApiKey, Scope
from tests.integration.access_support import FakeClock, Ticker, build_access_mcp, serve_app

STDLIB_LOGGERS = ("", "fastmcp", "mcp", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def every_log_line() -> Iterator[list[str]]:
    """Loguru records (serialized, with every bound field) and stdlib logs at DEBUG."""
    lines: list[str] = []
    sink = logger.add(lines.append, level="TRACE", serialize=True)
    handler = _Collect(lines)
    saved: list[tuple[logging.Logger, int]] = []
    for name in STDLIB_LOGGERS:
        target = logging.getLogger(name)
        saved.append((target, target.level))
        target.addHandler(handler)
        target.setLevel(logging.DEBUG)
    yield lines
    logger.remove(sink)
    for target, level in saved:
        target.removeHandler(handler)
        target.setLevel(level)


async def test_no_key_material_reaches_any_log(every_log_line: list[str], tmp_path: Path) -> None:
    store, clock = InMemoryKeyStore(), FakeClock()
    limiter = KeyRateLimiter("40/minute")
    mcp, admin, verifier = build_access_mcp(store, clock=clock, ticker=Ticker(), limiter=limiter)
    secrets: list[str] = []

    async def issue(scope: Scope, **options: object) -> str:
        issued = await admin.create(name=f"{scope.value}", scope=scope, **options)  # type: ignore[arg-type]
        secrets.append(issued.key.secret)
        return issued.key.text

    admin_key, write_key, read_key = (
        await issue(Scope.ADMIN),
        await issue(Scope.WRITE),
        await issue(Scope.READ),
    )
    expiring = await issue(Scope.READ, expires_in=timedelta(minutes=5))
    unknown = "ctxfy_zzzzzzzzzzzz_" + "Q" * 43
    secrets.append("Q" * 43)

    async with serve_app(mcp.http_app(path="/mcp")) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            created = await http.post(
                "/v1/keys",
                json={"name": "rest", "scope": "write", "rate_limit": "1/minute"},
                headers={"X-API-Key": admin_key},
            )
            rest_key = created.json()["key"]
            secrets.append(ApiKey.parse(rest_key).secret)
            rotated = await http.post(
                f"/v1/keys/{created.json()['key_id']}/rotate",
                json={"grace": "1m"},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            secrets.append(ApiKey.parse(rotated.json()["key"]).secret)
            for headers in (
                {"X-API-Key": unknown},
                {"Authorization": f"Bearer {unknown}"},
                {"Authorization": f"Bearer {read_key[:-1]}"},
                {"X-API-Key": read_key, "Authorization": f"Bearer {write_key}"},
                {"X-API-Key": rest_key},
                {"X-API-Key": rest_key},  # over its 1/minute override
                {"X-API-Key": read_key},
            ):
                await http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
            await http.get("/v1/keys", headers={"X-API-Key": read_key})  # scope denied
            await http.post(
                f"/v1/keys/{ApiKey.parse(read_key).key_id}/revoke",
                headers={"X-API-Key": admin_key},
            )
        async with Client(f"{url}/mcp", auth=write_key) as client:
            await client.call_tool("generate_context_stack", {"task": "audit"})
        async with Client(f"{url}/mcp", auth=expiring) as client:
            with pytest.raises(ToolError):
                await client.call_tool("generate_context_stack", {"task": "denied"})
        clock.advance(minutes=6)
        verifier.invalidate()
        with pytest.raises(httpx.HTTPStatusError):
            async with Client(f"{url}/mcp", auth=expiring) as client:
                await client.list_tools()
        store.available = False
        verifier.invalidate()
        with pytest.raises((httpx.HTTPStatusError, McpError)):
            async with Client(f"{url}/mcp", auth=write_key) as client:
                await client.list_tools()

    bootstrap = KeyAdmin(SqliteKeyStore(tmp_path / "ctxfy.db"))
    path = await bootstrap.ensure_bootstrap_key(tmp_path)
    assert path is not None
    secrets.append(ApiKey.parse(path.read_text().strip()).secret)

    text = "\n".join(every_log_line)
    events = {"auth.failed", "auth.scope_denied", "ratelimit.blocked", "key.rotated"}
    events |= {"key.revoked", "key.bootstrap", "auth.store_unavailable", "key.created"}
    assert [e for e in sorted(events) if f'"{e}"' not in text] == [], "a path was not reached"
    assert len(secrets) == 8
    leaked = [s for s in secrets if s in text]
    assert leaked == []
    assert KEY_PATTERN.search(text) is None
