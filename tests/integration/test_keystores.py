"""Key stores against real engines: SQLite files and a real redis-server."""

import socket
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.keystore_redis import RedisKeyStore
from ctxfy.adapters.keystore_sqlite import SqliteKeyStore
from ctxfy.adapters.keystores import default_key_store_url, open_key_store
from ctxfy.core.errors import (
    ConfigurationError,
    KeyNotFoundError,
    KeyStateError,
    KeyStoreUnavailableError,
)
from ctxfy.core.keys import KeyRecord, KeyStore, Scope, hash_secret

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_record(key_id: str = "abcdefabcdef", **changes: Any) -> KeyRecord:
    record = KeyRecord(
        key_id=key_id,
        name="ci runner",
        scope=Scope.WRITE,
        secret_hash=hash_secret(key_id, "S" * 43),
        created_at=T0,
    )
    return attrs.evolve(record, **changes)


@pytest.fixture(params=["sqlite", "redis", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    made: KeyStore
    if request.param == "sqlite":
        made = SqliteKeyStore(tmp_path / "data" / "ctxfy.db")
    elif request.param == "redis":
        made = RedisKeyStore(request.getfixturevalue("redis_url"))
    else:
        made = InMemoryKeyStore()
    yield made
    await made.aclose()


async def test_records_round_trip_with_every_field(store: KeyStore) -> None:
    full = make_record(
        expires_at=T0 + timedelta(days=30),
        last_used_at=T0 + timedelta(minutes=1),
        revoked_at=T0 + timedelta(days=2),
        grace_until=T0 + timedelta(hours=1),
        replaced_by="zzzzzzzzzzzz",
        rotated_from="yyyyyyyyyyyy",
        rate_limit="10/minute",
    )
    sparse = make_record(
        "000000000001",
        name="другой ключ ✓",
        scope=Scope.ADMIN,
        created_at=T0 + timedelta(seconds=1),
    )
    await store.add(full)
    await store.add(sparse)
    assert await store.get(full.key_id) == full
    assert await store.get(sparse.key_id) == sparse
    assert await store.get("nosuchkey000") is None
    assert await store.list_keys() == (full, sparse)
    await store.ping()


async def test_add_refuses_a_duplicate_and_update_a_missing_key(store: KeyStore) -> None:
    record = make_record()
    await store.add(record)
    with pytest.raises(KeyStateError):
        await store.add(attrs.evolve(record, name="second"))
    with pytest.raises(KeyNotFoundError):
        await store.update(make_record("missing00000"))
    assert await store.get(record.key_id) == record


async def test_update_replaces_and_clears_fields(store: KeyStore) -> None:
    record = make_record(expires_at=T0 + timedelta(days=1), rate_limit="5/second")
    await store.add(record)
    changed = attrs.evolve(record, expires_at=None, rate_limit=None, revoked_at=T0)
    await store.update(changed)
    assert await store.get(record.key_id) == changed


async def test_touch_sets_only_last_used_and_ignores_missing_keys(store: KeyStore) -> None:
    record = make_record()
    await store.add(record)
    when = T0 + timedelta(hours=3)
    await store.touch(record.key_id, when)
    await store.touch("missing00000", when)
    assert await store.get(record.key_id) == attrs.evolve(record, last_used_at=when)
    assert await store.get("missing00000") is None
    assert len(await store.list_keys()) == 1


async def test_sqlite_file_is_private_persistent_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ctxfy.db"
    await SqliteKeyStore(path).add(make_record())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(await SqliteKeyStore(path).list_keys()) == 1
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert "S" * 43 not in path.read_bytes().decode("latin-1")


async def test_sqlite_locked_database_fails_after_a_bounded_wait(tmp_path: Path) -> None:
    path = tmp_path / "ctxfy.db"
    store = SqliteKeyStore(path, busy_timeout=0.2)
    await store.add(make_record())
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(KeyStoreUnavailableError, match="locked"):
            await store.add(make_record("000000000002"))
        assert await store.get("abcdefabcdef") is not None  # WAL: readers still read
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await store.add(make_record("000000000002"))


async def test_sqlite_unusable_path_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(KeyStoreUnavailableError):
        await SqliteKeyStore(blocker / "ctxfy.db").ping()


async def test_unreachable_redis_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = RedisKeyStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    try:
        for call in (store.ping(), store.get("abcdefabcdef"), store.list_keys()):
            with pytest.raises(KeyStoreUnavailableError):
                await call
    finally:
        await store.aclose()


async def test_two_redis_store_instances_share_keys(redis_url: str) -> None:
    first, second = RedisKeyStore(redis_url), RedisKeyStore(redis_url)
    try:
        await first.add(make_record())
        await second.update(make_record(revoked_at=T0))
        record = await first.get("abcdefabcdef")
        assert record is not None
        assert record.revoked_at == T0
    finally:
        await first.aclose()
        await second.aclose()


def test_open_key_store_picks_the_adapter_from_the_url(tmp_path: Path) -> None:
    sqlite_store = open_key_store(default_key_store_url(tmp_path))
    assert isinstance(sqlite_store, SqliteKeyStore)
    assert sqlite_store.path == tmp_path.resolve() / "ctxfy.db"
    assert isinstance(open_key_store("redis://127.0.0.1:1/0"), RedisKeyStore)
    assert isinstance(open_key_store("memory://"), InMemoryKeyStore)


@pytest.mark.parametrize(
    "url", ["postgres://u:hunter2@db/ctxfy", "sqlite://", "relative/ctxfy.db", "redis:/x", ""]
)
def test_open_key_store_rejects_other_urls_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigurationError, match="CTXFY_KEY_STORE") as info:
        open_key_store(url)
    assert "hunter2" not in str(info.value)
