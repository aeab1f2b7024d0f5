"""API keys: scopes, the key text, stored records, the check rule and the store port.

A key reads ``ctxfy_<key_id>_<secret>``: a fixed prefix that secret scanners can match,
a 12-character public id (lower-case letters and digits) and a 43-character secret
drawn from ``[A-Za-z0-9]`` (about 256 bits). Only a hash of the secret is stored.

Why SHA-256 and not a slow KDF (bcrypt, scrypt, Argon2): slow hashing protects
*low-entropy* secrets such as passwords from offline guessing. A 256-bit random secret
cannot be guessed, slow or fast, so a fast hash costs nothing in safety and keeps each
request cheap. The hash input binds the key id (domain separation), and comparison is
constant-time (:func:`hmac.compare_digest`).

Pure: standard library and attrs only; the caller passes ``now`` and the secrets.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import string
from datetime import datetime
from typing import Any, Protocol

import attrs

from ctxfy.core.errors import MalformedKeyError

__all__ = [
    "KEY_ID_ALPHABET",
    "KEY_ID_LENGTH",
    "KEY_PATTERN",
    "KEY_PREFIX",
    "SECRET_ALPHABET",
    "SECRET_LENGTH",
    "ApiKey",
    "KeyCheck",
    "KeyOutcome",
    "KeyRecord",
    "KeyStore",
    "Scope",
    "check_key",
    "hash_secret",
    "secret_matches",
]

KEY_PREFIX = "ctxfy"
KEY_ID_LENGTH = 12
KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
SECRET_LENGTH = 43
SECRET_ALPHABET = string.ascii_letters + string.digits
_KEY_ID = re.compile(f"[a-z0-9]{{{KEY_ID_LENGTH}}}")
_SECRET = re.compile(f"[A-Za-z0-9]{{{SECRET_LENGTH}}}")
_KEY_TEXT_LENGTH = len(KEY_PREFIX) + 1 + KEY_ID_LENGTH + 1 + SECRET_LENGTH
#: Finds full key text inside longer text (logs, files): what secret scanners look for.
KEY_PATTERN = re.compile(f"{KEY_PREFIX}_[a-z0-9]{{{KEY_ID_LENGTH}}}_[A-Za-z0-9]{{{SECRET_LENGTH}}}")
_HASH_SCHEME = "sha256"
_MAX_NAME = 100


class Scope(enum.Enum):
    """What a key may do; each scope includes the ones below it: read < write < admin.

    ``read`` lists and gets prompts and resources and calls read-only tools; ``write``
    also calls LLM-backed tools; ``admin`` also manages keys.
    """

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order, 0 for ``read``."""
        return _ORDER.index(self)

    def includes(self, other: Scope) -> bool:
        """Tell whether a key with this scope may do what ``other`` allows."""
        return self.rank >= other.rank

    def expanded(self) -> tuple[str, ...]:
        """This scope and every scope it includes, as strings (``admin`` → all three)."""
        return tuple(s.value for s in _ORDER[: self.rank + 1])

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Scope):
            return NotImplemented
        return self.rank < other.rank

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Read ``read``, ``write`` or ``admin`` (exact, lower case).

        Raises:
            ValueError: Any other text; the message lists the valid scopes.
        """
        for scope in cls:
            if scope.value == text:
                return scope
        raise ValueError(f"unknown scope {text[:20]!r}: expected read, write or admin")


_ORDER = (Scope.READ, Scope.WRITE, Scope.ADMIN)


def _check_key_id(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _KEY_ID.fullmatch(value):
        raise ValueError(f"{attribute.name} must be {KEY_ID_LENGTH} characters of [a-z0-9]")


def _check_secret(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _SECRET.fullmatch(value):  # the message never contains the value
        raise ValueError(f"{attribute.name} must be {SECRET_LENGTH} characters of [A-Za-z0-9]")


@attrs.frozen
class ApiKey:
    """A full API key as presented by a client: key id plus secret.

    The secret is left out of ``repr`` so a stray log of this object leaks nothing.

    Attributes:
        key_id: Public identifier, 12 characters of ``[a-z0-9]``.
        secret: 43 characters of ``[A-Za-z0-9]``.
    """

    key_id: str = attrs.field(validator=_check_key_id)
    secret: str = attrs.field(repr=False, validator=_check_secret)

    @classmethod
    def parse(cls, text: str) -> ApiKey:
        """Parse ``ctxfy_<key_id>_<secret>`` strictly (exact length, ASCII, no spaces).

        Raises:
            MalformedKeyError: The text is not a ctxfy key. The message never echoes it.
        """
        if len(text) != _KEY_TEXT_LENGTH:
            raise MalformedKeyError("not a ctxfy API key: wrong length")
        prefix, sep1, rest = text.partition("_")
        key_id, sep2, secret = rest.partition("_")
        if prefix != KEY_PREFIX or not sep1 or not sep2:
            raise MalformedKeyError("not a ctxfy API key: expected ctxfy_<key_id>_<secret>")
        if not _KEY_ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
            raise MalformedKeyError("not a ctxfy API key: bad characters")
        return cls(key_id, secret)

    @property
    def text(self) -> str:
        """The full key, to show once to its owner and never to log."""
        return f"{KEY_PREFIX}_{self.key_id}_{self.secret}"

    @property
    def redacted(self) -> str:
        """The key with its secret masked: safe for logs and access-token objects."""
        return f"{KEY_PREFIX}_{self.key_id}_****"


def hash_secret(key_id: str, secret: str) -> str:
    """Hash a key's secret for storage, as ``sha256:<hex>`` bound to its key id."""
    digest = hashlib.sha256(f"ctxfy-api-key:v1:{key_id}:{secret}".encode()).hexdigest()
    return f"{_HASH_SCHEME}:{digest}"


