"""The JSON log sink: schema, request context, stdlib routing, no loss, no blocking."""

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import threading
from typing import Any

import pytest
from loguru import logger

from ctxfy.adapters.audit import AuditEvent, AuditLog
from ctxfy.adapters.logging import (
    RequestContext,
    bind_request,
    configure_logging,
    current_request_id,
    note_key_id,
    note_llm_model,
    reset_request,
)
from ctxfy.core.telemetry import REQUEST_LOG_FIELDS

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class Sink(io.StringIO):
    """A stream that collects lines; ``records()`` parses them after the sink is removed."""

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_every_schema_field() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    logger.info("hello {}", "world")
    undo()
    [record] = stream.records()
    assert list(record)[: len(REQUEST_LOG_FIELDS)] == list(REQUEST_LOG_FIELDS)
    assert TIMESTAMP.fullmatch(record["timestamp"])
    assert record["level"] == "INFO"
    assert record["message"] == "hello world"
    assert record["request_id"] is None
    assert record["llm_model"] is None


def test_lines_below_the_level_are_dropped() -> None:
    stream = Sink()
    undo = configure_logging("WARNING", "json", stream)
    logger.info("quiet")
    logger.warning("loud")
    undo()
    assert [r["message"] for r in stream.records()] == ["loud"]


def test_the_request_context_reaches_every_line() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    token = bind_request(RequestContext(request_id="req-1", transport="http"))
    try:
        note_key_id("key-42")
        note_llm_model("model-a")
        logger.info("inside")
        assert current_request_id() == "req-1"
    finally:
        reset_request(token)
    logger.info("outside")
    undo()
    inside, outside = stream.records()
    assert (inside["request_id"], inside["key_id"], inside["llm_model"]) == (
        "req-1",
        "key-42",
        "model-a",
    )
    assert inside["transport"] == "http"
    assert outside["request_id"] is None
    assert current_request_id() is None


def test_a_finished_request_is_not_reported_by_tasks_that_inherited_it() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    record = RequestContext(request_id="req-old")
    token = bind_request(record)
    record.finished = True
    note_llm_model("late")
    logger.info("stale")
    reset_request(token)
    undo()
    [line] = stream.records()
    assert line["request_id"] is None
    assert record.llm_model is None


def test_audit_events_carry_the_request_id_and_their_own_fields() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    token = bind_request(RequestContext(request_id="req-audit"))
    try:
        AuditLog().record(AuditEvent.AUTH_FAILED, outcome="denied", reason="expired", key_id="k1")
    finally:
        reset_request(token)
    undo()
    [line] = stream.records()
    assert line["request_id"] == "req-audit"
    assert (line["event"], line["outcome"], line["key_id"], line["reason"]) == (
        "auth.failed",
        "denied",
        "k1",
        "expired",
    )


def test_standard_library_logs_are_routed_with_their_logger_name() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    token = bind_request(RequestContext(request_id="req-lib"))
    try:
        logging.getLogger("fastmcp.server").warning("from %s", "fastmcp")
        logging.getLogger("uvicorn.error").info("from uvicorn")
    finally:
        reset_request(token)
    undo()
    lines = stream.records()
    assert [(r["logger"], r["message"], r["request_id"]) for r in lines] == [
        ("fastmcp.server", "from fastmcp", "req-lib"),
        ("uvicorn.error", "from uvicorn", "req-lib"),
    ]
    assert [r["level"] for r in lines] == ["WARNING", "INFO"]


def test_per_request_library_chatter_is_held_at_warning() -> None:
    stream = Sink()
    undo = configure_logging("DEBUG", "json", stream)
    logging.getLogger("mcp.server.lowlevel.server").info("Processing request of type X")
    logging.getLogger("httpx").info("HTTP Request: GET ...")
    logging.getLogger("mcp.server.lowlevel.server").warning("kept")
    undo()
    assert [r["message"] for r in stream.records()] == ["kept"]


def test_exceptions_stay_on_one_json_line() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    undo()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "ERROR"
    assert "ValueError: boom" in record["exception"]


