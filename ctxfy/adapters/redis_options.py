"""Connection options shared by every Redis client ctxfy opens (key store, rate limits).

``redis`` is an optional extra (``pip install 'ctxfy[redis]'``), so nothing here imports
it at module level: :func:`require_redis` imports it when a ``redis://`` URL is actually
configured and turns a missing package into a :class:`ConfigurationError` that names the
setting.

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

from types import ModuleType
from typing import Any

from ctxfy.core.errors import ConfigurationError

__all__ = ["REDIS_INSTALL_HINT", "redis_client_options", "require_redis"]

#: What to run when a redis:// URL is configured without the optional dependency.
REDIS_INSTALL_HINT = "pip install 'ctxfy[redis]'"


def require_redis(setting: str) -> ModuleType:
    """Import ``redis.asyncio`` for a setting that names a ``redis://`` URL.

    Args:
        setting: The variable holding the URL, such as ``"CTXFY_KEY_STORE"``.

    Returns:
        The ``redis.asyncio`` module.

    Raises:
        ConfigurationError: The ``redis`` package is not installed; the message names
            ``setting`` and the install command.

    Example:
        ```python
        aioredis = require_redis("CTXFY_RATE_LIMIT_STORAGE")
        pool = aioredis.ConnectionPool.from_url(url, **redis_client_options(2.0))
        ```
    """
    try:
        import redis.asyncio as aioredis  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        raise ConfigurationError(
            f"{setting} is a redis:// URL but the redis package is not installed: "
            f"{REDIS_INSTALL_HINT}"
        ) from exc
    return aioredis


def redis_client_options(timeout: float) -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio.Redis.from_url`` (and limits' storage).

    Call it only once :func:`require_redis` succeeded (it imports ``redis``).

    Args:
        timeout: Seconds for connecting and for each command.

    Returns:
        Socket timeouts and a one-shot retry on dropped connections.
    """
    from redis.asyncio.retry import Retry  # noqa: PLC0415 - optional extra
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: PLC0415

    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }
