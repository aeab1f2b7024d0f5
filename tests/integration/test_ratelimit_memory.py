"""``MovingWindowMemoryStorage``: limits' moving window, O(1) per hit, no worker thread."""

import asyncio
import threading

import limits
from limits.aio.strategies import MovingWindowRateLimiter

from ctxfy.adapters.ratelimit import KeyRateLimiter
from ctxfy.adapters.ratelimit_memory import MovingWindowMemoryStorage


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_window_moves_entry_by_entry() -> None:
    clock = Clock()
    limiter = MovingWindowRateLimiter(MovingWindowMemoryStorage(clock=clock))
    rate = limits.parse("3/minute")
    hits = []
    for _ in range(3):
        hits.append(await limiter.hit(rate, "k"))
        clock.now += 10
    assert hits == [True, True, True]
    assert not await limiter.hit(rate, "k")  # 3 in the last 60 s
    clock.now += 30  # t = 60: the first entry (t = 0) has left the window exactly now
    assert not await limiter.hit(rate, "k")
    clock.now += 0.001
    assert await limiter.hit(rate, "k")
    stats = await limiter.get_window_stats(rate, "k")
    assert stats.remaining == 0
    assert stats.reset_time == 1_000_000.0 + 10 + 60  # the oldest entry left (t = 10) + 60 s


async def test_refused_hits_are_not_counted_and_keys_are_independent() -> None:
    clock = Clock()
    limiter = MovingWindowRateLimiter(MovingWindowMemoryStorage(clock=clock))
    rate = limits.parse("2/second")
    assert [await limiter.hit(rate, "a") for _ in range(5)] == [True, True, False, False, False]
    assert await limiter.hit(rate, "b")
    clock.now += 1.001
    assert [await limiter.hit(rate, "a") for _ in range(3)] == [True, True, False]


async def test_amounts_larger_than_the_limit_or_the_room_left_are_refused() -> None:
    storage = MovingWindowMemoryStorage(clock=Clock())
    assert not await storage.acquire_entry("k", limit=2, expiry=60, amount=3)
    assert await storage.acquire_entry("k", limit=3, expiry=60, amount=2)
    assert not await storage.acquire_entry("k", limit=3, expiry=60, amount=2)
    assert await storage.get_moving_window("k", limit=3, expiry=60) == (1_000_000.0, 2)


async def test_idle_keys_are_swept_and_clear_and_reset_forget_windows() -> None:
    clock = Clock()
    storage = MovingWindowMemoryStorage(sweep_interval=10, clock=clock)
    for key in ("a", "b", "c"):
        await storage.acquire_entry(key, limit=5, expiry=5)
    clock.now += 11  # every window expired, and a sweep is due
    await storage.acquire_entry("d", limit=5, expiry=5)
    assert set(storage._windows) == {"d"}
    await storage.clear("d")
    assert await storage.get_moving_window("d", limit=5, expiry=5) == (clock.now, 0)
    await storage.acquire_entry("e", limit=5, expiry=5)
    await storage.reset()
    assert await storage.get_moving_window("e", limit=5, expiry=5) == (clock.now, 0)


async def test_the_key_rate_limiter_uses_it_for_memory_and_no_thread_is_started() -> None:
    limiter = KeyRateLimiter("1000/minute")
    threads_before = threading.active_count()
    decisions = await asyncio.gather(*(limiter.hit("key") for _ in range(200)))
    await asyncio.sleep(0.05)  # room for any background expiry task to run
    assert all(d.allowed for d in decisions)
    assert decisions[-1].remaining == 800
    assert isinstance(limiter._storage, MovingWindowMemoryStorage)
    # limits' own memory storage hands every hit to a worker thread (asyncio.to_thread).
    assert threading.active_count() == threads_before
    await limiter.ping()
