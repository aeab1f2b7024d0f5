"""Security audit events, written through loguru as structured records.

Each event is one log record whose ``extra`` holds ``audit=True``, ``event``,
``outcome`` and, when known, ``key_id``, ``reason``, ``request_id`` and a few named
details. ctxfy's JSON sink (:mod:`ctxfy.adapters.logging`, installed by the entry point)
prints it as one JSON line and fills ``request_id`` from the current request context.
Secrets never reach this module: callers pass key ids, never key text.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger as default_logger

if TYPE_CHECKING:
    import loguru

    from ctxfy.core.telemetry import MetricsRecorder

__all__ = ["AuditEvent", "AuditLog"]


class AuditEvent(enum.StrEnum):
    """Names of security events (the ``event`` field)."""

    AUTH_FAILED = "auth.failed"
    AUTH_UNAVAILABLE = "auth.store_unavailable"
    SCOPE_DENIED = "auth.scope_denied"
    RATE_LIMITED = "ratelimit.blocked"
    RATE_LIMIT_UNAVAILABLE = "ratelimit.unavailable"
    KEY_CREATED = "key.created"
    KEY_ROTATED = "key.rotated"
    KEY_REVOKED = "key.revoked"
    KEY_BOOTSTRAP = "key.bootstrap"
    INJECTION_FLAGGED = "injection.flagged"


class AuditLog:
    """Writes audit events; cheap enough to call on every refused request.

    Args:
        logger: The loguru logger to write to (default: the global one).
        request_id: Returns the current request id (for example from a contextvar the
            request-logging middleware sets), or ``None`` outside a request.
        metrics: When given, security events are also counted: ``auth.failed`` and
            ``auth.store_unavailable`` by reason, ``auth.scope_denied`` as reason
            ``scope``, and ``ratelimit.blocked``. One place records both, so the log and
            the counters cannot disagree.

    Example:
        ```python
        audit = AuditLog(request_id=lambda: current_request_id.get())
        verifier = ApiKeyVerifier(store, audit=audit)
        ```
    """

    def __init__(
        self,
        logger: loguru.Logger = default_logger,
        *,
        request_id: Callable[[], str | None] | None = None,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self._logger = logger
        self._metrics = metrics
        self._request_id = request_id

    def record(
        self,
        event: AuditEvent,
        *,
        outcome: str,
        key_id: str | None = None,
        reason: str | None = None,
        **details: str | int | None,
    ) -> None:
        """Write one event.

        Args:
            event: What happened.
            outcome: ``"denied"``, ``"error"`` or ``"success"``.
            key_id: The key concerned, when known (never the key text).
            reason: The real reason, for example ``"expired"``; clients never see it.
            **details: Extra non-secret fields such as ``path`` or ``retry_after``.
        """
        fields: dict[str, str | int | bool | None] = {
            "audit": True,
            "event": str(event),
            "outcome": outcome,
            "key_id": key_id,
            "reason": reason,
            **details,
        }
        if self._request_id is not None:
            fields["request_id"] = self._request_id()
        # Unset fields are left out so they never mask what the request context provides
        # (the JSON renderer fills request_id and key_id from it).
        bound = {name: value for name, value in fields.items() if value is not None}
        level = "INFO" if outcome == "success" else "WARNING"
        self._logger.bind(**bound).log(level, f"audit {event} {outcome}")
        if self._metrics is not None:
            self._count(event, reason)

    def _count(self, event: AuditEvent, reason: str | None) -> None:
        if self._metrics is None:
            return
        if event is AuditEvent.AUTH_FAILED:
            self._metrics.count_auth_failure(reason or "invalid")
        elif event is AuditEvent.AUTH_UNAVAILABLE:
            self._metrics.count_auth_failure("store_unavailable")
        elif event is AuditEvent.SCOPE_DENIED:
            self._metrics.count_auth_failure("scope")
        elif event is AuditEvent.RATE_LIMITED:
            self._metrics.count_rate_limited()
