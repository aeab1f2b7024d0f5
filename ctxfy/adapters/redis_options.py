"""Connection options shared by every Redis client ctxfy opens (key store, rate limits).

A pooled connection can be dead without the pool knowing: Redis restarted, failed over,
closed an idle client (its ``timeout`` setting) or a proxy dropped it. redis-py 8 does
not probe pooled connections before use when maintenance notifications are on, so the
first command on each such connection fails with ``ConnectionError``. Without a retry,
every stale connection in the pool costs one refused request after Redis comes back.

The options below retry a command **once, at once, and only on** ``ConnectionError``
(refused, reset, closed): the retry runs on a fresh connection. Timeouts are not retried,
so an unreachable Redis still refuses within ``timeout`` seconds (fail closed, bounded).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def redis_client_options(timeout: float) -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio.Redis.from_url`` (and limits' storage).

    Args:
        timeout: Seconds for connecting and for each command.

    Returns:
        Socket timeouts and a one-shot retry on dropped connections.
    """
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }
