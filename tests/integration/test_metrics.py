"""Prometheus exposition: names, labels, buckets, and ``promtool check metrics``."""

import asyncio
import os
import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from ctxfy.adapters.metrics import (
    LLM_DURATION_BUCKETS,
    REQUEST_DURATION_BUCKETS,
    PrometheusMetrics,
    build_prometheus_metrics,
)
from ctxfy.core.telemetry import MetricsRecorder


def promtool() -> str:
    """The promtool binary; its absence fails in CI and skips elsewhere."""
    binary = shutil.which("promtool")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool is required in CI (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return binary


def record_one_of_each(metrics: PrometheusMetrics) -> None:
    recorder: MetricsRecorder = metrics.recorder
    recorder.record_operation(
        method="prompts/get", target_kind="prompt", target="prp", duration_s=0.002, error_type=None
    )
    recorder.record_operation(
        method="tools/call",
        target_kind="tool",
        target="draft_context_stack",
        duration_s=1.5,
        error_type="tool_error",
    )
    recorder.record_operation(
        method="resources/read",
        target_kind="resource",
        target="ctxfy://x",
        duration_s=0.01,
        error_type="resource_not_found",
    )
    recorder.record_operation(
        method="tools/list", target_kind=None, target=None, duration_s=0.0007, error_type=None
    )
    recorder.record_llm_call(model="fake-model-1", duration_s=2.0, error_type=None)
    recorder.record_llm_call(model="fake-model-1", duration_s=30.0, error_type="LLMTimeoutError")
    recorder.record_http(method="GET", route="/health", status=200, duration_s=0.0004)
    recorder.record_http(method="POST", route="/mcp", status=401, duration_s=0.001)
    recorder.record_http(method="GET", route=None, status=404, duration_s=0.001)
    recorder.record_http(method="GET", route="/ready", status=503, duration_s=0.003)
    recorder.count_auth_failure("invalid")
    recorder.count_auth_failure("expired")
    recorder.count_rate_limited()
    recorder.count_validation_rejection("max_length")
    recorder.count_injection_flag("ignore_previous_instructions")


async def scrape(metrics: PrometheusMetrics) -> httpx.Response:
    app = Starlette(routes=[metrics.route()])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get("/metrics")


def promtool_check(binary: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_metrics_endpoint_passes_promtool_with_no_warnings() -> None:
    binary = promtool()
    metrics = build_prometheus_metrics()
    record_one_of_each(metrics)
    response = await scrape(metrics)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    result = await asyncio.to_thread(promtool_check, binary, response.text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_promtool_would_flag_a_bad_exposition() -> None:
    binary = promtool()
    bad = "# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n"
    result = promtool_check(binary, bad)
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr


async def test_every_metric_has_its_semantic_convention_name_and_labels() -> None:
    metrics = build_prometheus_metrics()
    record_one_of_each(metrics)
    families = {f.name: f for f in text_string_to_metric_families((await scrape(metrics)).text)}
    expected_labels = {
        "mcp_server_operation_duration_seconds": {
            "mcp_method_name",
            "gen_ai_prompt_name",
            "gen_ai_tool_name",
            "mcp_resource_uri",
            "error_type",
        },
        "gen_ai_client_operation_duration_seconds": {
            "gen_ai_operation_name",
            "gen_ai_request_model",
            "error_type",
        },
        "http_server_request_duration_seconds": {
            "http_request_method",
            "http_route",
            "http_response_status_code",
            "error_type",
        },
        "ctxfy_auth_failures": {"reason"},
        "ctxfy_rate_limit_blocks": set(),
        "ctxfy_validation_rejections": {"rule"},
        "ctxfy_injection_flags": {"pattern"},
    }
    for name, labels in expected_labels.items():
        family = families[name]
        seen = {label for sample in family.samples for label in sample.labels} - {"le"}
        assert seen == labels, name
    assert families["ctxfy_auth_failures"].type == "counter"
    assert families["mcp_server_operation_duration_seconds"].type == "histogram"
    for standard in ("process_cpu_seconds", "process_resident_memory_bytes", "python_info"):
        assert standard in families


async def test_duration_buckets_resolve_milliseconds() -> None:
    metrics = build_prometheus_metrics(process_metrics=False)
    record_one_of_each(metrics)
    families = {f.name: f for f in text_string_to_metric_families((await scrape(metrics)).text)}

    def bounds(name: str) -> list[float]:
        return sorted(
            {float(s.labels["le"]) for s in families[name].samples if s.name.endswith("_bucket")}
        )

    assert bounds("mcp_server_operation_duration_seconds")[:-1] == list(REQUEST_DURATION_BUCKETS)
    assert bounds("http_server_request_duration_seconds")[:-1] == list(REQUEST_DURATION_BUCKETS)
    assert bounds("gen_ai_client_operation_duration_seconds")[:-1] == list(LLM_DURATION_BUCKETS)
    assert REQUEST_DURATION_BUCKETS[0] <= 0.001
    # The 0.7 ms tools/list sample lands in the 1 ms bucket, not in a coarse default one.
    [tools_list] = [
        s
        for s in families["mcp_server_operation_duration_seconds"].samples
        if s.name.endswith("_bucket")
        and s.labels["mcp_method_name"] == "tools/list"
        and s.labels["le"] == "0.001"
    ]
    assert tools_list.value == 1


def test_each_build_has_its_own_registry() -> None:
    first = build_prometheus_metrics(process_metrics=True)
    second = build_prometheus_metrics(process_metrics=True)
    first.recorder.count_rate_limited()
    assert b"ctxfy_rate_limit_blocks_total 1.0" in first.render()
    assert b"ctxfy_rate_limit_blocks_total" not in second.render()
    first.shutdown()
    second.shutdown()
