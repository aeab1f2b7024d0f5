"""Access-control rules that are not about one key: first start and rate-limit verdicts.

Pure: the caller supplies every fact (is the store empty, which host is bound).
"""

from __future__ import annotations

import enum
import ipaddress

import attrs

__all__ = [
    "FirstStart",
    "RateLimitDecision",
    "StartupDecision",
    "decide_first_start",
    "is_loopback",
]


def is_loopback(host: str) -> bool:
    """Tell whether a bind address only accepts local connections.

    ``localhost``, ``127.0.0.0/8`` and ``::1`` are loopback; ``0.0.0.0``, ``::`` and
    every other name or address are not.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
        (True, False)
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class FirstStart(enum.Enum):
    """What the server does about keys before it starts serving."""

    PROCEED = "proceed"  # keys exist, or auth is off on loopback
    BOOTSTRAP = "bootstrap"  # create a bootstrap admin key file, then serve
    REFUSE = "refuse"  # do not start; the reason says what to change


@attrs.frozen
class StartupDecision:
    """The first-start verdict and, for ``REFUSE``, a message naming the settings.

    Attributes:
        action: What to do.
        reason: Why, in one sentence for the operator.
    """

    action: FirstStart
    reason: str


def decide_first_start(
    *, host: str, auth_enabled: bool, has_keys: bool, bootstrap_any_host: bool = False
) -> StartupDecision:
    """Decide how to start given the bind address and the key store's contents.

    Rules: ``CTXFY_AUTH=off`` is allowed only on loopback. With auth on and no keys,
    a loopback server creates a bootstrap admin key (written to a 0600 file); any
    other address refuses unless explicitly told to bootstrap there too.

    Args:
        host: The address the server binds.
        auth_enabled: False when ``CTXFY_AUTH=off``.
        has_keys: Whether the key store holds at least one key (any state).
        bootstrap_any_host: The operator's explicit permission to bootstrap off loopback.

    Returns:
        The decision.
    """
    local = is_loopback(host)
    if not auth_enabled:
        if local:
            return StartupDecision(FirstStart.PROCEED, "authentication is off (loopback only)")
        return StartupDecision(
            FirstStart.REFUSE,
            f"CTXFY_AUTH=off is allowed only on a loopback address, not {host!r}",
        )
    if has_keys:
        return StartupDecision(FirstStart.PROCEED, "the key store has keys")
    if local or bootstrap_any_host:
        return StartupDecision(FirstStart.BOOTSTRAP, "the key store is empty")
    return StartupDecision(
        FirstStart.REFUSE,
        f"the key store (CTXFY_KEY_STORE) has no API keys and {host!r} is not loopback: "
        "create one with `ctxfy keys create --name NAME --scope admin`, "
        "or set CTXFY_BOOTSTRAP=1 to write a bootstrap admin key file",
    )


def _non_negative(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0")


@attrs.frozen
class RateLimitDecision:
    """The verdict of a per-key rate limiter on one request.

    Attributes:
        allowed: Whether the request may proceed.
        limit: Requests allowed per window.
        remaining: Requests left in the current window after this one.
        reset_after: Whole seconds until the window frees capacity again.
    """

    allowed: bool
    limit: int = attrs.field(validator=_non_negative)
    remaining: int = attrs.field(validator=_non_negative)
    reset_after: int = attrs.field(validator=_non_negative)

    @property
    def retry_after(self) -> int:
        """Seconds a refused client should wait (at least 1); 0 when allowed."""
        return 0 if self.allowed else max(1, self.reset_after)
