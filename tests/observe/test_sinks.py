"""Sinks for JSON-lines records: a writer thread per file, bounded queues that drop and count."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from express.observe.metrics import exposition
from express.observe.sinks import CallbackSink, MemorySink, StreamSink, open_sink


def dropped_total(sink_name: str) -> float:
    for family in text_string_to_metric_families(exposition().decode()):
        for s in family.samples:
            if s.name == "express_log_records_dropped_total" and s.labels == {"sink": sink_name}:
                return s.value
    return 0.0


def test_stream_sink_writes_lines_from_its_thread_and_close_flushes(tmp_path: Any) -> None:
    path = tmp_path / "out.log"
    sink = StreamSink(str(path), name="test-file")
    main = threading.get_ident()
    writers: list[int] = []
    real_loop = sink._write_loop

    def spy() -> None:
        writers.append(threading.get_ident())
        real_loop()

    sink._write_loop = spy  # type: ignore[method-assign]
    for i in range(1000):
        sink.emit([b'{"n":%d}' % i, b'{"m":%d}' % i])
    sink.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2000
    assert lines[0] == b'{"n":0}' and lines[1] == b'{"m":0}' and lines[-1] == b'{"m":999}'
    assert writers and writers[0] != main
    assert sink.dropped == 0
    assert not [t for t in threading.enumerate() if t.name == "express-test-file-sink"]


def test_stream_sink_appends_and_restarts_after_close(tmp_path: Any) -> None:
    path = tmp_path / "out.log"
    path.write_bytes(b"existing\n")
    sink = StreamSink(str(path))
    sink.emit([b"one"])
    sink.close()
    sink.emit([b"two"])
    sink.close()
    sink.close()  # idempotent
    assert path.read_bytes() == b"existing\none\ntwo\n"


def test_close_without_emitting_creates_nothing(tmp_path: Any) -> None:
    sink = StreamSink(str(tmp_path / "never.log"))
    sink.close()
    assert not (tmp_path / "never.log").exists()


def test_full_queue_drops_and_counts(tmp_path: Any) -> None:
    # The writer blocks opening a FIFO nobody reads yet, so nothing leaves the queue.
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    before = dropped_total("fifo-sink")
    sink = StreamSink(fifo, max_queued=2, name="fifo-sink")
    sink.emit([b"a1", b"a2"])
    sink.emit([b"b1"])
    sink.emit([b"c1", b"c2", b"c3"])  # queue full: dropped, without blocking
    sink.emit([b"d1"])
    assert sink.dropped == 4
    assert dropped_total("fifo-sink") - before == 4
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        sink.close()
        data = b""
        while chunk := os.read(reader, 65536):
            data += chunk
    finally:
        os.close(reader)
    assert data == b"a1\na2\nb1\n"


def test_stdout_sink_writes_to_standard_output() -> None:
    code = ("from express.observe.sinks import open_sink\n"
            "s = open_sink('stdout'); s.emit([b'{\"a\":1}', b'{\"b\":2}']); s.close()\n"
            "s = open_sink('-'); s.emit([b'x']); s.close()\n"
            "print('still open', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b'{"a":1}\n{"b":2}\nx\nstill open\n'


def test_open_sink_destinations(tmp_path: Any) -> None:
    for dest in ("-", "stdout"):
        s = open_sink(dest, name="x")
        assert isinstance(s, StreamSink) and s.target == "-" and s.name == "x"
    assert isinstance(open_sink("memory"), MemorySink)
    path = str(tmp_path / "log.jsonl")
    s = open_sink(path, name="usage")
    assert isinstance(s, StreamSink) and s.target == path and s.name == "usage"
    s.emit([b"r"])
    s.close()
    assert (tmp_path / "log.jsonl").read_bytes() == b"r\n"


def test_memory_sink_keeps_the_last_records() -> None:
    sink = MemorySink(capacity=3)
    sink.emit([b"1", b"2"])
    sink.emit(iter([b"3", b"4"]))
    assert list(sink.records) == [b"2", b"3", b"4"]
    sink.close()


def test_callback_sink_hands_over_a_list() -> None:
    got: list[Any] = []
    sink = CallbackSink(got.append)
    sink.emit(b for b in (b"x", b"y"))
    assert got == [[b"x", b"y"]]


def test_unwritable_destination_drops_and_counts_and_never_blocks(tmp_path: Any, capfd: Any) -> None:
    before = dropped_total("broken-sink")
    sink = StreamSink(str(tmp_path / "missing-dir" / "x.log"), max_queued=1, name="broken-sink")
    for i in range(50):
        sink.emit([b"a%d" % i, b"b%d" % i])
    closer = threading.Thread(target=sink.close, daemon=True)
    closer.start()
    closer.join(5)
    assert not closer.is_alive(), "close() hangs"
    assert sink.dropped == 100  # on the full queue, or by the writer that cannot open its file
    assert dropped_total("broken-sink") - before == 100
    assert "cannot open" in capfd.readouterr().err
