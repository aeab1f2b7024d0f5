"""The request-log modules after their split: same public names, same logger, no cycles."""

import io
import json
import subprocess
import sys
from typing import Any

from loguru import logger

from ctxfy.adapters import request_log
from ctxfy.adapters.logging import configure_logging
from ctxfy.adapters.request_context import RequestContext
from ctxfy.adapters.request_lines import log_http_request, log_mcp_request

_MODULES = (
    "ctxfy.adapters.request_lines",
    "ctxfy.adapters.rpc_capture",
    "ctxfy.adapters.http_request_log",
    "ctxfy.adapters.mcp_request_log",
    "ctxfy.adapters.request_log",
)


class Sink(io.StringIO):
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


def test_request_log_still_exports_every_public_name() -> None:
    assert request_log.__all__ == [
        "REQUEST_ID_HEADER",
        "RequestContextMiddleware",
        "RequestLogMiddleware",
        "in_tool_cache_refresh",
        "new_request_id",
        "note_key_id",
        "note_llm_model",
    ]
    missing = [
        name
        for name in [*request_log.__all__, "log_http_request"]
        if not hasattr(request_log, name)
    ]
    assert missing == []


def test_request_lines_keep_the_request_log_logger_name() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    try:
        log_http_request(
            method="GET", path="/x", status=404, error_type=None, duration_s=0.001, level="INFO"
        )
        log_mcp_request(
            RequestContext(request_id="req-1"),
            method="tools/list",
            status="ok",
            error_type=None,
            duration_s=0.001,
        )
    finally:
        undo()
    assert [(r["event"], r["logger"]) for r in stream.records()] == [
        ("http.request", "ctxfy.adapters.request_log"),
        ("mcp.request", "ctxfy.adapters.request_log"),
    ]


def test_each_request_log_module_imports_first_without_a_cycle() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {_MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('ctxfy')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_disabling_the_writing_module_silences_request_lines_as_documented() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    logger.disable("ctxfy.adapters.request_lines")
    try:
        log_http_request(
            method="GET", path="/x", status=404, error_type=None, duration_s=0.001, level="INFO"
        )
    finally:
        logger.enable("ctxfy.adapters.request_lines")
        undo()
    assert stream.records() == []
