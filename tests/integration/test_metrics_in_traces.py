"""Measurements made inside a sampled trace are exported like any other."""

from opentelemetry.sdk.trace import TracerProvider

from ctxfy.adapters.metrics import build_prometheus_metrics


def test_a_request_inside_a_sampled_span_is_counted_once_without_exemplars() -> None:
    metrics = build_prometheus_metrics(process_metrics=False)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        assert span.get_span_context().trace_flags.sampled
        metrics.recorder.record_http(method="POST", route="/mcp", status=200, duration_s=0.002)
    metrics.recorder.record_http(method="POST", route="/mcp", status=200, duration_s=0.002)
    text = metrics.render().decode()
    [count] = [
        line
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_count{")
    ]
    assert count.endswith(" 2.0")
    assert 'http_route="/mcp"' in count
    assert " # {" not in text  # the classic text format has no exemplars
    metrics.shutdown()
