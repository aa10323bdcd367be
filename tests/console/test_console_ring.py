"""The console's ring of recent executions: bounded, failures kept apart, cheap to record,
rendered on request only, following the machine's logging configuration."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from express.console.ring import ExecutionRing, path_of, ring_from_env
from express.engine import Engine, ExecutionResult


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
    assert d is not None and d["events"] == [] and d["path"] == [] and "input" not in d


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

    class Unserialisable:
        pass

    value = Unserialisable()
    r = result("SUCCEEDED", output=value)
    ring.record(m, r, None)
    entry = ring._rings["m"][0][0]
    assert entry[2] is r and entry[2].output is value  # a reference, not a copy
    assert ring.executions("m")[0]["status"] == "SUCCEEDED"


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
    assert d["execution_arn"].endswith(":" + d["name"])
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
