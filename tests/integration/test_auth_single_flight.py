"""The verifier reads a key's record once for all concurrent requests presenting it."""

import asyncio

import pytest

from ctxfy.adapters.auth import ApiKeyVerifier, KeyStoreUnreachable
from ctxfy.adapters.key_admin import KeyAdmin
from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.core.errors import KeyStoreUnavailableError
from ctxfy.core.keys import KeyRecord, Scope
from tests.integration.access_support import Ticker


class SlowStore(InMemoryKeyStore):
    """An in-memory store whose reads take ``delay_s`` (and can fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.delay_s = 0.2
        self.fail = False
        self.gets = 0

    async def get(self, key_id: str) -> KeyRecord | None:
        self.gets += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise KeyStoreUnavailableError("locked")
        return await super().get(key_id)


async def _key(store: InMemoryKeyStore) -> str:
    return str((await KeyAdmin(store).create(name="t", scope=Scope.READ)).as_json()["key"])


async def test_concurrent_requests_for_one_key_share_one_store_read() -> None:
    store = SlowStore()
    key = await _key(store)
    ticker = Ticker()
    verifier = ApiKeyVerifier(store, monotonic=ticker)
    tokens = await asyncio.gather(*(verifier.verify_token(key) for _ in range(20)))
    assert all(t is not None for t in tokens)
    assert store.gets == 1
    await verifier.verify_token(key)  # cached
    assert store.gets == 1
    ticker.value += 6  # the cached record is stale: the next burst reads once more
    await asyncio.gather(*(verifier.verify_token(key) for _ in range(20)))
    assert store.gets == 2


async def test_a_failed_read_fails_every_waiting_request_and_is_not_cached() -> None:
    store = SlowStore()
    key = await _key(store)
    verifier = ApiKeyVerifier(store)
    store.fail = True
    results = await asyncio.gather(
        *(verifier.verify_token(key) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, KeyStoreUnreachable) for r in results)
    assert store.gets == 1
    store.fail = False
    assert await verifier.verify_token(key) is not None
    assert store.gets == 2


async def test_a_waiter_that_goes_away_does_not_cancel_the_read_for_the_others() -> None:
    store = SlowStore()
    key = await _key(store)
    verifier = ApiKeyVerifier(store)
    first = asyncio.create_task(verifier.verify_token(key))
    second = asyncio.create_task(verifier.verify_token(key))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second is not None
    assert store.gets == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_record_read_before_an_invalidation_is_not_cached() -> None:
    store = SlowStore()
    key = await _key(store)
    verifier = ApiKeyVerifier(store)
    pending = asyncio.create_task(verifier.verify_token(key))
    await asyncio.sleep(0.05)
    verifier.invalidate()  # e.g. the key was revoked locally while the read was running
    assert await pending is not None  # that request was already under way
    store.delay_s = 0
    await verifier.verify_token(key)
    assert store.gets == 2  # the stale read was not cached
