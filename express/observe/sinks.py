"""Where JSON-lines records (execution logs, usage records) go, without blocking the event loop.

A sink's ``emit(lines)`` only enqueues; a writer thread (file, stdout) or the Kafka worker does the
I/O. Queues are bounded: when one is full the records are dropped and counted
(``express_log_records_dropped``), as AWS's logging "doesn't block or slow down executions".
"""
from __future__ import annotations

import collections
import queue
import sys
import threading
from collections.abc import Callable, Iterable
from typing import IO, Protocol


class Sink(Protocol):
    def emit(self, lines: Iterable[bytes]) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps the last ``capacity`` records (tests, the console)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.records: collections.deque[bytes] = collections.deque(maxlen=capacity)

    def emit(self, lines: Iterable[bytes]) -> None:
        self.records.extend(lines)

    def close(self) -> None:
        pass


class CallbackSink:
    """Hands each batch to a callable (e.g. the Kafka worker's producer), which must not block."""

    def __init__(self, callback: Callable[[list[bytes]], None]) -> None:
        self.callback = callback

    def emit(self, lines: Iterable[bytes]) -> None:
        self.callback(list(lines))

    def close(self) -> None:
        pass


class StreamSink:
    """Appends lines to a file (or stdout) from a writer thread fed by a bounded queue."""

    def __init__(self, target: str = "-", max_queued: int = 100_000, name: str = "log") -> None:
        self.target = target
        self.name = name
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=max_queued)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_loop, name=f"express-{self.name}-sink",
                                                daemon=True)
                self._thread.start()

    def emit(self, lines: Iterable[bytes]) -> None:
        if self._thread is None:
            self._start()
        batch = list(lines)
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self._drop(len(batch))

    def _drop(self, n: int) -> None:
        self.dropped += n
        try:
            from express.observe.metrics import LOG_RECORDS_DROPPED

            LOG_RECORDS_DROPPED.labels(self.name).inc(n)
        except ImportError:
            pass

    def _write_loop(self) -> None:
        out: IO[bytes] | None = None
        try:
            out = sys.stdout.buffer if self.target == "-" else open(self.target, "ab")  # noqa: SIM115
        except OSError as e:
            # Records that cannot be written are dropped and counted, as when the queue is full;
            # the loop keeps draining the queue so that emit() and close() never wait.
            print(f"express: {self.name} sink: cannot open {self.target}: {e}", file=sys.stderr)
        try:
            while True:
                batch = self._queue.get()
                if batch is None:
                    break
                if out is None:
                    self._drop(len(batch))
                    continue
                try:
                    out.write(b"".join(line + b"\n" for line in batch))
                    if self._queue.empty():
                        out.flush()
                except OSError as e:
                    print(f"express: {self.name} sink: cannot write {self.target}: {e}", file=sys.stderr)
                    self._drop(len(batch))
        finally:
            if out is not None:
                try:
                    out.flush()
                except OSError:
                    pass
                if out is not sys.stdout.buffer:
                    out.close()

    def close(self) -> None:
        """Write what is queued, then stop the writer thread (blocking: call off the event loop
        or at shutdown)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            # A writer that died (its file could not be opened or written) takes nothing from the
            # queue any more: never wait on a full queue for it.
            while thread.is_alive():
                try:
                    self._queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue
            thread.join(timeout=10)


def open_sink(destination: str, name: str = "log") -> Sink:
    """``-`` or ``stdout``: standard output; ``memory``: in memory; anything else: a file path."""
    if destination in ("-", "stdout"):
        return StreamSink("-", name=name)
    if destination == "memory":
        return MemorySink()
    return StreamSink(destination, name=name)
