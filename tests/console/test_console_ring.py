"""The console's ring of recent executions: bounded, failures kept apart, cheap to record,
rendered on request only, following the machine's logging configuration."""
from __future__ import annotations

import asyncio
import gc
import re
import weakref
from typing import Any

import pytest

from express.console.ring import ExecutionRing, path_of, ring_from_env
from express.engine.history import LoggingConfig
from express.engine.machine import Engine, ExecutionResult


class Boom(Exception):
    pass


def boom(event: Any) -> Any:
    raise Boom("it broke")


def ok(event: Any) -> Any:
    return {"ok": True}


FUNCTIONS = {"boom": boom, "ok": ok}
FLOW = {"StartAt": "A", "States": {
    "A": {"Type": "Pass", "Next": "B"},
    "B": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Bad"}],
          "Default": "Good"},
    "Bad": {"Type": "Task", "Resource": "boom", "End": True},
    "Good": {"Type": "Task", "Resource": "ok", "End": True},
}}


def run(machine: Any, payload: Any) -> ExecutionResult:
    return asyncio.run(machine.execute(payload))


class FakeMachine:
    def __init__(self, name: str = "m") -> None:
        self.name = name
        self.arn = f"arn:aws:states:us-east-1:000000000000:stateMachine:{name}"
        self.logging = None


def result(status: str, name: str = "x", output: Any = None) -> ExecutionResult:
    return ExecutionResult(status, output, None if status == "SUCCEEDED" else "E", None, name, 1.0, 1.5, 2)


