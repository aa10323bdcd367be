"""The runner's checkpoints: long synchronous runs give the event loop back (express.engine.runner)."""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

import express
from express.engine import runner
from express.engine.history import LoggingConfig
from express.observe.sinks import MemorySink
from tests.support import machine

# A Pass <-> Choice loop that never ends for {"x": 1}: it only stops at the execution's cap.
SPIN_STATES = {
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": -1, "Next": "D"}], "Default": "P"},
    "P": {"Type": "Pass", "Next": "C"},
    "D": {"Type": "Succeed"},
}
SPIN = machine(SPIN_STATES, "C")


def counting_loop(n: int) -> dict[str, Any]:
    """Init, then (Increment, Check) n times, then Done: 2 + 2n transitions, $.i == n at the end."""
    return machine({
        "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.i", "Next": "Increment"},
        "Increment": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)", "name.$": "$$.State.Name",
                                                     "execution.$": "$$.Execution.Name"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThan": n, "Next": "Increment"}],
                  "Default": "Done"},
        "Done": {"Type": "Succeed"},
    })


class Probe:
    """Another coroutine on the same loop: counts how often it got to run while ``busy`` was not done."""

    def __init__(self) -> None:
        self.runs = 0

    async def watch(self, busy: asyncio.Future[Any]) -> None:
        while not busy.done():
            self.runs += 1
            await asyncio.sleep(0)


async def beside_probe(coro: Any) -> tuple[Any, int]:
    busy = asyncio.ensure_future(coro)
    probe = Probe()
    watcher = asyncio.ensure_future(probe.watch(busy))
    result = await busy
    await watcher
    return result, probe.runs


def spin_engine(cap: float = 0.3, **kw: Any) -> express.Engine:
    return express.Engine(clock=express.RealClock(), max_duration_s=cap, **kw)


async def test_a_spinning_execution_lets_the_loop_run_until_its_cap():
    m = spin_engine().compile(SPIN)
    r, probe_runs = await beside_probe(m.execute({"x": 1}))
    assert (r.status, r.error) == ("TIMED_OUT", "States.Timeout")
    assert r.cause == "The execution exceeded its maximum duration of 0.3 seconds."
    assert r.state_transitions > 10_000
    # before: the whole run held the loop, and the probe ran once at most
    assert probe_runs >= 10


async def test_a_short_execution_finishes_without_giving_the_loop_back():
    m = spin_engine().compile(counting_loop(3))  # 8 transitions, under the first checkpoint
    coro = m.execute({})
    with pytest.raises(StopIteration) as done:
        coro.send(None)
    assert done.value.value.status == "SUCCEEDED"


async def test_a_map_whose_iterator_spins_lets_the_loop_run():
    m = spin_engine().compile(machine({"M": {"Type": "Map", "ItemsPath": "$.items", "End": True,
                                             "ItemProcessor": {"StartAt": "C", "States": SPIN_STATES}}}))
    r, probe_runs = await beside_probe(m.execute({"items": [{"x": 1}] * 20}))
    assert (r.status, r.error) == ("TIMED_OUT", "States.Timeout")
    assert probe_runs >= 10


async def test_a_map_of_async_iterations_that_spin_lets_the_loop_run():
    # A Wait makes the processor asynchronous: iterations run as tasks, all spinning at once.
    states = {"W": {"Type": "Wait", "Seconds": 0, "Next": "C"}, **SPIN_STATES}
    m = spin_engine().compile(machine({"M": {"Type": "Map", "ItemsPath": "$.items", "End": True,
                                             "ItemProcessor": {"StartAt": "W", "States": states}}}))
    r, probe_runs = await beside_probe(m.execute({"items": [{"x": 1}] * 40}))
    assert r.status == "TIMED_OUT"
    assert probe_runs >= 10


async def test_a_parallel_branch_that_spins_lets_the_loop_run():
    m = spin_engine().compile(machine({"Par": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": True}}},
        {"StartAt": "C", "States": SPIN_STATES}]}}))
    r, probe_runs = await beside_probe(m.execute({"x": 1}))
    assert r.status == "TIMED_OUT"
    assert probe_runs >= 10


async def test_a_huge_map_of_pass_states_lets_the_loop_run_and_is_exact():
    n = 40_000
    processor = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": True}}}
    m = spin_engine(cap=60, max_payload_bytes=8 << 20).compile(
        machine({"M": {"Type": "Map", "End": True, "ItemProcessor": processor}}))
    r, probe_runs = await beside_probe(m.execute(list(range(n))))
    assert r.status == "SUCCEEDED", (r.error, r.cause)
    assert r.output == [{"v": i} for i in range(n)]
    assert r.state_transitions == 1 + n
    assert probe_runs >= 5


