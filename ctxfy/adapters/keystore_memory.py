"""In-memory key store: for tests and single-process experiments (not persistent)."""

from __future__ import annotations

from datetime import datetime

import attrs

from ctxfy.core.errors import KeyNotFoundError, KeyStateError, KeyStoreUnavailableError
from ctxfy.core.keys import KeyRecord

__all__ = ["InMemoryKeyStore"]


class InMemoryKeyStore:
    """Key store in a dict; ``available = False`` simulates an outage.

    Example:
        ```python
        store = InMemoryKeyStore()
        admin = KeyAdmin(store, audit=AuditLog())
        issued = await admin.create(name="ci", scope=Scope.READ)
        ```
    """

    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}
        self.available = True
        self.reads = 0
        self.touches = 0

    def _check(self) -> None:
        if not self.available:
            raise KeyStoreUnavailableError("in-memory key store marked unavailable")

    async def get(self, key_id: str) -> KeyRecord | None:
        """Return the record for ``key_id``, or ``None``."""
        self._check()
        self.reads += 1
        return self._records.get(key_id)

    async def add(self, record: KeyRecord) -> None:
        """Insert a new record; ``KeyStateError`` if the key id exists."""
        self._check()
        if record.key_id in self._records:
            raise KeyStateError(f"key {record.key_id} already exists")
        self._records[record.key_id] = record

    async def update(self, record: KeyRecord) -> None:
        """Replace an existing record; ``KeyNotFoundError`` if it does not exist."""
        self._check()
        if record.key_id not in self._records:
            raise KeyNotFoundError(f"no key with id {record.key_id}")
        self._records[record.key_id] = record

    async def list_keys(self) -> tuple[KeyRecord, ...]:
        """Every record, oldest first."""
        self._check()
        return tuple(sorted(self._records.values(), key=lambda r: (r.created_at, r.key_id)))

    async def touch(self, key_id: str, when: datetime) -> None:
        """Set ``last_used_at`` only; a missing key is ignored."""
        self._check()
        self.touches += 1
        if key_id in self._records:
            self._records[key_id] = attrs.evolve(self._records[key_id], last_used_at=when)

    async def ping(self) -> None:
        """Raise when marked unavailable."""
        self._check()

    async def aclose(self) -> None:
        """Nothing to release."""
