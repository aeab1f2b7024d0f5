"""Short duration texts such as ``30d``, ``15m`` or ``12h``.

Used by ``ctxfy keys create --expires-in``, ``ctxfy keys rotate --grace`` and the
``CTXFY_KEY_MAX_TTL`` setting. Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from datetime import timedelta

from ctxfy.core.errors import InvalidDurationError

__all__ = ["MAX_DURATION", "format_duration", "parse_duration"]

_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"([0-9]{1,10})([smhdw])")

#: The longest duration accepted (about 100 years): beyond it dates stop being useful.
MAX_DURATION = timedelta(days=36500)


def parse_duration(text: str, *, allow_zero: bool = False) -> timedelta:
    """Parse a duration made of one whole number and one unit.

    Units: ``s`` seconds, ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks.

    Args:
        text: The duration, for example ``"30d"``; surrounding spaces are ignored.
        allow_zero: Accept ``0s`` (for example a rotation with no grace period).

    Returns:
        The duration.

    Raises:
        InvalidDurationError: The text is not ``<number><unit>``, is zero while
            ``allow_zero`` is false, or exceeds :data:`MAX_DURATION`.

    Example:
        >>> parse_duration("15m")
        datetime.timedelta(seconds=900)
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidDurationError(
            f"invalid duration {text[:32]!r}: expected a whole number and one unit "
            "(s, m, h, d or w), for example 30d, 15m or 12h"
        )
    value = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if value > MAX_DURATION:
        raise InvalidDurationError(f"invalid duration {text!r}: longer than 36500 days")
    if not value and not allow_zero:
        raise InvalidDurationError(f"invalid duration {text!r}: must be greater than zero")
    return value


def format_duration(value: timedelta) -> str:
    """Render a duration in the largest unit that divides it exactly.

    Args:
        value: A non-negative duration with whole seconds.

    Returns:
        Text that :func:`parse_duration` reads back to the same value.

    Raises:
        InvalidDurationError: The duration is negative or has fractions of a second.

    Example:
        >>> format_duration(timedelta(hours=36))
        '36h'
    """
    seconds = value.total_seconds()
    if seconds < 0 or seconds != int(seconds):
        raise InvalidDurationError(f"cannot format {value!r}: not a whole, positive duration")
    whole = int(seconds)
    for unit in ("w", "d", "h", "m"):
        if whole and whole % _UNITS[unit] == 0:
            return f"{whole // _UNITS[unit]}{unit}"
    return f"{whole}s"
