"""Key administration: create, list, revoke, rotate, and the first-start bootstrap key.

Shared by the CLI (``ctxfy keys ...``) and the REST routes under ``/v1/keys``. Secrets
come from :mod:`secrets`; only their hashes reach the store, and only the returned
:class:`IssuedKey` holds the key text (shown once).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.adapters.ratelimit import parse_rate
from ctxfy.core.durations import format_duration
from ctxfy.core.errors import KeyNotFoundError, KeyRequestError, KeyStateError
from ctxfy.core.keys import (
    KEY_ID_ALPHABET,
    KEY_ID_LENGTH,
    SECRET_ALPHABET,
    SECRET_LENGTH,
    ApiKey,
    KeyRecord,
    KeyStore,
    Scope,
    hash_secret,
)

__all__ = [
    "BOOTSTRAP_KEY_FILE",
    "Clock",
    "IssuedKey",
    "KeyAdmin",
    "describe_key",
    "new_api_key",
    "system_clock",
]

#: Name of the bootstrap admin key file inside the data directory.
BOOTSTRAP_KEY_FILE = "bootstrap-admin.key"

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def new_api_key() -> ApiKey:
    """A fresh key: random key id and a 256-bit random secret."""
    key_id = "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return ApiKey(key_id, secret)


def describe_key(record: KeyRecord, now: datetime) -> dict[str, Any]:
    """A record as JSON for listings: every field except the secret hash, plus ``status``."""

    def stamp(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "key_id": record.key_id,
        "name": record.name,
        "scope": record.scope.value,
        "status": record.status(now),
        "created_at": stamp(record.created_at),
        "expires_at": stamp(record.expires_at),
        "last_used_at": stamp(record.last_used_at),
        "revoked_at": stamp(record.revoked_at),
        "grace_until": stamp(record.grace_until),
        "replaced_by": record.replaced_by,
        "rotated_from": record.rotated_from,
        "rate_limit": record.rate_limit,
    }


@attrs.frozen
class IssuedKey:
    """A key just created: the only object that ever holds the full key text.

    Attributes:
        key: The full key (its secret is hidden from ``repr``).
        record: What the store keeps.
    """

    key: ApiKey
    record: KeyRecord

    def as_json(self) -> dict[str, Any]:
        """The CLI/REST answer: ``key_id``, ``key``, ``name``, ``scope``, ``expires_at``."""
        expires = self.record.expires_at
        return {
            "key_id": self.record.key_id,
            "key": self.key.text,
            "name": self.record.name,
            "scope": self.record.scope.value,
            "expires_at": expires.isoformat() if expires else None,
        }


class KeyAdmin:
    """Key lifecycle operations over a :class:`~ctxfy.core.keys.KeyStore`.

    Args:
        store: Where records live.
        clock: Returns the current UTC time.
        audit: Receives ``key.created``, ``key.rotated``, ``key.revoked``, ``key.bootstrap``
            (with ``actor_key_id`` when the caller names the acting admin key).
        max_ttl: When set (``CTXFY_KEY_MAX_TTL``), every key expires: a key created
            without ``expires_in`` gets this lifetime, and a longer one is refused.

    Example:
        ```python
        admin = KeyAdmin(SqliteKeyStore(Path("ctxfy.db")))
        issued = await admin.create(name="ci", scope=Scope.READ, expires_in=timedelta(days=30))
        print(issued.key.text)  # show once; only its hash is stored
        ```
    """

    def __init__(
        self,
        store: KeyStore,
        clock: Clock = system_clock,
        audit: AuditLog | None = None,
        max_ttl: timedelta | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self._audit = audit if audit is not None else AuditLog()
        self._max_ttl = max_ttl

    def _lifetime(self, expires_in: timedelta | None) -> timedelta | None:
        if expires_in is not None and expires_in <= timedelta(0):
            raise KeyRequestError("expires_in must be greater than zero")
        if self._max_ttl is None:
            return expires_in
        if expires_in is None:
            return self._max_ttl
        if expires_in > self._max_ttl:
            raise KeyRequestError(
                f"expires_in {format_duration(expires_in)} exceeds CTXFY_KEY_MAX_TTL "
                f"({format_duration(self._max_ttl)})"
            )
        return expires_in

    async def create(
        self,
        *,
        name: str,
        scope: Scope,
        expires_in: timedelta | None = None,
        rate_limit: str | None = None,
        rotated_from: str | None = None,
        actor_key_id: str | None = None,
    ) -> IssuedKey:
        """Create a key and return it with its text (to be shown exactly once).

        ``actor_key_id`` (the admin key making the request over HTTP; ``None`` from the
        CLI) is written to the audit event as ``actor_key_id``.

        Raises:
            KeyRequestError: Bad name, expiry beyond ``max_ttl``, or a rate limit that
                is not exactly one rate of at least 1 (``"10/minute"`` is fine;
                ``"0/minute"`` and ``"10/minute;100/day"`` are refused).
            KeyStoreUnavailableError: The store cannot be reached.
        """
        if rate_limit is not None:
            try:
                parse_rate(rate_limit, "rate_limit")
            except ValueError as exc:
                raise KeyRequestError(str(exc)) from exc
        lifetime = self._lifetime(expires_in)
        now = self.clock()
        for _ in range(3):  # a key id collision is astronomically rare; retry anyway
            key = new_api_key()
            try:
                record = KeyRecord(
                    key_id=key.key_id,
                    name=name,
                    scope=scope,
                    secret_hash=hash_secret(key.key_id, key.secret),
                    created_at=now,
                    expires_at=now + lifetime if lifetime is not None else None,
                    rotated_from=rotated_from,
                    rate_limit=rate_limit,
                )
            except ValueError as exc:
                raise KeyRequestError(str(exc)) from exc
            try:
                await self.store.add(record)
            except KeyStateError:
                continue
            self._audit.record(
                AuditEvent.KEY_CREATED,
                outcome="success",
                key_id=key.key_id,
                scope=scope.value,
                actor_key_id=actor_key_id,
            )
            return IssuedKey(key, record)
        raise KeyStateError("could not allocate a unique key id")  # pragma: no cover

    async def list_keys(self) -> tuple[KeyRecord, ...]:
        """Every key record, oldest first (hashes included: callers must not expose them)."""
        return await self.store.list_keys()

    async def has_keys(self) -> bool:
        """Whether the store holds at least one key, in any state."""
        return bool(await self.store.list_keys())

    async def _existing(self, key_id: str) -> KeyRecord:
        record = await self.store.get(key_id)
        if record is None:
            raise KeyNotFoundError(f"no key with id {key_id[:32]!r}")
        return record

    async def revoke(self, key_id: str, *, actor_key_id: str | None = None) -> KeyRecord:
        """Revoke a key now; every replica refuses it within the verifier's cache TTL.

        Raises:
            KeyNotFoundError: No such key.
            KeyStateError: The key is already revoked.
        """
        record = await self._existing(key_id)
        if record.revoked_at is not None:
            raise KeyStateError(f"key {key_id} is already revoked")
        revoked = attrs.evolve(record, revoked_at=self.clock())
        await self.store.update(revoked)
        self._audit.record(
            AuditEvent.KEY_REVOKED, outcome="success", key_id=key_id, actor_key_id=actor_key_id
        )
        return revoked

    async def rotate(
        self, key_id: str, *, grace: timedelta = timedelta(0), actor_key_id: str | None = None
    ) -> IssuedKey:
        """Issue a successor with the same name, scope and rate limit.

        The old key keeps working until ``now + grace``, then stops. The successor keeps
        the old key's lifetime length (capped by ``max_ttl``), counted from now.

        Raises:
            KeyNotFoundError: No such key.
            KeyStateError: The key is revoked, expired, or was already rotated.
            KeyRequestError: ``grace`` is negative.
        """
        if grace < timedelta(0):
            raise KeyRequestError("grace must not be negative")
        old = await self._existing(key_id)
        now = self.clock()
        status = old.status(now)
        if old.replaced_by is not None or status != "active":
            raise KeyStateError(f"key {key_id} is {status} and cannot be rotated")
        lifetime = old.expires_at - old.created_at if old.expires_at is not None else None
        if lifetime is not None and self._max_ttl is not None:
            lifetime = min(lifetime, self._max_ttl)
        issued = await self.create(
            name=old.name,
            scope=old.scope,
            expires_in=lifetime,
            rate_limit=old.rate_limit,
            rotated_from=old.key_id,
            actor_key_id=actor_key_id,
        )
        retired = attrs.evolve(old, grace_until=now + grace, replaced_by=issued.record.key_id)
        await self.store.update(retired)
        self._audit.record(
            AuditEvent.KEY_ROTATED,
            outcome="success",
            key_id=key_id,
            replaced_by=issued.record.key_id,
            grace_seconds=int(grace.total_seconds()),
            actor_key_id=actor_key_id,
        )
        return issued

    async def ensure_bootstrap_key(self, data_dir: Path) -> Path | None:
        """On an empty store, create an admin key and write it to a 0600 file.

        Only the file's path is logged (audit event ``key.bootstrap``), never the key.

        Args:
            data_dir: Directory for the file (created with mode 0700 if missing).

        Returns:
            The file path, or ``None`` when the store already had keys.
        """
        if await self.has_keys():
            return None
        issued = await self.create(name="bootstrap", scope=Scope.ADMIN)
        path = data_dir / BOOTSTRAP_KEY_FILE
        _write_private(path, issued.key.text + "\n")
        self._audit.record(
            AuditEvent.KEY_BOOTSTRAP,
            outcome="success",
            key_id=issued.record.key_id,
            path=str(path),
        )
        return path


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
