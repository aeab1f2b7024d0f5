"""Redis key store: several replicas share keys through one Redis.

Each key is a hash at ``<prefix>:key:<key_id>``; the set ``<prefix>:keys`` indexes them.
Adds, updates and touches run as small Lua scripts so each is atomic. Needs the
``redis`` package (``pip install 'ctxfy[redis]'``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ctxfy.adapters.keystore_rows import record_from_row, record_to_row, time_text
from ctxfy.adapters.redis_options import redis_client_options
from ctxfy.core.errors import KeyNotFoundError, KeyStateError, KeyStoreUnavailableError
from ctxfy.core.keys import KeyRecord

__all__ = ["RedisKeyStore"]

# KEYS[1] = record hash, KEYS[2] = index set; ARGV = key_id, then field/value pairs.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1])
return 1
"""


class RedisKeyStore:
    """Key store in Redis, shared by every replica that uses the same URL.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS); credentials in the URL
            are never logged by this class.
        prefix: Namespace for this store's Redis keys.
        timeout: Seconds for connecting and for each command; an unreachable Redis then
            fails fast with ``KeyStoreUnavailableError`` (callers fail closed).

    Example:
        ```python
        store = RedisKeyStore("redis://127.0.0.1:6379/0")
        mcp = FastMCP("demo", auth=ApiKeyVerifier(store))
        ```
    """

    def __init__(self, url: str, *, prefix: str = "ctxfy", timeout: float = 2.0) -> None:
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            **redis_client_options(timeout),
        )
        self._prefix = prefix
        self._index = f"{prefix}:keys"
        self._add = self._client.register_script(_ADD)
        self._update = self._client.register_script(_UPDATE)
        self._touch = self._client.register_script(_TOUCH)

    def __repr__(self) -> str:
        return f"RedisKeyStore(prefix={self._prefix!r})"

    def _key(self, key_id: str) -> str:
        return f"{self._prefix}:key:{key_id}"

    @staticmethod
    def _fields(record: KeyRecord) -> list[str]:
        pairs: list[str] = []
        for column, value in record_to_row(record).items():
            if value is not None:
                pairs += [column, value]
        return pairs

    @staticmethod
    def _unavailable(exc: Exception) -> KeyStoreUnavailableError:
        return KeyStoreUnavailableError(f"Redis key store: {type(exc).__name__}: {exc}")

    async def get(self, key_id: str) -> KeyRecord | None:
        """Return the record for ``key_id``, or ``None``."""
        try:
            row = cast("dict[str, str]", await self._client.hgetall(self._key(key_id)))
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return record_from_row(row) if row else None

    async def _script(self, script: Any, key_id: str, args: list[str], with_index: bool) -> int:
        keys = [self._key(key_id), self._index] if with_index else [self._key(key_id)]
        try:
            return int(await script(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def add(self, record: KeyRecord) -> None:
        """Insert a new record; ``KeyStateError`` if the key id exists."""
        args = [record.key_id, *self._fields(record)]
        if not await self._script(self._add, record.key_id, args, with_index=True):
            raise KeyStateError(f"key {record.key_id} already exists")

    async def update(self, record: KeyRecord) -> None:
        """Replace an existing record; ``KeyNotFoundError`` if it does not exist."""
        args = [record.key_id, *self._fields(record)]
        if not await self._script(self._update, record.key_id, args, with_index=False):
            raise KeyNotFoundError(f"no key with id {record.key_id}")

    async def list_keys(self) -> tuple[KeyRecord, ...]:
        """Every record, oldest first."""
        try:
            ids = sorted(str(i) for i in await self._client.smembers(self._index))
            async with self._client.pipeline(transaction=False) as pipe:
                for key_id in ids:
                    pipe.hgetall(self._key(key_id))
                rows: list[dict[str, str]] = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        records = [record_from_row(row) for row in rows if row]
        return tuple(sorted(records, key=lambda r: (r.created_at, r.key_id)))

    async def touch(self, key_id: str, when: datetime) -> None:
        """Set ``last_used_at`` only; a missing key is ignored."""
        await self._script(self._touch, key_id, [time_text(when)], with_index=False)

    async def ping(self) -> None:
        """Send ``PING``."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
