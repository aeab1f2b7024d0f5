"""The rules for ``http.request`` lines: the error name of a status and the line's level."""

import pytest

from ctxfy.core.telemetry import http_log_level, http_status_name


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "bad_request"),
        (401, "unauthorized"),
        (404, "not_found"),
        (429, "too_many_requests"),
        (500, "internal_server_error"),
        (599, "http_599"),
    ],
)
def test_a_status_is_named_by_its_phrase_in_snake_case(status: int, name: str) -> None:
    assert http_status_name(status) == name


def test_hyphens_in_a_phrase_become_underscores() -> None:
    assert http_status_name(207) == "multi_status"


@pytest.mark.parametrize(
    ("status", "level"),
    [(200, "INFO"), (302, "INFO"), (400, "WARNING"), (499, "WARNING"), (500, "ERROR")],
)
def test_the_level_follows_the_status_class(status: int, level: str) -> None:
    assert http_log_level(status) == level


@pytest.mark.parametrize("status", [200, 404, 499])
def test_quiet_paths_are_debug_below_500(status: int) -> None:
    assert http_log_level(status, quiet=True) == "DEBUG"


@pytest.mark.parametrize(("status", "level"), [(503, "WARNING"), (500, "ERROR"), (502, "ERROR")])
def test_a_failing_probe_is_not_hidden_at_debug(status: int, level: str) -> None:
    assert http_log_level(status, quiet=True) == level
