"""An in-process moving-window storage for ``limits`` that costs O(1) per request.

``limits``' own async ``MemoryStorage`` keeps each key's window as a list with the newest
entry first and, after *every* hit, starts a task that hands each key's list to a worker
thread (``asyncio.to_thread``) to find the expired entries, then copies the list. Under load
that is one thread hop and one O(window) copy per request; with a high per-key rate (say
``60000/minute`` for a service account) it was the largest single cost of a ctxfy request
(see ``docs/performance.md``). This storage keeps the same moving-window semantics with a
:class:`collections.deque` per key (oldest entry first): expired entries are dropped from
the left when the key is next used, and keys left idle are swept at most once per
``sweep_interval``. Everything runs on the event loop, with no lock: no step awaits.

Only the moving-window methods differ; counters (fixed and sliding windows) are inherited
unchanged from ``limits.aio.storage.MemoryStorage``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from limits.aio.storage import MemoryStorage

__all__ = ["MovingWindowMemoryStorage"]


class MovingWindowMemoryStorage(MemoryStorage):
    """``limits`` async memory storage with an O(1) amortised moving window.

    Args:
        sweep_interval: Seconds between sweeps of idle keys (whose whole window expired).
        clock: Wall-clock seconds (``time.time``, as ``limits`` uses); tests replace it.

    Example:
        ```python
        from limits.aio.strategies import MovingWindowRateLimiter

        limiter = MovingWindowRateLimiter(MovingWindowMemoryStorage())
        allowed = await limiter.hit(limits.parse("120/minute"), "ctxfy", "key-id")
        ```
    """

    # No STORAGE_SCHEME: this class is built directly, never looked up by URL, so it does
    # not replace ``limits``' own ``async+memory://`` registration.

    def __init__(
        self, *, sweep_interval: float = 10.0, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__()
        self._windows: dict[str, deque[float]] = {}
        self._expiries: dict[str, float] = {}
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        self._clock = clock

    def _window(self, key: str, expiry: float, now: float) -> deque[float]:
        if now >= self._next_sweep:
            self._sweep(now)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = deque()
        self._expiries[key] = expiry
        cutoff = now - expiry
        while window and window[0] < cutoff:
            window.popleft()
        return window

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_interval
        idle = [
            key
            for key, window in self._windows.items()
            if not window or window[-1] < now - self._expiries.get(key, 0.0)
        ]
        for key in idle:
            del self._windows[key]
            self._expiries.pop(key, None)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Record ``amount`` entries for ``key`` if the window has room for them all."""
        if amount > limit:
            return False
        now = self._clock()
        window = self._window(key, expiry, now)
        if len(window) + amount > limit:
            return False
        window.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """Return (time of the oldest entry in the window, number of entries in it)."""
        now = self._clock()
        window = self._window(key, expiry, now)
        if not window:
            return now, 0
        return window[0], len(window)

    async def clear(self, key: str) -> None:
        """Forget ``key``'s window and counters."""
        self._windows.pop(key, None)
        self._expiries.pop(key, None)
        await super().clear(key)

    async def reset(self) -> int | None:
        """Forget every window and counter."""
        self._windows.clear()
        self._expiries.clear()
        return await super().reset()