async def test_a_huge_map_with_an_item_selector_lets_the_loop_run():
    n = 20_000
    m = spin_engine(cap=60, max_payload_bytes=8 << 20).compile(machine({"M": {
        "Type": "Map", "End": True, "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}}))
    r, probe_runs = await beside_probe(m.execute(list(range(n))))
    assert r.status == "SUCCEEDED", (r.error, r.cause)
    assert r.output == [{"i": i, "v": i} for i in range(n)]
    assert probe_runs >= 5


async def test_concurrent_spinning_executions_all_get_turns():
    m = spin_engine(cap=1.0).compile(SPIN)

    async def all_of_them() -> list[Any]:
        return await asyncio.gather(*(m.execute({"x": 1}) for _ in range(4)))

    results, probe_runs = await beside_probe(all_of_them())
    assert [r.status for r in results] == ["TIMED_OUT"] * 4
    assert min(r.state_transitions for r in results) > 1_000  # nobody starved
    assert probe_runs >= 10


@pytest.fixture
def tiny_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every checkpoint finds its slice used up: runs switch to the yielding runner at once."""
    monkeypatch.setattr(runner, "SLICE_S", 0.0)
    monkeypatch.setattr(runner, "_BATCH_S", 0.0)


@pytest.mark.usefixtures("tiny_slices")
async def test_transitions_context_and_output_are_exact_after_the_switch():
    n = 3_000
    m = spin_engine(cap=60).compile(counting_loop(n))
    r, probe_runs = await beside_probe(m.execute({}, name="exact"))
    assert r.status == "SUCCEEDED", (r.error, r.cause)
    assert r.output == {"i": n, "name": "Increment", "execution": "exact"}
    assert r.state_transitions == 2 + 2 * n  # each transition counted once, before and after the switch
    assert probe_runs >= 10  # it did switch, many times


@pytest.mark.usefixtures("tiny_slices")
async def test_variables_survive_the_switch():
    n = 1_000
    m = spin_engine(cap=60).compile({"QueryLanguage": "JSONata", "StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Assign": {"n": 0}, "Next": "Increment"},
        "Increment": {"Type": "Pass", "Assign": {"n": "{% $n + 1 %}"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Condition": f"{{% $n < {n} %}}", "Next": "Increment"}],
                  "Default": "Done"},
        "Done": {"Type": "Succeed", "Output": "{% {'n': $n} %}"}}})
    r = await m.execute({})
    assert (r.status, r.output, r.state_transitions) == ("SUCCEEDED", {"n": n}, 2 + 2 * n)


@pytest.mark.usefixtures("tiny_slices")
async def test_the_event_log_has_each_event_once_after_the_switch():
    n = 500
    sink = MemorySink()
    m = spin_engine(cap=60, log_sink=sink).compile(counting_loop(n), name="logged",
                                                   logging=LoggingConfig(level="ALL"))
    r = await m.execute({})
    assert r.status == "SUCCEEDED"
    records = [orjson.loads(line) for line in sink.records]
    types = [rec["type"] for rec in records]
    assert types.count("PassStateEntered") == n + 1 and types.count("ChoiceStateEntered") == n
    assert [rec["id"] for rec in records] == [str(i) for i in range(1, len(records) + 1)]
    assert types[-1] == "ExecutionSucceeded"


@pytest.mark.usefixtures("tiny_slices")
async def test_a_map_of_iterations_that_switch_is_exact():
    m = spin_engine(cap=60).compile(machine({"M": {"Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.out",
                                                   "ItemProcessor": counting_loop(200), "End": True}}))
    r = await m.execute({"items": [{}] * 30})
    assert r.status == "SUCCEEDED", (r.error, r.cause)
    assert r.output["out"] == [{"i": 200, "name": "Increment", "execution": r.name}] * 30
    assert r.state_transitions == 1 + 30 * (2 + 2 * 200)


async def test_a_caller_driving_the_coroutine_by_hand_can_hand_it_to_a_task():
    """The Kafka worker runs sync machines with coro.send(None); a suspension must be a bare yield."""
    m = spin_engine(cap=0.2).compile(SPIN)
    coro = m.execute({"x": 1})
    assert coro.send(None) is None  # the engine gave the loop back (its slice was used up)
    r = await asyncio.ensure_future(coro)
    assert (r.status, r.error) == ("TIMED_OUT", "States.Timeout")


async def test_the_cap_is_enforced_while_waiting_for_a_turn():
    short = spin_engine(cap=0.2).compile(SPIN)
    long = spin_engine(cap=1.0).compile(SPIN)
    results = await asyncio.gather(long.execute({"x": 1}), short.execute({"x": 1}), long.execute({"x": 1}))
    assert [r.status for r in results] == ["TIMED_OUT"] * 3
    assert results[1].cause == "The execution exceeded its maximum duration of 0.2 seconds."


def test_may_wait_says_which_machines_a_caller_may_drive_by_hand():
    """Machine.may_wait (read-only): True when a state can wait (Wait, Task, Parallel, Map); the
    Kafka worker drives the others by hand (test_a_caller_driving_the_coroutine_by_hand_...)."""
    engine = spin_engine(functions={"f": lambda event: event})
    wait = {"Type": "Wait", "Seconds": 1, "End": True}
    task = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:f", "End": True}
    parallel = {"Type": "Parallel", "End": True, "Branches": [counting_loop(1)]}
    map_of_pass = {"Type": "Map", "End": True, "ItemProcessor": machine({"P": {"Type": "Pass", "End": True}})}
    for states in ({"W": wait}, {"T": task}, {"P": parallel}, {"M": map_of_pass}):
        assert engine.compile(machine(states)).may_wait is True, states
    for definition in (SPIN, counting_loop(3), machine({"C": {"Type": "Choice", "Default": "F", "Choices": [
            {"Variable": "$.x", "IsPresent": True, "Next": "S"}]}, "S": {"Type": "Succeed"},
            "F": {"Type": "Fail", "Error": "E"}})):
        assert engine.compile(definition).may_wait is False
    with pytest.raises(AttributeError):
        engine.compile(SPIN).may_wait = True  # type: ignore[misc]
