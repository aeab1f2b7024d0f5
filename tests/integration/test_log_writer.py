"""The background log writer: timed writes, nothing lost on stop, no wake-up per line."""

import io
import threading
import time
from typing import Any

from loguru import logger

from ctxfy.adapters.logging import BackgroundLineWriter


def _render(record: Any) -> str:
    return str(record["message"])


def test_lines_reach_the_stream_within_the_interval_without_a_stop() -> None:
    stream = io.StringIO()
    writer = BackgroundLineWriter(stream, _render, interval=0.05)
    handler = logger.add(writer, format="{message}")
    try:
        logger.info("first")
        deadline = time.monotonic() + 2
        while "first" not in stream.getvalue():
            assert time.monotonic() < deadline, "the line was not written"
            time.sleep(0.01)
    finally:
        logger.remove(handler)
    assert stream.getvalue() == "first\n"


def test_stopping_writes_every_queued_line_in_order() -> None:
    stream = io.StringIO()
    writer = BackgroundLineWriter(stream, _render, interval=60)  # only the stop writes
    handler = logger.add(writer, format="{message}")
    for n in range(2000):
        logger.info(f"line {n}")
    assert stream.getvalue() == ""
    logger.remove(handler)  # loguru calls writer.stop()
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(2000)]
    writer.stop()  # a second stop does nothing
    assert not any(t.name == "ctxfy-log-writer" and t.is_alive() for t in threading.enumerate())


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_burst_of_lines_is_written_in_a_few_writes_not_one_per_line() -> None:
    stream = CountingStream()
    writer = BackgroundLineWriter(stream, _render, interval=0.2)
    handler = logger.add(writer, format="{message}")
    try:
        for n in range(500):
            logger.info(f"line {n}")
    finally:
        logger.remove(handler)
    assert len(stream.getvalue().splitlines()) == 500
    assert stream.writes <= 3