def test_engine_has_no_recorder_by_default() -> None:
    engine = Engine()
    assert engine.recorder is None
    machine = engine.compile({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    assert machine._observed is False  # nothing at all around executions without observers


def test_the_engine_records_every_execution() -> None:
    ring = ExecutionRing(10, 10)
    machine = Engine(functions=FUNCTIONS, recorder=ring).compile(FLOW, name="flow")
    run(machine, {"fail": False})
    run(machine, {"fail": True})
    listed = ring.executions("flow")
    assert [e["status"] for e in listed] == ["FAILED", "SUCCEEDED"]  # newest first
    failed = listed[0]
    assert failed["error"] == "Boom" and "it broke" in failed["cause"]
    assert failed["history"] is False and failed["execution_data"] is False
    assert failed["duration_ms"] >= 0 and failed["state_transitions"] >= 3
    d = ring.detail("flow", failed["id"])
    # logging OFF: no history, no data, but the light trace's path
    assert d is not None and d["trace"] is True and d["path"] == ["A", "B", "Bad"] and "input" not in d
    assert all(set(e["details"]) <= {"name", "error", "cause"} for e in d["events"])


def test_bounded_and_failures_are_kept_longer() -> None:
    ring = ExecutionRing(size=3, failed_size=2)
    m = FakeMachine()
    for i in range(2):
        ring.record(m, result("FAILED", f"f{i}"), None)
    for i in range(100):
        ring.record(m, result("SUCCEEDED", f"s{i}"), None)
    names = [e["name"] for e in ring.executions("m")]
    assert names == ["s99", "s98", "s97", "f1", "f0"]  # 100 successes did not push the failures out
    for i in range(2, 5):
        ring.record(m, result("TIMED_OUT", f"f{i}"), None)
    assert [e["name"] for e in ring.executions("m") if e["status"] != "SUCCEEDED"] == ["f4", "f3"]
    assert ring.counts("m") == (3, 2)
    assert ring.executions("m", limit=2) == ring.executions("m")[:2]
    assert ring.executions("other") == [] and ring.detail("other", 1) is None
    ring.forget("m")
    assert ring.machines() == []


def test_record_keeps_references_and_renders_lazily() -> None:
    """No serialisation on the hot path: an output that cannot even be serialised is recorded
    without a problem, and only rendering on request looks at it."""
    ring = ExecutionRing(5)
    m = FakeMachine()
    m.logging = LoggingConfig("ALL", True)  # the output is shown, so kept

    class Unserialisable:
        pass

    value = Unserialisable()
    r = result("SUCCEEDED", output=value)
    ring.record(m, r, None)
    entry = ring._rings["m"][0][0]
    assert entry[2] is r and entry[2].output is value  # a reference, not a copy
    assert ring.executions("m")[0]["status"] == "SUCCEEDED"


@pytest.mark.parametrize("logging", [None, LoggingConfig("ALL", False), LoggingConfig("ERROR", False)])
def test_an_output_nothing_shows_is_not_kept_alive(logging: LoggingConfig | None) -> None:
    """Without execution data in the logging, the console never shows an output: the ring keeps the
    execution's summary, not the output (freed with the answer, not a hundred executions later)."""
    ring = ExecutionRing(5)
    m = FakeMachine()
    m.logging = logging

    class Output:
        pass

    value = Output()
    gone = weakref.ref(value)
    r = result("SUCCEEDED", name="kept", output=value)
    ring.record(m, r, None)
    del r, value
    gc.collect()
    assert gone() is None
    [summary] = ring.executions("m")
    assert summary["name"] == "kept" and summary["status"] == "SUCCEEDED" and summary["state_transitions"] == 2
    assert summary["duration_ms"] == 500.0
    detail = ring.detail("m", summary["id"])
    assert detail is not None and "output" not in detail


def test_history_and_data_follow_the_logging_configuration() -> None:
    ring = ExecutionRing(10)
    engine = Engine(functions=FUNCTIONS, recorder=ring)
    with_data = engine.compile(FLOW, name="data", logging={"level": "ALL", "includeExecutionData": True})
    without = engine.compile(FLOW, name="nodata", logging={"level": "ALL", "includeExecutionData": False})
    run(with_data, {"fail": True, "secret": "s3cr3t"})
    run(without, {"fail": True, "secret": "s3cr3t"})
    d = ring.detail("data", ring.executions("data")[0]["id"])
    assert d is not None
    assert d["execution_data"] is True and "s3cr3t" in d["input"]["text"]
    assert d["output"] is None  # failed: no output
    assert d["path"] == ["A", "B", "Bad"] and d["failed_state"] == "Bad" and d["open_states"] == []
    types = [e["type"] for e in d["events"]]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionFailed" and "LambdaFunctionFailed" in types
    # AWS's Express execution ARN: ...:express:MACHINE:NAME:UUID
    assert re.fullmatch(rf"arn:aws:states:[^:]+:\d+:express:data:{re.escape(d['name'])}:[0-9a-f-]{{36}}",
                        d["execution_arn"])
    d2 = ring.detail("nodata", ring.executions("nodata")[0]["id"])
    assert d2 is not None and d2["execution_data"] is False
    assert "input" not in d2 and "output" not in d2
    assert "s3cr3t" not in str(d2)  # no execution data anywhere, not even in the events
    assert d2["failed_state"] == "Bad" and len(d2["events"]) == len(d["events"])

    run(with_data, {"fail": False})
    ok_detail = ring.detail("data", ring.executions("data")[0]["id"])
    assert ok_detail is not None and ok_detail["failed_state"] is None
    assert ok_detail["output"]["text"] == '{"ok":true}' and ok_detail["path"] == ["A", "B", "Good"]


def _ev(kind: str, name: str | None = None) -> tuple[str, float, dict[str, Any]]:
    return (kind, 0.0, {"name": name} if name else {})


def test_path_of_a_caught_failure_then_a_fail_state() -> None:
    events = [_ev("ExecutionStarted"), _ev("TaskStateEntered", "Charge"), _ev("LambdaFunctionFailed"),
              _ev("TaskStateExited", "Charge"), _ev("FailStateEntered", "Declined"), _ev("ExecutionFailed")]
    assert path_of(events, "FAILED") == {"path": ["Charge", "Declined"], "failed_state": "Declined", "open_states": []}


def test_path_of_a_failure_inside_a_parallel_branch() -> None:
    events = [_ev("ParallelStateEntered", "P"), _ev("ParallelStateStarted"), _ev("TaskStateEntered", "Slow"),
              _ev("TaskStateEntered", "Fast"), _ev("LambdaFunctionFailed"), _ev("ParallelStateFailed"),
              _ev("ExecutionFailed")]
    out = path_of(events, "FAILED")
    assert out["path"] == ["P", "Slow", "Fast"]
    assert out["failed_state"] == "Fast"  # the innermost state open when the failure happened
    assert set(out["open_states"]) == {"P", "Slow"}


def test_path_of_a_timeout_and_of_a_success() -> None:
    events = [_ev("PassStateEntered", "A"), _ev("PassStateExited", "A"), _ev("WaitStateEntered", "W"),
              _ev("ExecutionTimedOut")]
    assert path_of(events, "TIMED_OUT")["failed_state"] == "W"
    done = [_ev("PassStateEntered", "A"), _ev("PassStateExited", "A"), _ev("ExecutionSucceeded")]
    assert path_of(done, "SUCCEEDED") == {"path": ["A"], "failed_state": None, "open_states": []}


def test_ring_from_env() -> None:
    ring = ring_from_env({})
    assert ring is not None and (ring.size, ring.failed_size) == (100, 100)
    ring = ring_from_env({"EXPRESS_CONSOLE_RECENT": "5", "EXPRESS_CONSOLE_RECENT_FAILED": "50"})
    assert ring is not None and (ring.size, ring.failed_size) == (5, 50)
    assert ring_from_env({"EXPRESS_CONSOLE_RECENT": "0", "EXPRESS_CONSOLE_RECENT_FAILED": "0"}) is None
    with pytest.raises(ValueError, match="EXPRESS_CONSOLE_RECENT"):
        ring_from_env({"EXPRESS_CONSOLE_RECENT": "many"})
    with pytest.raises(ValueError):
        ExecutionRing(-1)


# ---------------------------------------------------------------------- the light trace at logging OFF
MAPPED = {"StartAt": "Fan", "States": {
    "Fan": {"Type": "Map", "ItemsPath": "$.items", "Next": "Both",
            "ItemProcessor": {"StartAt": "Each", "States": {"Each": {"Type": "Task", "Resource": "ok", "End": True}}}},
    "Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "L", "States": {"L": {"Type": "Pass", "End": True}}},
        {"StartAt": "R", "States": {"R": {"Type": "Task", "Resource": "boom", "End": True}}}]},
}}


