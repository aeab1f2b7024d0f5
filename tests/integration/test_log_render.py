"""The JSON renderer: the same text as the plain definition, at lower cost."""

import json
import traceback
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loguru import logger
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from ctxfy.adapters.logging import (
    RequestContext,
    _UtcTimestamp,
    bind_request,
    render_json,
    reset_request,
)
from ctxfy.core.telemetry import REQUEST_LOG_FIELDS


def reference_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reference_json(record: Any) -> str:
    """The renderer as first written: the definition the fast one must match."""
    fields: dict[str, object] = dict.fromkeys(REQUEST_LOG_FIELDS)
    fields["timestamp"] = reference_timestamp(record["time"])
    fields["level"] = record["level"].name
    fields["message"] = record["message"]
    span = trace.get_current_span()
    span_context = span.get_span_context()
    if span.is_recording() and span_context.is_valid:
        fields["trace_id"] = trace.format_trace_id(span_context.trace_id)
        fields["span_id"] = trace.format_span_id(span_context.span_id)
    fields.update(record["extra"])
    fields.setdefault("logger", record["name"])
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        fields["exception"] = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        ).rstrip()
    return json.dumps(fields, default=str, ensure_ascii=False)


def capture(emit: Any) -> Any:
    records: list[Any] = []
    handler_id = logger.add(lambda message: records.append(message.record), format="{message}")
    try:
        emit()
    finally:
        logger.remove(handler_id)
    [record] = records
    return record


moments = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.builds(
        timezone,
        st.integers(min_value=-14 * 3600, max_value=14 * 3600).map(
            lambda seconds: timedelta(seconds=seconds)
        ),
    ),
)


@given(st.lists(moments, min_size=1, max_size=20))
def test_timestamps_match_the_iso_utc_text_whatever_the_order(values: list[datetime]) -> None:
    stamp = _UtcTimestamp()  # one instance: its per-second cache is exercised across values
    for moment in values:
        assert stamp(moment) == reference_timestamp(moment)


def test_timestamps_across_a_second_boundary_change_the_reused_prefix() -> None:
    stamp = _UtcTimestamp()
    base = datetime(2026, 11, 24, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert stamp(base) == "2026-11-24T21:59:59.999Z"
    assert stamp(base + timedelta(microseconds=1)) == "2026-11-24T22:00:00.000Z"
    assert stamp(base) == "2026-11-24T21:59:59.999Z"


def test_a_plain_line_renders_as_the_reference_definition() -> None:
    record = capture(lambda: logger.bind(note="é", when=datetime(2026, 1, 1)).info("hello {x}"))
    assert render_json(record) == reference_json(record)
    line = json.loads(render_json(record))
    assert list(line)[: len(REQUEST_LOG_FIELDS)] == list(REQUEST_LOG_FIELDS)
    assert "é" in render_json(record)  # not \u-escaped
    assert line["when"] == "2026-01-01 00:00:00"  # values JSON cannot hold use str


def test_a_request_line_takes_the_context_and_keeps_the_schema_order() -> None:
    context = RequestContext(
        request_id="req-1", transport="http", key_id="k1", llm_model="m", target="t"
    )
    context.trace_id, context.span_id = "a" * 32, "b" * 16
    token = bind_request(context)
    try:
        record = capture(
            lambda: logger.bind(event="mcp.request", latency_ms=1.5, arguments={"n": 1}).warning(
                "x"
            )
        )
        line = json.loads(render_json(record))
    finally:
        reset_request(token)
    assert list(line) == [*REQUEST_LOG_FIELDS, "arguments", "logger"]
    assert line["request_id"] == "req-1"
    assert (line["transport"], line["key_id"], line["llm_model"], line["target"]) == (
        "http",
        "k1",
        "m",
        "t",
    )
    assert (line["trace_id"], line["span_id"]) == ("a" * 32, "b" * 16)
    assert (line["level"], line["latency_ms"], line["arguments"]) == ("WARNING", 1.5, {"n": 1})


def test_a_recording_span_gives_its_ids_and_a_non_recording_one_does_not() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("live") as span:
        record = capture(lambda: logger.info("inside"))
        line = json.loads(render_json(record))
    ids = span.get_span_context()
    assert line["trace_id"] == trace.format_trace_id(ids.trace_id)
    assert line["span_id"] == trace.format_span_id(ids.span_id)
    remote = trace.NonRecordingSpan(ids)
    with trace.use_span(remote):
        record = capture(lambda: logger.info("inherited"))
    assert json.loads(render_json(record))["trace_id"] is None


def test_an_exception_is_rendered_as_the_reference() -> None:
    def emit() -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")

    record = capture(emit)
    assert render_json(record) == reference_json(record)
    assert "ValueError: boom" in json.loads(render_json(record))["exception"]


@pytest.mark.parametrize("value", [float("nan"), 10**30, [1, "x", None], {"k": (1, 2)}, True])
def test_unusual_extra_values_render_as_json_dumps_would(value: object) -> None:
    record = capture(lambda: logger.bind(value=value).info("v"))
    assert render_json(record) == reference_json(record)
