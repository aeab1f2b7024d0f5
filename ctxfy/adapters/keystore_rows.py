"""Flat text rows for key records, shared by the SQLite and Redis key stores.

Times are ISO 8601 in UTC; ``None`` stays ``None`` (SQL ``NULL``, or an absent Redis
hash field).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from ctxfy.core.keys import KeyRecord, Scope

__all__ = ["COLUMNS", "record_from_row", "record_to_row", "time_text"]

#: Column order of a row; also the SQLite table's column order.
COLUMNS = (
    "key_id",
    "name",
    "scope",
    "secret_hash",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "grace_until",
    "replaced_by",
    "rotated_from",
    "rate_limit",
)


def time_text(value: datetime) -> str:
    """Format a time as rows store it: ISO 8601 in UTC."""
    return value.astimezone(UTC).isoformat()


def _time_text(value: datetime | None) -> str | None:
    return None if value is None else time_text(value)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def record_to_row(record: KeyRecord) -> dict[str, str | None]:
    """Flatten a record into text values keyed by :data:`COLUMNS`."""
    return {
        "key_id": record.key_id,
        "name": record.name,
        "scope": record.scope.value,
        "secret_hash": record.secret_hash,
        "created_at": _time_text(record.created_at),
        "expires_at": _time_text(record.expires_at),
        "last_used_at": _time_text(record.last_used_at),
        "revoked_at": _time_text(record.revoked_at),
        "grace_until": _time_text(record.grace_until),
        "replaced_by": record.replaced_by,
        "rotated_from": record.rotated_from,
        "rate_limit": record.rate_limit,
    }


def record_from_row(row: Mapping[str, str | None]) -> KeyRecord:
    """Rebuild a record from :func:`record_to_row`'s output (missing keys read as ``None``).

    Raises:
        ValueError: A value breaks a :class:`KeyRecord` rule (a corrupt row).
    """
    values = {c: row.get(c) for c in COLUMNS}
    created = _time(values["created_at"])
    if created is None or values["key_id"] is None or values["secret_hash"] is None:
        raise ValueError("corrupt key row: key_id, secret_hash and created_at are required")
    return KeyRecord(
        key_id=values["key_id"],
        name=values["name"] or "",
        scope=Scope.parse(values["scope"] or ""),
        secret_hash=values["secret_hash"],
        created_at=created,
        expires_at=_time(values["expires_at"]),
        last_used_at=_time(values["last_used_at"]),
        revoked_at=_time(values["revoked_at"]),
        grace_until=_time(values["grace_until"]),
        replaced_by=values["replaced_by"],
        rotated_from=values["rotated_from"],
        rate_limit=values["rate_limit"],
    )
