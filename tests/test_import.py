"""``import express`` is the engine alone: no metrics, Kafka or HTTP client library comes with it.

Each check runs in a fresh interpreter, since this test process has long imported all of them.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

SERVING_LIBRARIES = ("prometheus_client", "aiokafka", "aiohttp")

CHECK = textwrap.dedent("""
    import sys
    {body}
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({libraries!r}))
    print(",".join(loaded))
""")


def loaded_after(body: str) -> list[str]:
    code = CHECK.format(body=textwrap.dedent(body), libraries=SERVING_LIBRARIES)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [name for name in proc.stdout.strip().split(",") if name]


def test_import_express_loads_no_serving_library() -> None:
    assert loaded_after("import express") == []


def test_running_machines_with_a_recorder_of_ones_own_loads_no_serving_library() -> None:
    # retries, catches, tasks, logging, usage records and metrics all on, through a recorder that is
    # not express.observe.metrics: the engine needs nothing but the MetricsRecorder protocol
    body = """
        import asyncio
        from express import Engine, VirtualClock
        from express.observe.sinks import MemorySink

        class Series:
            def __init__(self):
                self.started = self.succeeded = self.minimum_billed = self.transitions = 0
                self.duration_sum = 0.0
                self.bounds = (0.1, 1.0, 10.0)
                self.buckets = [0] * 4
                self.finishes = []

            def finished(self, *args):
                self.finishes.append(args)

        class Recorder:
            def __init__(self):
                self.all, self.events, self.tasks = {}, [], []

            def series(self, machine, mode):
                return self.all.setdefault((machine, mode), Series())

            def event(self, metric, *labels, amount=1.0):
                self.events.append((metric, *labels))

            def task(self, machine, seconds, resource="", error=None):
                self.tasks.append((machine, error))

        calls = []

        def flaky(event):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("once")
            return event

        rec = Recorder()
        usage = MemorySink()
        engine = Engine({"flaky": flaky}, clock=VirtualClock(), metrics=rec, usage_sink=usage, log_sink=MemorySink())
        m = engine.compile({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "flaky", "Next": "F",
                  "Retry": [{"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 1}]},
            "F": {"Type": "Fail", "Error": "E"}}}, "own", logging={"level": "ALL"})
        quick = engine.compile({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, "quick")
        r = asyncio.run(m.execute({}))
        q = asyncio.run(quick.execute({}))
        assert (r.status, r.billed_duration_ms, q.status, q.billed_duration_ms) == ("FAILED", 1000, "SUCCEEDED", 100)
        assert rec.all["own", "api"].finishes == [("FAILED", "E", 1.0, 2, 1000, 64)], rec.all["own", "api"].finishes
        s = rec.all["quick", "api"]
        assert (s.started, s.succeeded, s.minimum_billed, s.transitions, s.buckets) == (1, 1, 1, 1, [1, 0, 0, 0])
        assert ("retry", "own", "RuntimeError") in rec.events and rec.tasks == [("own", "RuntimeError"), ("own", None)], rec.tasks
        assert len(usage.records) == 2
    """
    assert loaded_after(body) == []


def test_import_express_imports_no_client_library_by_importtime() -> None:
    # -X importtime lists every module the interpreter imports, whoever imports it
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import express"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "express.engine.machine" in imported  # the listing is the one expected
    heavy = [m for m in imported if m.split(".")[0] in ("prometheus_client", "aiokafka", "aiohttp",
                                                         "aiobotocore", "botocore")]
    assert heavy == []
    # the engine core imports nothing from observability or serving
    assert [m for m in imported if m.startswith("express.") and not m.startswith(("express.asl", "express.engine"))] == []


def test_an_engine_with_observers_of_its_own_imports_no_observability_module() -> None:
    # metrics, a usage hook and a log sink that are not express.observe's: the engine needs only the
    # protocols of express.engine.observers
    code = textwrap.dedent("""
        import asyncio, sys
        from express import Engine, VirtualClock

        class Series:
            started = succeeded = minimum_billed = transitions = 0
            duration_sum = 0.0
            bounds = (1.0,)

            def __init__(self):
                self.buckets = [0, 0]

            def finished(self, *args):
                pass

        class Recorder:
            def series(self, machine, mode):
                return Series()

            def event(self, metric, *labels, amount=1.0):
                pass

            def task(self, machine, seconds, resource="", error=None):
                pass

        class Usage:
            calls = []

            def record(self, machine, mode, result, memory_used_mb):
                self.calls.append((machine, mode, result.status))

        class Lines:
            lines = []

            def emit(self, lines):
                self.lines.extend(lines)

        usage, logs = Usage(), Lines()
        engine = Engine({"f": lambda e: e}, clock=VirtualClock(), metrics=Recorder(), usage_sink=usage, log_sink=logs)
        m = engine.compile({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "End": True}}}, "own",
                           logging={"level": "ALL"})
        assert asyncio.run(m.execute({}, mode="sync")).status == "SUCCEEDED"
        assert usage.calls == [("own", "sync", "SUCCEEDED")] and logs.lines
        print(",".join(sorted(name for name in sys.modules if name.startswith("express.observe"))))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_a_kafka_only_worker_loads_neither_the_http_package_nor_aiohttp() -> None:
    # `express serve --no-http` (and each Kafka worker the supervisor starts): the HTTP server, the
    # console and the HTTP client library are imported only where they serve
    code = textwrap.dedent("""
        import sys
        import express.serve.cli, express.serve.supervisor, express.serve.service, express.kafka.worker
        print(",".join(sorted(m for m in sys.modules if m.startswith(("express.http", "express.console", "aiohttp")))))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