def test_logging_off_keeps_a_light_trace_without_data() -> None:
    ring = ExecutionRing(10)
    engine = Engine(functions=FUNCTIONS, recorder=ring)
    machine = engine.compile(FLOW, name="off")  # no logging configuration: OFF
    assert machine.logging is None
    run(machine, {"fail": True, "secret": "s3cr3t"})
    summary = ring.executions("off")[0]
    assert summary["trace"] is True and summary["history"] is False
    d = ring.detail("off", summary["id"])
    assert d is not None
    assert d["path"] == ["A", "B", "Bad"] and d["failed_state"] == "Bad"
    assert "s3cr3t" not in str(d) and "input" not in d and "output" not in d
    assert set(d["states"]) == {"A", "B", "Bad"}
    a = d["states"]["A"][0]
    assert a["duration_ms"] is not None and a["duration_ms"] >= 0 and a["exited_s"] >= a["entered_s"]
    bad = d["states"]["Bad"][0]
    assert bad["error"] == "Boom" and "it broke" in bad["cause"] and bad.get("unfinished") is True
    # the trace holds names and times only, never a reference to the data
    log = ring._rings["off"][1][0][3]
    assert all(set(details) <= {"name", "error", "cause", "index", "length"} for _, _, details in log.events)


def test_the_trace_is_bounded_and_sends_nothing_to_the_log_sink() -> None:
    from express.console import ring as ring_module

    lines: list[Any] = []

    class Sink:
        def emit(self, batch: Any) -> None:
            lines.extend(batch)

    ring = ExecutionRing(10)
    engine = Engine(functions=FUNCTIONS, recorder=ring, log_sink=Sink())
    loop = engine.compile({"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "C"}, "C": {
        "Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 5000, "Next": "Inc"}], "Default": "Done"},
        "Inc": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "C"},
        "Done": {"Type": "Succeed"}}}, name="loop")
    assert run(loop, {"n": 0}).status == "SUCCEEDED"
    log = ring._rings["loop"][0][0][3]
    assert len(log.events) == ring_module.MAX_TRACE_EVENTS and log.dropped > 0
    d = ring.detail("loop", ring.executions("loop")[0]["id"])
    assert d is not None and d["events_truncated"] is True
    assert lines == []  # logging OFF: the log sink never hears of it


def test_no_trace_when_switched_off() -> None:
    ring = ExecutionRing(10, traces_per_s=0)
    engine = Engine(functions=FUNCTIONS, recorder=ring)
    machine = engine.compile(FLOW, name="off")
    run(machine, {"fail": False})
    summary = ring.executions("off")[0]
    assert summary["trace"] is False and summary["history"] is False
    assert ring_from_env({"EXPRESS_CONSOLE_TRACE": "0"}).trace_log is None  # type: ignore[union-attr]
    assert ring_from_env({}).trace_log is not None  # type: ignore[union-attr]


