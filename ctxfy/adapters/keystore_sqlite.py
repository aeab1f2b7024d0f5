"""SQLite key store: the embedded default, at ``$CTXFY_DATA_DIR/ctxfy.db``.

Uses the standard library's ``sqlite3`` in worker threads (``asyncio.to_thread``), one
short-lived connection per call, WAL journal so readers never wait for a writer, and a
busy timeout so a locked database gives a bounded wait and then a clear error.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from ctxfy.adapters.keystore_rows import COLUMNS, record_from_row, record_to_row, time_text
from ctxfy.core.errors import KeyNotFoundError, KeyStateError, KeyStoreUnavailableError
from ctxfy.core.keys import KeyRecord

__all__ = ["SqliteKeyStore"]

_T = TypeVar("_T")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    {", ".join(f"{c} TEXT" for c in COLUMNS[1:])}
)
"""
# Column names are the module's own constants, never input: no injection path.
_INSERT = f"INSERT INTO api_keys ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
_UPDATE = f"UPDATE api_keys SET {', '.join(f'{c} = ?' for c in COLUMNS[1:])} WHERE key_id = ?"  # noqa: S608
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM api_keys"  # noqa: S608


class SqliteKeyStore:
    """Key store in one SQLite file, created with mode 0600.

    Args:
        path: The database file; its parent directory is created (mode 0700) if missing.
        busy_timeout: Seconds to wait for a lock held by another process before failing
            with ``KeyStoreUnavailableError``.

    Example:
        ```python
        store = SqliteKeyStore(Path(".ctxfy/ctxfy.db"))
        await store.ping()
        verifier = ApiKeyVerifier(store)
        ```
    """

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._ready = False

    def __repr__(self) -> str:
        return f"SqliteKeyStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Create the file ourselves so it is 0600 from its first byte.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        if not self._ready:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._ready = True
        return conn

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def call() -> _T:
            conn = self._connect()
            try:
                return work(conn)
            finally:
                conn.close()

        try:
            return await asyncio.to_thread(call)
        except (KeyStateError, KeyNotFoundError):
            raise
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise KeyStoreUnavailableError(f"SQLite key store {self.path}: {exc}") from exc

    async def get(self, key_id: str) -> KeyRecord | None:
        """Return the record for ``key_id``, or ``None``."""

        def work(conn: sqlite3.Connection) -> KeyRecord | None:
            row = conn.execute(f"{_SELECT} WHERE key_id = ?", (key_id,)).fetchone()
            return None if row is None else record_from_row(dict(zip(COLUMNS, row, strict=True)))

        return await self._run(work)

    async def add(self, record: KeyRecord) -> None:
        """Insert a new record; ``KeyStateError`` if the key id exists."""
        row = record_to_row(record)

        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(_INSERT, tuple(row[c] for c in COLUMNS))
            except sqlite3.IntegrityError as exc:
                raise KeyStateError(f"key {record.key_id} already exists") from exc

        await self._run(work)

    async def update(self, record: KeyRecord) -> None:
        """Replace an existing record; ``KeyNotFoundError`` if it does not exist."""
        row = record_to_row(record)

        def work(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(_UPDATE, (*(row[c] for c in COLUMNS[1:]), record.key_id))
            if cursor.rowcount == 0:
                raise KeyNotFoundError(f"no key with id {record.key_id}")

        await self._run(work)

    async def list_keys(self) -> tuple[KeyRecord, ...]:
        """Every record, oldest first."""

        def work(conn: sqlite3.Connection) -> tuple[KeyRecord, ...]:
            rows = conn.execute(f"{_SELECT} ORDER BY created_at, key_id").fetchall()
            return tuple(record_from_row(dict(zip(COLUMNS, r, strict=True))) for r in rows)

        return await self._run(work)

    async def touch(self, key_id: str, when: datetime) -> None:
        """Set ``last_used_at`` only; a missing key is ignored."""
        stamp = time_text(when)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (stamp, key_id))

        await self._run(work)

    async def ping(self) -> None:
        """Open the database and run a trivial query."""
        await self._run(lambda conn: conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchall())

    async def aclose(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""
