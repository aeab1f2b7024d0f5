"""API-key enforcement over real HTTP: every failure case, scopes, headers, audit."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.exceptions import ToolError
from loguru import logger

from ctxfy.core.keys import Scope
from tests.integration.access_support import AccessServer

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "auth-test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
UNKNOWN_KEY = "ctxfy_zzzzzzzzzzzz_" + "A" * 43


@pytest.fixture
def audit_events() -> Iterator[list[dict[str, Any]]]:
    """Audit records written while the test runs."""
    events: list[dict[str, Any]] = []

    def sink(message: Any) -> None:
        extra = message.record["extra"]
        if extra.get("audit"):
            events.append(dict(extra))

    handler = logger.add(sink, level="DEBUG")
    yield events
    logger.remove(handler)


async def post_mcp(server: AccessServer, headers: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        merged = httpx.Headers(MCP_HEADERS)
        merged.update(headers or {})
        return await http.post(server.mcp_url, json=INITIALIZE, headers=merged)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_health_stays_open_and_every_response_has_security_headers(
    access_server: AccessServer,
) -> None:
    async with httpx.AsyncClient(base_url=access_server.url) as http:
        health = await http.get("/health")
        refused = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert health.status_code == 200
    for response in (health, refused):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in refused.headers  # CORS is off


async def test_a_valid_key_works_in_either_header_and_any_scheme_case(
    access_server: AccessServer,
) -> None:
    key = await access_server.key(Scope.READ)
    for headers in (
        {"Authorization": f"Bearer {key}"},
        {"authorization": f"bearer {key}"},
        {"AUTHORIZATION": f"BEARER {key}"},
        {"X-API-Key": key},
        {"x-api-key": key},
        {"Authorization": f"Bearer {key}", "X-API-Key": key},
    ):
        response = await post_mcp(access_server, headers)
        assert response.status_code == 200, headers
        assert "no-store" in response.headers["cache-control"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Bearer {UNKNOWN_KEY}"},
        {"Authorization": f"Bearer {UNKNOWN_KEY}x"},
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": ""},
        {"Authorization": "Bearer " + "A" * 8000},
        {"X-API-Key": "ctxfy_" + "a" * 8000},
    ],
    ids=[
        "missing",
        "empty-bearer",
        "basic-scheme",
        "malformed",
        "unknown",
        "too-long-by-one",
        "malformed-x-api-key",
        "empty-x-api-key",
        "long-bearer",
        "long-x-api-key",
    ],
)
async def test_missing_malformed_and_unknown_keys_get_401(
    access_server: AccessServer, headers: dict[str, str]
) -> None:
    assert_unauthorized(await post_mcp(access_server, headers))


async def test_non_ascii_header_bytes_get_401(access_server: AccessServer) -> None:
    key = await access_server.key()
    mangled = key[:-1].encode() + "é".encode()
    for name in (b"Authorization", b"X-API-Key"):
        value = b"Bearer " + mangled if name == b"Authorization" else mangled
        assert_unauthorized(await post_mcp(access_server, [(name, value)]))


async def test_a_header_beyond_the_server_limit_is_refused(access_server: AccessServer) -> None:
    response = await post_mcp(access_server, {"Authorization": "Bearer " + "A" * 100_000})
    assert response.status_code in {400, 401, 431}


async def test_conflicting_or_repeated_headers_get_401(access_server: AccessServer) -> None:
    key, other = await access_server.key(), await access_server.key()
    assert_unauthorized(
        await post_mcp(access_server, {"Authorization": f"Bearer {key}", "X-API-Key": other})
    )
    repeated = [(b"X-API-Key", key.encode()), (b"X-API-Key", other.encode())]
    assert_unauthorized(await post_mcp(access_server, repeated))


async def test_expired_revoked_and_rotated_keys_get_the_same_401_but_audit_the_reason(
    access_server: AccessServer, audit_events: list[dict[str, Any]]
) -> None:
    unknown = await post_mcp(access_server, {"Authorization": f"Bearer {UNKNOWN_KEY}"})
    expiring = await access_server.key(expires_in=timedelta(hours=1))
    revoked = await access_server.key()
    rotated = await access_server.key()
    successor = await access_server.admin.rotate(rotated[6:18], grace=timedelta(minutes=15))
    await access_server.admin.revoke(revoked[6:18])
    access_server.verifier.invalidate()

    assert (await post_mcp(access_server, {"X-API-Key": expiring})).status_code == 200
    assert (await post_mcp(access_server, {"X-API-Key": rotated})).status_code == 200
    access_server.clock.advance(hours=1)
    bodies = [unknown]
    for key in (expiring, revoked, rotated):
        response = await post_mcp(access_server, {"X-API-Key": key})
        assert_unauthorized(response)
        bodies.append(response)
    assert len({(r.content, r.headers["www-authenticate"]) for r in bodies}) == 1
    assert (await post_mcp(access_server, {"X-API-Key": successor.key.text})).status_code == 200

    reasons = {
        (e.get("key_id"), e.get("reason")) for e in audit_events if e["event"] == "auth.failed"
    }
    assert ("zzzzzzzzzzzz", "unknown_key") in reasons
    assert (expiring[6:18], "expired") in reasons
    assert (revoked[6:18], "revoked") in reasons
    assert (rotated[6:18], "rotated_out") in reasons


async def test_rotation_grace_keeps_the_old_key_until_it_ends(access_server: AccessServer) -> None:
    old = await access_server.key(Scope.WRITE)
    issued = await access_server.admin.rotate(old[6:18], grace=timedelta(minutes=15))
    access_server.verifier.invalidate()
    access_server.clock.advance(minutes=14, seconds=59)
    assert (await post_mcp(access_server, {"X-API-Key": old})).status_code == 200
    access_server.clock.advance(seconds=1)
    assert_unauthorized(await post_mcp(access_server, {"X-API-Key": old}))
    assert (await post_mcp(access_server, {"X-API-Key": issued.key.text})).status_code == 200


async def test_revocation_reaches_a_cached_verifier_within_the_cache_ttl(
    access_server: AccessServer,
) -> None:
    key = await access_server.key()
    assert (await post_mcp(access_server, {"X-API-Key": key})).status_code == 200
    await access_server.admin.revoke(key[6:18])  # as another replica would: no invalidate
    access_server.ticker.value += 4.9
    assert (await post_mcp(access_server, {"X-API-Key": key})).status_code == 200
    access_server.ticker.value += 0.1
    assert_unauthorized(await post_mcp(access_server, {"X-API-Key": key}))


async def test_store_outage_fails_closed_and_health_stays_up(
    access_server: AccessServer, audit_events: list[dict[str, Any]]
) -> None:
    key = await access_server.key()
    access_server.store.available = False
    access_server.verifier.invalidate()
    response = await post_mcp(access_server, {"X-API-Key": key})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" in response.headers
    async with httpx.AsyncClient(base_url=access_server.url) as http:
        assert (await http.get("/health")).status_code == 200
    assert any(e["event"] == "auth.store_unavailable" for e in audit_events)


async def test_last_used_is_written_at_most_once_per_interval(access_server: AccessServer) -> None:
    key = await access_server.key()
    for _ in range(5):
        assert (await post_mcp(access_server, {"X-API-Key": key})).status_code == 200
    assert access_server.store.touches == 1
    record = await access_server.store.get(key[6:18])
    assert record is not None
    assert record.last_used_at == access_server.clock.now


async def test_bad_origin_gets_403_and_bad_host_421(access_server: AccessServer) -> None:
    key = await access_server.key()
    ok_origin = access_server.url
    assert (
        await post_mcp(access_server, {"X-API-Key": key, "Origin": ok_origin})
    ).status_code == 200
    evil = await post_mcp(access_server, {"X-API-Key": key, "Origin": "http://evil.example"})
    assert evil.status_code == 403
    rebound = await post_mcp(access_server, {"X-API-Key": key, "Host": "evil.example"})
    assert rebound.status_code == 421
    conflict = await post_mcp(access_server, {"X-API-Key": key, "Authorization": "Bearer x"})
    for refusal in (evil, rebound, conflict):
        assert refusal.headers["x-content-type-options"] == "nosniff"


async def mcp_client(server: AccessServer, key: str) -> Client[Any]:
    return Client(StreamableHttpTransport(server.mcp_url, headers={"X-API-Key": key}))


async def test_read_key_sees_and_uses_only_read_components(
    access_server: AccessServer, audit_events: list[dict[str, Any]]
) -> None:
    key = await access_server.key(Scope.READ)
    async with await mcp_client(access_server, key) as client:
        tools = {t.name for t in await client.list_tools()}
        lint = await client.call_tool("lint_context_stack", {"text": "abc"})
        prompt = await client.get_prompt("greeting", {"name": "Ada"})
        about = await client.read_resource("ctxfy://about")
        with pytest.raises(ToolError, match="Unknown tool"):
            await client.call_tool("generate_context_stack", {"task": "x"})
    assert tools == {"lint_context_stack"}
    assert lint.data == "linted 3 characters"
    assert "Ada" in str(prompt.messages[0].content)
    assert "ctxfy" in str(about[0])
    denied = [e for e in audit_events if e["event"] == "auth.scope_denied"]
    assert denied
    assert denied[0]["key_id"] == key[6:18]
    assert denied[0]["reason"] == "requires write"


@pytest.mark.parametrize("scope", [Scope.WRITE, Scope.ADMIN])
async def test_write_and_admin_keys_call_llm_tools(
    access_server: AccessServer, scope: Scope
) -> None:
    key = await access_server.key(scope)
    async with Client(access_server.mcp_url, auth=key) as client:
        tools = {t.name for t in await client.list_tools()}
        result = await client.call_tool("generate_context_stack", {"task": "rotate keys"})
    assert tools == {"lint_context_stack", "generate_context_stack"}
    assert result.data == "stack for rotate keys"
