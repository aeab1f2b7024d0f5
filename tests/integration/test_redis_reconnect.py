"""Dropped Redis connections cost no request: the key store and the rate limiter reconnect.

Redis closing every client at once is what a restart, a failover or its idle ``timeout``
does to a running ctxfy. ``CLIENT KILL`` reproduces it without stopping the shared server.
"""

import asyncio

import redis

from ctxfy.adapters.keystore_redis import RedisKeyStore
from ctxfy.adapters.ratelimit import KeyRateLimiter

POOL = 6


def _drop_every_client(url: str) -> int:
    with redis.Redis.from_url(url) as admin:
        return int(admin.client_kill_filter(_type="normal", skipme=True))


async def test_rate_limiter_survives_dropped_connections(redis_url: str) -> None:
    limiter = KeyRateLimiter("100000/minute", redis_url)
    # Concurrent hits fill the pool with POOL connections, all idle afterwards.
    await asyncio.gather(*(limiter.hit(f"key{n}") for n in range(POOL)))
    assert _drop_every_client(redis_url) >= POOL

    try:
        decisions = await asyncio.gather(*(limiter.hit(f"key{n}") for n in range(POOL)))
    finally:
        await limiter.aclose()

    assert all(decision.allowed for decision in decisions)
    assert [decision.remaining for decision in decisions] == [100000 - 2] * POOL


async def test_key_store_survives_dropped_connections(redis_url: str) -> None:
    store = RedisKeyStore(redis_url)
    await asyncio.gather(*(store.get(f"missing{n}") for n in range(POOL)))
    assert _drop_every_client(redis_url) >= POOL

    try:
        answers = await asyncio.gather(
            *(store.get(f"missing{n}") for n in range(POOL)), return_exceptions=True
        )
    finally:
        await store.aclose()

    assert answers == [None] * POOL