def test_undo_restores_the_standard_library_configuration() -> None:
    root = logging.getLogger()
    fastmcp_logger = logging.getLogger("fastmcp")
    before = (list(root.handlers), root.level, list(fastmcp_logger.handlers))
    before_propagate = fastmcp_logger.propagate
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    assert fastmcp_logger.propagate is True
    undo()
    logger.info("after undo")
    assert stream.getvalue() == ""
    assert (list(root.handlers), root.level, list(fastmcp_logger.handlers)) == before
    assert fastmcp_logger.propagate is before_propagate


def test_console_format_is_readable_and_names_the_request() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "console", stream)
    token = bind_request(RequestContext(request_id="req-c"))
    try:
        logger.bind(status="ok").info("served")
    finally:
        reset_request(token)
    undo()
    [line] = stream.getvalue().splitlines()
    assert " INFO " in line
    assert "served" in line
    assert "request_id=req-c" in line
    assert "status=ok" in line


class BlockedStream(io.StringIO):
    """A stdout whose writes wait until released, like a full pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait()
        return super().write(text)


def test_logging_does_not_wait_for_a_blocked_stream() -> None:
    stream = BlockedStream()
    undo = configure_logging("INFO", "json", stream)
    done = threading.Event()

    def log_many() -> None:
        for number in range(200):
            logger.info("line {}", number)
        done.set()

    thread = threading.Thread(target=log_many)
    thread.start()
    # If a log call waited for the stream, this would never be set (the stream is held).
    finished = done.wait(timeout=30)
    stream.release.set()
    thread.join()
    undo()
    assert finished
    assert len(stream.getvalue().splitlines()) == 200


async def test_no_line_is_lost_under_concurrent_load() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)

    async def task(number: int) -> None:
        token = bind_request(RequestContext(request_id=f"task-{number}"))
        try:
            for line in range(50):
                logger.info("task {} line {}", number, line)
                await asyncio.sleep(0)
        finally:
            reset_request(token)

    def thread_work(number: int) -> None:
        for line in range(50):
            logging.getLogger("fastmcp.worker").warning("thread %d line %d", number, line)

    threads = [threading.Thread(target=thread_work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    await asyncio.gather(*(task(n) for n in range(20)))
    for thread in threads:
        thread.join()
    undo()
    records = stream.records()
    assert len(records) == 20 * 50 + 4 * 50
    for number in range(20):
        mine = [r for r in records if r["message"].startswith(f"task {number} ")]
        assert len(mine) == 50
        assert {r["request_id"] for r in mine} == {f"task-{number}"}


def test_importing_ctxfy_adds_no_sink() -> None:
    code = (
        "import logging, ctxfy, ctxfy.adapters.logging, ctxfy.adapters.request_log,"
        " ctxfy.adapters.metrics, ctxfy.adapters.tracing\n"
        "from loguru import logger\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        "logger.info('plain')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    # loguru's own default sink (stderr, its text format) is still the only one.
    assert "| INFO " in result.stderr
    assert not result.stderr.lstrip().startswith("{")


def test_queued_lines_are_written_when_the_process_exits() -> None:
    code = (
        "from loguru import logger\n"
        "from ctxfy.adapters.logging import configure_logging\n"
        "configure_logging('INFO', 'json')\n"
        "for n in range(2000):\n"
        "    logger.info('line {}', n)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2000
    assert json.loads(lines[-1])["message"] == "line 1999"


def test_undo_twice_is_harmless() -> None:
    stream = Sink()
    undo = configure_logging("INFO", "json", stream)
    undo()
    undo()
    logger.info("after")
    assert stream.getvalue() == ""


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "json"), ("INFO", "yaml")])
def test_unknown_level_or_format_is_refused_before_any_change(level: str, fmt: Any) -> None:
    root_handlers = list(logging.getLogger().handlers)
    with pytest.raises(ValueError, match=r"LOUD|yaml"):
        configure_logging(level, fmt, Sink())
    assert logging.getLogger().handlers == root_handlers
