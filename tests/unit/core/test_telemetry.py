"""The telemetry rules: request ids, error names, argument summaries, the metrics port."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxfy.core.telemetry import (
    MAX_REQUEST_ID_LENGTH,
    REQUEST_LOG_FIELDS,
    MetricsRecorder,
    NullMetricsRecorder,
    argument_log_value,
    json_rpc_error_type,
    parse_argument_logging,
    tool_result_error_type,
    valid_request_id,
)
from ctxfy.testing import RecordingMetrics

ID_ALPHABET = string.ascii_letters + string.digits + "._:-"


@given(st.text(alphabet=ID_ALPHABET, min_size=1, max_size=MAX_REQUEST_ID_LENGTH))
def test_ids_of_allowed_characters_and_length_are_valid(text: str) -> None:
    assert valid_request_id(text)


@given(st.text(alphabet=ID_ALPHABET, min_size=MAX_REQUEST_ID_LENGTH + 1, max_size=300))
def test_ids_longer_than_the_bound_are_invalid(text: str) -> None:
    assert not valid_request_id(text)


@given(
    st.text(alphabet=ID_ALPHABET, max_size=40),
    st.characters(exclude_characters=ID_ALPHABET),
    st.text(alphabet=ID_ALPHABET, max_size=40),
)
def test_ids_with_any_other_character_are_invalid(head: str, bad: str, tail: str) -> None:
    assert not valid_request_id(head + bad + tail)


@pytest.mark.parametrize("text", ["", "req 1", "req-1\n", "a/b", "é", "<script>", "x\r\ny: z"])
def test_empty_and_unsafe_ids_are_invalid(text: str) -> None:
    assert not valid_request_id(text)


@pytest.mark.parametrize(
    "text", ["req-1", "0af7651916cd43dd8448eb211c80319c", "a.b_c:d-e", "x" * MAX_REQUEST_ID_LENGTH]
)
def test_common_id_shapes_are_valid(text: str) -> None:
    assert valid_request_id(text)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (-32700, "parse_error"),
        (-32600, "invalid_request"),
        (-32601, "method_not_found"),
        (-32602, "invalid_params"),
        (-32603, "internal_error"),
        (-32002, "resource_not_found"),
        (0, "jsonrpc_0"),
        (-31999, "jsonrpc_-31999"),
    ],
)
def test_json_rpc_codes_have_short_names(code: int, name: str) -> None:
    assert json_rpc_error_type(code) == name


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("", "off"),
        ("off", "off"),
        ("false", "off"),
        ("0", "off"),
        ("on", "sizes"),
        ("TRUE", "sizes"),
        ("1", "sizes"),
        (" sizes ", "sizes"),
        ("full", "full"),
    ],
)
def test_argument_logging_setting_words(text: str, mode: str) -> None:
    assert parse_argument_logging(text) == mode


def test_unknown_argument_logging_word_is_rejected_with_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="off, on, sizes or full"):
        parse_argument_logging("verbose")


def test_arguments_are_not_logged_when_off() -> None:
    assert argument_log_value({"task": "secret plan"}, "off") is None


def test_sizes_mode_logs_lengths_never_values() -> None:
    logged = argument_log_value({"task": "secret plan", "n": 12, "tags": ["a"]}, "sizes")
    assert logged == {"task": 11, "n": 2, "tags": 5}
    assert "secret" not in repr(logged)


def test_full_mode_copies_the_values() -> None:
    arguments = {"task": "plan"}
    logged = argument_log_value(arguments, "full")
    assert logged == arguments
    assert logged is not arguments


def test_missing_arguments_log_nothing() -> None:
    assert argument_log_value(None, "full") is None


def test_log_schema_lists_every_required_field_once() -> None:
    required = {
        "timestamp",
        "level",
        "message",
        "request_id",
        "latency_ms",
        "llm_model",
        "event",
        "transport",
        "method",
        "target",
        "status",
        "error_type",
        "key_id",
        "trace_id",
        "span_id",
    }
    assert set(REQUEST_LOG_FIELDS) == required
    assert len(REQUEST_LOG_FIELDS) == len(required)


def test_recorders_implement_the_port() -> None:
    recorders: list[MetricsRecorder] = [NullMetricsRecorder(), RecordingMetrics()]
    for recorder in recorders:
        recorder.record_operation(
            method="prompts/get",
            target_kind="prompt",
            target="p",
            duration_s=0.001,
            error_type=None,
        )
        recorder.count_rate_limited()


def test_recording_metrics_keeps_calls_in_order() -> None:
    metrics = RecordingMetrics()
    metrics.count_auth_failure("invalid")
    metrics.record_llm_call(model="m", duration_s=0.5, error_type=None)
    metrics.count_auth_failure("expired")
    assert [call.name for call in metrics.calls] == [
        "count_auth_failure",
        "record_llm_call",
        "count_auth_failure",
    ]
    assert metrics.named("count_auth_failure") == [{"reason": "invalid"}, {"reason": "expired"}]


@pytest.mark.parametrize(
    ("is_error", "structured", "expected"),
    [
        (False, None, None),
        (False, {"error": "invalid_arguments"}, None),
        (True, {"error": "invalid_arguments", "errors": []}, "invalid_params"),
        (True, {"error": "something else"}, "tool_error"),
        (True, None, "tool_error"),
        (True, ["invalid_arguments"], "tool_error"),
    ],
)
def test_tool_results_reporting_an_error_are_named_the_same_for_mcp_and_rest(
    is_error: bool, structured: object, expected: str | None
) -> None:
    assert tool_result_error_type(is_error, structured) == expected