def secret_matches(key_id: str, secret: str, secret_hash: str) -> bool:
    """Compare a presented secret with a stored hash in constant time."""
    return hmac.compare_digest(hash_secret(key_id, secret).encode(), secret_hash.encode())


def _aware(_: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime")


def _check_name(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip() or len(value) > _MAX_NAME or not value.isprintable():
        raise ValueError(f"{attribute.name} must be 1-{_MAX_NAME} printable characters")


_optional_id = attrs.validators.optional(_check_key_id)


@attrs.frozen
class KeyRecord:
    """What the key store keeps about one key (never the secret itself).

    Attributes:
        key_id: Public identifier.
        name: Human label, 1-100 printable characters.
        scope: The highest scope granted.
        secret_hash: :func:`hash_secret` of the secret; never returned by any API.
        created_at: Creation time (UTC-aware, like every time here).
        expires_at: After this the key stops working; ``None`` never expires.
        last_used_at: Last successful use, updated at most about once a minute.
        revoked_at: Revocation time; ``None`` while not revoked.
        grace_until: Set by rotation: the key works until then, then stops.
        replaced_by: Set by rotation: the key id of the successor.
        rotated_from: On a successor: the key id it replaced.
        rate_limit: Per-key override such as ``"10/minute"``; ``None`` uses the default.
    """

    key_id: str = attrs.field(validator=_check_key_id)
    name: str = attrs.field(validator=_check_name)
    scope: Scope = attrs.field(validator=attrs.validators.instance_of(Scope))
    secret_hash: str = attrs.field(repr=False)
    created_at: datetime = attrs.field(validator=_aware)
    expires_at: datetime | None = attrs.field(default=None, validator=_aware)
    last_used_at: datetime | None = attrs.field(default=None, validator=_aware)
    revoked_at: datetime | None = attrs.field(default=None, validator=_aware)
    grace_until: datetime | None = attrs.field(default=None, validator=_aware)
    replaced_by: str | None = attrs.field(default=None, validator=_optional_id)
    rotated_from: str | None = attrs.field(default=None, validator=_optional_id)
    rate_limit: str | None = None

    @secret_hash.validator
    def _check_hash(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not value.startswith(f"{_HASH_SCHEME}:"):
            raise ValueError(f"{attribute.name} must start with '{_HASH_SCHEME}:'")

    def stops_at(self) -> datetime | None:
        """The earliest of expiry and end of rotation grace, or ``None`` if neither."""
        ends = [t for t in (self.expires_at, self.grace_until) if t is not None]
        return min(ends) if ends else None

    def status(self, now: datetime) -> str:
        """One word: ``active``, ``rotating``, ``revoked``, ``rotated`` or ``expired``."""
        outcome = _state_outcome(self, now)
        if outcome is KeyOutcome.OK:
            return "rotating" if self.grace_until is not None else "active"
        return _STATUS[outcome]


class KeyOutcome(enum.Enum):
    """Result of checking a presented key; the value is the audit log's reason."""

    OK = "ok"
    UNKNOWN = "unknown_key"
    BAD_SECRET = "bad_secret"  # noqa: S105 - an outcome name, not a secret
    REVOKED = "revoked"
    ROTATED_OUT = "rotated_out"
    EXPIRED = "expired"


_STATUS = {
    KeyOutcome.REVOKED: "revoked",
    KeyOutcome.ROTATED_OUT: "rotated",
    KeyOutcome.EXPIRED: "expired",
}


@attrs.frozen
class KeyCheck:
    """The verdict on a presented key.

    Attributes:
        outcome: Why it passed or failed (for the audit log, never for the client).
        record: The stored record when the key id was known and the secret matched.
    """

    outcome: KeyOutcome
    record: KeyRecord | None = None

    @property
    def ok(self) -> bool:
        """True when the key may be used now."""
        return self.outcome is KeyOutcome.OK

    @property
    def reason(self) -> str:
        """The audit reason, for example ``"expired"``."""
        return self.outcome.value


def _state_outcome(record: KeyRecord, now: datetime) -> KeyOutcome:
    if record.revoked_at is not None and now >= record.revoked_at:
        return KeyOutcome.REVOKED
    if record.grace_until is not None and now >= record.grace_until:
        return KeyOutcome.ROTATED_OUT
    if record.expires_at is not None and now >= record.expires_at:
        return KeyOutcome.EXPIRED
    return KeyOutcome.OK


def check_key(record: KeyRecord | None, key: ApiKey, now: datetime) -> KeyCheck:
    """Decide whether a presented key may be used at ``now``.

    The secret is checked first, so that only a holder of the secret learns (through
    the audit log, never the response) whether the key was revoked or expired.

    Args:
        record: The stored record for ``key.key_id``, or ``None`` when there is none.
        key: The key as presented.
        now: The current time, timezone-aware.

    Returns:
        ``KeyCheck`` with outcome ``OK``, ``UNKNOWN``, ``BAD_SECRET``, ``REVOKED``,
        ``ROTATED_OUT`` (rotation grace is over) or ``EXPIRED``.
    """
    if record is None or record.key_id != key.key_id:
        return KeyCheck(KeyOutcome.UNKNOWN)
    if not secret_matches(key.key_id, key.secret, record.secret_hash):
        return KeyCheck(KeyOutcome.BAD_SECRET)
    outcome = _state_outcome(record, now)
    return KeyCheck(outcome, record if outcome is KeyOutcome.OK else None)


class KeyStore(Protocol):
    """Port: where key records live (SQLite, Redis, memory).

    Every method raises :class:`~ctxfy.core.errors.KeyStoreUnavailableError` when the
    store cannot be reached, so callers can fail closed.
    """

    async def get(self, key_id: str) -> KeyRecord | None:
        """Return the record for ``key_id``, or ``None``."""
        ...

    async def add(self, record: KeyRecord) -> None:
        """Insert a new record; ``KeyStateError`` if the key id exists."""
        ...

    async def update(self, record: KeyRecord) -> None:
        """Replace an existing record; ``KeyNotFoundError`` if it does not exist."""
        ...

    async def list_keys(self) -> tuple[KeyRecord, ...]:
        """Every record, oldest first."""
        ...

    async def touch(self, key_id: str, when: datetime) -> None:
        """Set ``last_used_at`` only (cheap; missing keys are ignored)."""
        ...

    async def ping(self) -> None:
        """Check the store answers (for readiness)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
