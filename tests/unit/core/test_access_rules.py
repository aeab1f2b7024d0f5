"""Durations, first-start decisions and rate-limit verdicts."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxfy.core.access import FirstStart, RateLimitDecision, decide_first_start, is_loopback
from ctxfy.core.durations import MAX_DURATION, format_duration, parse_duration
from ctxfy.core.errors import InvalidDurationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "d", "30", "30 d", "1.5h", "-1d", "30D", "1y", "1d2h", "\u0661\u0662h", "99999999999d"],
)
def test_bad_durations_name_the_rule(text: str) -> None:
    with pytest.raises(InvalidDurationError, match="duration"):
        parse_duration(text)


def test_zero_needs_permission_and_huge_values_are_refused() -> None:
    with pytest.raises(InvalidDurationError, match="greater than zero"):
        parse_duration("0s")
    assert parse_duration("0m", allow_zero=True) == timedelta(0)
    with pytest.raises(InvalidDurationError, match="36500"):
        parse_duration("5300w")


@given(st.integers(0, int(MAX_DURATION.total_seconds())))
def test_format_reads_back_to_the_same_duration(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value), allow_zero=True) == value


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "auth", "has_keys", "explicit", "action"),
    [
        ("127.0.0.1", True, False, False, FirstStart.BOOTSTRAP),
        ("127.0.0.1", True, True, False, FirstStart.PROCEED),
        ("127.0.0.1", False, False, False, FirstStart.PROCEED),
        ("0.0.0.0", False, True, True, FirstStart.REFUSE),
        ("0.0.0.0", True, False, False, FirstStart.REFUSE),
        ("0.0.0.0", True, False, True, FirstStart.BOOTSTRAP),
        ("0.0.0.0", True, True, False, FirstStart.PROCEED),
    ],
)
def test_first_start(
    host: str, auth: bool, has_keys: bool, explicit: bool, action: FirstStart
) -> None:
    decision = decide_first_start(
        host=host, auth_enabled=auth, has_keys=has_keys, bootstrap_any_host=explicit
    )
    assert decision.action is action
    if action is FirstStart.REFUSE:
        assert "CTXFY_" in decision.reason


def test_rate_limit_decision_retry_after() -> None:
    assert RateLimitDecision(True, 10, 3, 20).retry_after == 0
    assert RateLimitDecision(False, 10, 0, 20).retry_after == 20
    assert RateLimitDecision(False, 10, 0, 0).retry_after == 1
    with pytest.raises(ValueError, match="remaining"):
        RateLimitDecision(True, 10, -1, 0)
