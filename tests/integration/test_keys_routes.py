"""``/v1/keys`` over real HTTP: admin only, problem+json errors, never a stored hash."""

from typing import Any

import httpx
import pytest
from loguru import logger

from ctxfy.core.keys import Scope
from tests.integration.access_support import AccessServer


def admin_client(server: AccessServer, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"})


async def test_admin_creates_lists_rotates_and_revokes_keys(access_server: AccessServer) -> None:
    admin_key = await access_server.key(Scope.ADMIN)
    async with admin_client(access_server, admin_key) as http:
        created = await http.post(
            "/v1/keys", json={"name": "ci", "scope": "write", "expires_in": "30d"}
        )
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        assert set(body) == {"key_id", "key", "name", "scope", "expires_at"}
        assert body["scope"] == "write"
        assert "no-store" in created.headers["cache-control"]
        new_key = body["key"]

        listing = await http.get("/v1/keys")
        assert listing.status_code == 200
        assert "sha256" not in listing.text
        assert new_key.split("_")[2] not in listing.text
        listed = {k["key_id"]: k for k in listing.json()["keys"]}
        assert listed[body["key_id"]]["status"] == "active"
        assert "secret_hash" not in listed[body["key_id"]]

        rotated = await http.post(f"/v1/keys/{body['key_id']}/rotate", json={"grace": "15m"})
        assert rotated.status_code == 201
        assert rotated.json()["replaces"] == body["key_id"]
        successor = rotated.json()["key"]

        revoked = await http.post(f"/v1/keys/{rotated.json()['key_id']}/revoke")
        assert revoked.status_code == 200
        assert revoked.json()["status"] == "revoked"

    async with httpx.AsyncClient(base_url=access_server.url) as http:
        listing = await http.get("/v1/keys", headers={"X-API-Key": successor})
        assert listing.status_code == 401  # revoked here: refused at once on this replica
        still = await http.get("/v1/keys", headers={"X-API-Key": new_key})
        assert still.status_code == 403  # in grace, but a write key


@pytest.mark.parametrize("scope", [Scope.READ, Scope.WRITE])
async def test_non_admin_keys_get_403_problem(access_server: AccessServer, scope: Scope) -> None:
    key = await access_server.key(scope)
    async with admin_client(access_server, key) as http:
        for response in (
            await http.get("/v1/keys"),
            await http.post("/v1/keys", json={"name": "x", "scope": "admin"}),
        ):
            assert response.status_code == 403
            assert response.headers["content-type"] == "application/problem+json"
            assert "admin" in response.json()["detail"]
    assert len(await access_server.store.list_keys()) == 1


async def test_requests_without_a_valid_key_get_401_problem(access_server: AccessServer) -> None:
    async with httpx.AsyncClient(base_url=access_server.url) as http:
        for headers in ({}, {"X-API-Key": "ctxfy_nope"}):
            response = await http.get("/v1/keys", headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("POST", "/v1/keys", b"{not json", 400),
        ("POST", "/v1/keys", b"[1, 2]", 400),
        ("POST", "/v1/keys", b'{"scope": "read"}', 422),
        ("POST", "/v1/keys", b'{"name": "x", "scope": "root"}', 422),
        ("POST", "/v1/keys", b'{"name": "x", "scope": "read", "expires_in": "soon"}', 422),
        ("POST", "/v1/keys", b'{"name": 5, "scope": "read"}', 422),
        ("POST", "/v1/keys", b'{"name": "' + b"x" * 20_000 + b'"}', 413),
        ("POST", "/v1/keys/nosuchkey000/revoke", b"", 404),
        ("POST", "/v1/keys/nosuchkey000/rotate", b"{}", 404),
    ],
)
async def test_bad_requests_get_problem_details(
    access_server: AccessServer, method: str, path: str, payload: bytes, status: int
) -> None:
    admin_key = await access_server.key(Scope.ADMIN)
    async with admin_client(access_server, admin_key) as http:
        response = await http.request(method, path, content=payload)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert "Traceback" not in response.text


