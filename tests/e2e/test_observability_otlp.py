"""The real ``python -m ctxfy`` exports its spans over OTLP/HTTP to a collector."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import pytest
from fastmcp import Client

pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    reason="the OTLP exporter is not installed (pip install 'ctxfy[otlp]')",
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)


@attrs.define
class Collector:
    """What a fake OTLP/HTTP collector received: one entry per POST."""

    posts: list[tuple[str, str]] = attrs.Factory(list)
    span_names: list[str] = attrs.Factory(list)
    got_prompt_span: threading.Event = attrs.Factory(threading.Event)

    def receive(self, path: str, content_type: str, body: bytes) -> None:
        self.posts.append((path, content_type))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.span_names.extend(span.name for span in scope_spans.spans)
        if any(name.startswith("prompts/get") for name in self.span_names):
            self.got_prompt_span.set()


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    """A collector on 127.0.0.1 that the server started next is told to export to."""
    received = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.receive(self.path, self.headers.get("Content-Type", ""), body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export batches without waiting 5 s
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def test_a_prompt_request_reaches_the_otlp_collector(
    collector: Collector, server: tuple[str, str]
) -> None:
    base, key = server
    async with Client(f"{base}/mcp", auth=key) as client:
        await client.get_prompt("prp", {"feature": "x"})
    # Waiting, not timing: the batch processor exports in the background.
    assert collector.got_prompt_span.wait(timeout=30), collector.span_names
    assert ("/v1/traces", "application/x-protobuf") in collector.posts
