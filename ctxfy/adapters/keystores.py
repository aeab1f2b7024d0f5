"""Open a key store from the ``CTXFY_KEY_STORE`` URL."""

from __future__ import annotations

from pathlib import Path

from ctxfy.adapters.keystore_memory import InMemoryKeyStore
from ctxfy.adapters.keystore_sqlite import SqliteKeyStore
from ctxfy.adapters.redis_options import require_redis
from ctxfy.core.errors import ConfigurationError
from ctxfy.core.keys import KeyStore

__all__ = ["default_key_store_url", "open_key_store"]


def default_key_store_url(data_dir: Path) -> str:
    """The embedded default: SQLite at ``<data_dir>/ctxfy.db``."""
    return f"sqlite://{data_dir.resolve() / 'ctxfy.db'}"


def open_key_store(url: str) -> KeyStore:
    """Build the key store a URL names; nothing is connected until first use.

    Accepted: ``sqlite:///absolute/path.db`` (``sqlite://relative.db`` is relative to
    the working directory), ``redis://host:port/db`` or ``rediss://...`` (shared by
    replicas; needs ``ctxfy[redis]``), and ``memory://`` (one process, lost on exit).

    Args:
        url: The store URL, usually from ``CTXFY_KEY_STORE``.

    Returns:
        A :class:`~ctxfy.core.keys.KeyStore`.

    Raises:
        ConfigurationError: The scheme is not one of the above, the path is empty, or
            a ``redis://`` URL is given without the ``redis`` package; the message
            names ``CTXFY_KEY_STORE``.

    Example:
        ```python
        store = open_key_store("sqlite:///var/lib/ctxfy/ctxfy.db")
        ```
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme == "sqlite" and rest:
        return SqliteKeyStore(Path(rest))
    if sep and scheme in {"redis", "rediss"} and rest:
        # Imported here: redis is an optional extra (ctxfy[redis]).
        require_redis("CTXFY_KEY_STORE")
        from ctxfy.adapters.keystore_redis import RedisKeyStore  # noqa: PLC0415

        return RedisKeyStore(url)
    if url == "memory://":
        return InMemoryKeyStore()
    shown = scheme if sep else url[:20]
    raise ConfigurationError(
        f"CTXFY_KEY_STORE: unsupported key store {shown!r}; expected sqlite:///path, "
        "redis://host:port/db or memory://"
    )
