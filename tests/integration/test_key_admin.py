"""Key lifecycle: create, revoke, rotate, maximum lifetime, the first-start bootstrap key."""

import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from ctxfy.adapters.key_admin import BOOTSTRAP_KEY_FILE, KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.keystore_sqlite import SqliteKeyStore
from ctxfy.core.errors import KeyNotFoundError, KeyRequestError, KeyStateError
from ctxfy.core.keys import ApiKey, Scope, check_key
from tests.integration.access_support import FakeClock


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logger.add(lines.append, level="DEBUG", serialize=True)
    yield lines
    logger.remove(handler)


async def test_create_stores_only_a_hash_and_returns_the_key_once(log_lines: list[str]) -> None:
    store = InMemoryKeyStore()
    issued = await KeyAdmin(store).create(name="ci", scope=Scope.WRITE, rate_limit="10/minute")
    stored = await store.get(issued.record.key_id)
    assert stored == issued.record
    assert issued.key.secret not in repr(stored)
    assert issued.key.secret not in stored.secret_hash
    assert issued.as_json()["key"] == issued.key.text
    assert set(issued.as_json()) == {"key_id", "key", "name", "scope", "expires_at"}
    assert issued.key.secret not in repr(issued)
    assert any('"event": "key.created"' in line for line in log_lines)
    assert not any(issued.key.secret in line for line in log_lines)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": " "}, "name"),
        ({"rate_limit": "lots"}, "rate_limit"),
        ({"expires_in": timedelta(0)}, "greater than zero"),
        ({"expires_in": timedelta(days=91)}, "CTXFY_KEY_MAX_TTL"),
    ],
)
async def test_create_refuses_bad_requests(options: dict[str, Any], message: str) -> None:
    admin = KeyAdmin(InMemoryKeyStore(), max_ttl=timedelta(days=90))
    arguments: dict[str, Any] = {"name": "ci", "scope": Scope.READ, **options}
    with pytest.raises(KeyRequestError, match=message):
        await admin.create(**arguments)


async def test_max_ttl_makes_expiry_mandatory() -> None:
    clock = FakeClock()
    admin = KeyAdmin(InMemoryKeyStore(), clock=clock, max_ttl=timedelta(days=90))
    issued = await admin.create(name="ci", scope=Scope.READ)
    assert issued.record.expires_at == clock.now + timedelta(days=90)
    shorter = await admin.create(name="ci", scope=Scope.READ, expires_in=timedelta(days=1))
    assert shorter.record.expires_at == clock.now + timedelta(days=1)


async def test_revoke_marks_the_key_and_refuses_twice_or_unknown() -> None:
    clock = FakeClock()
    admin = KeyAdmin(InMemoryKeyStore(), clock=clock)
    issued = await admin.create(name="ci", scope=Scope.READ)
    revoked = await admin.revoke(issued.record.key_id)
    assert revoked.revoked_at == clock.now
    assert check_key(revoked, issued.key, clock.now).reason == "revoked"
    with pytest.raises(KeyStateError, match="already revoked"):
        await admin.revoke(issued.record.key_id)
    with pytest.raises(KeyNotFoundError):
        await admin.revoke("nosuchkey000")


async def test_rotate_links_old_and_new_and_keeps_name_scope_rate_and_lifetime() -> None:
    clock = FakeClock()
    admin = KeyAdmin(InMemoryKeyStore(), clock=clock)
    old = await admin.create(
        name="deploy", scope=Scope.ADMIN, expires_in=timedelta(days=30), rate_limit="5/second"
    )
    clock.advance(days=10)
    new = await admin.rotate(old.record.key_id, grace=timedelta(minutes=15))
    retired = await admin.store.get(old.record.key_id)
    assert retired is not None
    assert retired.replaced_by == new.record.key_id
    assert retired.grace_until == clock.now + timedelta(minutes=15)
    assert new.record.rotated_from == old.record.key_id
    assert (new.record.name, new.record.scope, new.record.rate_limit) == (
        "deploy",
        Scope.ADMIN,
        "5/second",
    )
    assert new.record.expires_at == clock.now + timedelta(days=30)
    assert check_key(retired, old.key, clock.now).ok
    clock.advance(minutes=15)
    assert check_key(retired, old.key, clock.now).reason == "rotated_out"
    with pytest.raises(KeyStateError, match="rotat"):
        await admin.rotate(old.record.key_id)


async def test_rotate_refuses_revoked_and_expired_keys() -> None:
    clock = FakeClock()
    admin = KeyAdmin(InMemoryKeyStore(), clock=clock)
    revoked = await admin.create(name="a", scope=Scope.READ)
    await admin.revoke(revoked.record.key_id)
    expiring = await admin.create(name="b", scope=Scope.READ, expires_in=timedelta(hours=1))
    clock.advance(hours=2)
    for key_id in (revoked.record.key_id, expiring.record.key_id):
        with pytest.raises(KeyStateError, match="cannot be rotated"):
            await admin.rotate(key_id)
    with pytest.raises(KeyRequestError, match="negative"):
        await admin.rotate(revoked.record.key_id, grace=timedelta(seconds=-1))


async def test_bootstrap_writes_a_private_key_file_and_logs_only_its_path(
    tmp_path: Path, log_lines: list[str]
) -> None:
    store = SqliteKeyStore(tmp_path / "data" / "ctxfy.db")
    admin = KeyAdmin(store)
    path = await admin.ensure_bootstrap_key(tmp_path / "data")
    assert path == tmp_path / "data" / BOOTSTRAP_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = ApiKey.parse(path.read_text().strip())
    record = await store.get(key.key_id)
    assert record is not None
    assert record.scope is Scope.ADMIN
    assert record.name == "bootstrap"
    bootstrap_lines = [line for line in log_lines if '"key.bootstrap"' in line]
    assert len(bootstrap_lines) == 1
    assert str(path) in bootstrap_lines[0]
    assert not any(key.secret in line for line in log_lines)
    assert await admin.ensure_bootstrap_key(tmp_path / "data") is None
    assert len(await store.list_keys()) == 1
    assert sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")) == []


@pytest.mark.parametrize(
    ("rate", "rule"),
    [("0/minute", "at least 1"), ("10/minute;100/day", "exactly one"), ("often", "not a rate")],
)
async def test_a_rate_limit_that_would_not_be_enforced_as_written_is_refused(
    rate: str, rule: str
) -> None:
    admin = KeyAdmin(InMemoryKeyStore())
    with pytest.raises(KeyRequestError, match=rule) as info:
        await admin.create(name="x", scope=Scope.READ, rate_limit=rate)
    assert str(info.value).startswith("rate_limit: ")
    assert await admin.list_keys() == ()