def test_map_iterations_and_parallel_branches_in_the_trace() -> None:
    ring = ExecutionRing(10)
    engine = Engine(functions=FUNCTIONS, recorder=ring)
    machine = engine.compile(MAPPED, name="mapped")
    assert run(machine, {"items": [1, 2, 3]}).status == "FAILED"
    d = ring.detail("mapped", ring.executions("mapped")[0]["id"])
    assert d is not None
    assert [v["iteration"] for v in d["states"]["Each"]] == [0, 1, 2]
    assert all(v["map"] == "Fan" for v in d["states"]["Each"])
    assert d["states"]["L"][0]["error"] is None and d["states"]["R"][0]["error"] == "Boom"
    assert d["failed_state"] == "R"


def test_a_machine_timeout_has_an_error_and_a_cause() -> None:
    ring = ExecutionRing(10)
    engine = Engine(recorder=ring)
    machine = engine.compile({"TimeoutSeconds": 1, "StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 30, "End": True}}}, name="slow")
    r = run(machine, {})
    assert r.status == "TIMED_OUT" and r.error is None  # as the engine (and AWS) report it
    s = ring.executions("slow")[0]
    assert s["error"] == "States.Timeout" and "TimeoutSeconds (1 s)" in s["cause"]
    d = ring.detail("slow", s["id"])
    assert d is not None and d["failed_state"] == "W"
    assert d["states"]["W"][0]["error"] == "States.Timeout" and d["states"]["W"][0]["unfinished"] is True


def test_percentiles_from_observed_durations() -> None:
    ring = ExecutionRing(5)
    m = FakeMachine()
    assert ring.percentiles("m") == {"observed": 0, "p50_s": None, "p90_s": None, "p99_s": None}
    ring.record(m, ExecutionResult("SUCCEEDED", None, None, None, "one", 0.0, 1.0, 1), None)
    # a single 1.00 s execution: every percentile is 1.00 s (not a bucket's interpolation)
    assert ring.percentiles("m") == {"observed": 1, "p50_s": 1.0, "p90_s": 1.0, "p99_s": 1.0}
    for i in range(1, 100):  # 0.01 s .. 0.99 s, and the 1.00 s
        ring.record(m, ExecutionResult("SUCCEEDED", None, None, None, f"e{i}", 0.0, i / 100, 1), None)
    p = ring.percentiles("m")
    assert p["observed"] == 100 and p["p50_s"] == 0.5 and p["p90_s"] == 0.9 and p["p99_s"] == 0.99
    from express.console import ring as ring_module

    for _ in range(ring_module.DURATION_WINDOW + 10):
        ring.record(m, ExecutionResult("SUCCEEDED", None, None, None, "fast", 0.0, 0.001, 1), None)
    assert ring.percentiles("m") == {"observed": ring_module.DURATION_WINDOW, "p50_s": 0.001, "p90_s": 0.001,
                                     "p99_s": 0.001}


def test_the_trace_is_sampled_per_machine_and_second() -> None:
    ring = ExecutionRing(50, traces_per_s=3)
    engine = Engine(functions=FUNCTIONS, recorder=ring)
    machine = engine.compile(FLOW, name="busy")
    quiet = engine.compile(FLOW, name="quiet")
    assert machine._traced_block is not None and machine._traced_block is not machine.block
    for _ in range(10):
        run(machine, {"fail": False})
    run(quiet, {"fail": False})
    listed = ring.executions("busy")
    # within one second (this test runs far faster): the first 3 traced, the others not
    assert [e["trace"] for e in reversed(listed)] == [True] * 3 + [False] * 7
    assert all(e["sampled_out"] for e in listed if not e["trace"])
    assert ring.executions("quiet")[0]["trace"] is True  # its own budget
    # logging ALL: the event log, never a traced copy
    logged = engine.compile(FLOW, name="logged", logging={"level": "ALL", "includeExecutionData": False})
    assert logged._traced_block is None


def test_no_traced_copy_without_a_tracing_recorder() -> None:
    assert Engine(functions=FUNCTIONS).compile(FLOW)._traced_block is None
    assert Engine(functions=FUNCTIONS, recorder=ExecutionRing(5, traces_per_s=0)).compile(FLOW)._traced_block is None