async def test_revoking_twice_is_a_conflict(access_server: AccessServer) -> None:
    admin_key = await access_server.key(Scope.ADMIN)
    target = (await access_server.admin.create(name="t", scope=Scope.READ)).record.key_id
    async with admin_client(access_server, admin_key) as http:
        assert (await http.post(f"/v1/keys/{target}/revoke")).status_code == 200
        again = await http.post(f"/v1/keys/{target}/revoke")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_store_outage_answers_503(access_server: AccessServer) -> None:
    admin_key = await access_server.key(Scope.ADMIN)
    async with admin_client(access_server, admin_key) as http:
        assert (await http.get("/v1/keys")).status_code == 200  # record now cached
        access_server.store.available = False
        response = await http.get("/v1/keys")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


@pytest.mark.parametrize(
    ("path", "payload", "field", "allowed"),
    [
        ("/v1/keys", {"name": "typo", "scope": "read", "expires": "1d"}, "expires", "expires_in"),
        ("/v1/keys", {"name": "x", "scope": "read", "rate": "1/minute"}, "rate", "rate_limit"),
        ("/v1/keys/{key_id}/rotate", {"grce": "1h"}, "grce", "grace"),
    ],
)
async def test_unknown_body_fields_are_refused_and_change_nothing(
    access_server: AccessServer, path: str, payload: dict[str, str], field: str, allowed: str
) -> None:
    admin_key = await access_server.key(Scope.ADMIN)
    target = (await access_server.admin.create(name="t", scope=Scope.READ)).record
    before = [(r.key_id, r.replaced_by) for r in await access_server.store.list_keys()]
    async with admin_client(access_server, admin_key) as http:
        response = await http.post(path.format(key_id=target.key_id), json=payload)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    [error] = problem["errors"]
    assert (error["field"], error["rule"]) == (field, "unknown")
    named, _, listed = error["message"].partition("; allowed: ")
    assert repr(field) in named
    assert allowed in listed.split(", ")
    assert error["message"] in problem["detail"]
    after = [(r.key_id, r.replaced_by) for r in await access_server.store.list_keys()]
    assert after == before  # nothing created or rotated


async def test_invalid_fields_are_all_named_in_one_problem(access_server: AccessServer) -> None:
    admin_key = await access_server.key(Scope.ADMIN)
    async with admin_client(access_server, admin_key) as http:
        response = await http.post(
            "/v1/keys", json={"scope": "root", "expires_in": "soon", "rate_limit": "0/minute"}
        )
        grace = await http.post(f"/v1/keys/{admin_key.split('_')[1]}/rotate", json={"grace": "x"})
    assert response.status_code == 422, response.text
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert set(errors) == {"name", "scope", "expires_in", "rate_limit"}
    assert errors["name"]["message"] == "name: required"
    assert errors["expires_in"]["message"].startswith("expires_in: invalid duration 'soon'")
    assert errors["scope"]["message"].startswith("scope: unknown scope 'root'")
    assert "at least 1" in errors["rate_limit"]["message"]
    assert grace.status_code == 422, grace.text
    assert grace.json()["errors"][0]["message"].startswith("grace: invalid duration 'x'")


async def test_key_admin_events_over_http_name_the_acting_admin_key(
    access_server: AccessServer,
) -> None:
    admin_key = await access_server.key(Scope.ADMIN)
    actor = admin_key.split("_")[1]
    events: list[dict[str, Any]] = []
    sink = logger.add(lambda message: events.append(dict(message.record["extra"])))
    try:
        async with admin_client(access_server, admin_key) as http:
            created = (await http.post("/v1/keys", json={"name": "n", "scope": "read"})).json()
            rotated = await http.post(f"/v1/keys/{created['key_id']}/rotate", json={})
            await http.post(f"/v1/keys/{rotated.json()['key_id']}/revoke")
    finally:
        logger.remove(sink)
    admin_events = [e for e in events if str(e.get("event", "")).startswith("key.")]
    assert [e["event"] for e in admin_events] == [
        "key.created",
        "key.created",
        "key.rotated",
        "key.revoked",
    ]
    assert {e["actor_key_id"] for e in admin_events} == {actor}
    assert admin_events[0]["key_id"] == created["key_id"]
