"""``BackgroundLineWriter``: a loguru sink that never blocks the event loop on I/O.

The sink renders the line in the caller (cheap) and hands it to an unbounded in-process
queue that one writer thread drains to the stream every 50 ms. Nothing is dropped;
removing the sink (the undo function of ``configure_logging``, or loguru's own ``atexit``
hook) drains the queue before returning. This is preferred to loguru's ``enqueue=True``,
which pickles every record through a multiprocessing pipe that blocks when full. The
writer wakes on a timer, not on each line: waking a thread per line cost a GIL hand-off
per request, measured at about 300 µs of CPU per request on two cores
(``docs/performance.md``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from loguru import Message, Record

__all__ = ["BackgroundLineWriter"]


class BackgroundLineWriter:
    """A loguru sink that renders in the caller and writes from a background thread.

    The thread writes whatever is queued every ``interval`` seconds (and once more when
    stopped); queuing a line never wakes it.

    Args:
        stream: Where lines go (``sys.stdout`` in production).
        render: Turns a record into one line of text (without the newline).
        interval: Seconds between writes; a line reaches the stream at most this late.

    Example:
        ```python
        writer = BackgroundLineWriter(sys.stdout, render_json)
        handler_id = logger.add(writer, format="{message}")
        logger.remove(handler_id)  # drains the queue and stops the thread
        ```
    """

    def __init__(
        self, stream: TextIO, render: Callable[[Record], str], *, interval: float = 0.05
    ) -> None:
        self._stream = stream
        self._render = render
        self._interval = interval
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = threading.Thread(
            target=self._drain, name="ctxfy-log-writer", daemon=True
        )
        self._thread.start()

    def write(self, message: Message) -> None:
        """Render ``message.record`` and queue the line; never blocks on I/O."""
        self._queue.put(self._render(message.record))

    def stop(self) -> None:
        """Write every queued line, flush, and end the thread (loguru calls this on remove)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join()

    def _drain(self) -> None:
        while True:
            stopping = self._stopping.wait(self._interval)
            lines: list[str] = []
            with contextlib.suppress(queue.Empty):
                while True:
                    lines.append(self._queue.get_nowait())
            if lines:
                # The newlines are added here, once per batch, not in the caller's thread.
                lines.append("")
                try:
                    self._stream.write("\n".join(lines))
                    self._stream.flush()
                except (OSError, ValueError):  # pragma: no cover - stdout closed: nowhere to write
                    pass
            if stopping:
                return
