"""Clocks: VirtualClock semantics, execution caps and definition TimeoutSeconds."""
from __future__ import annotations

import asyncio
import time

import pytest

import express
from tests.support import machine, run, single


async def test_long_wait_is_instant_in_wall_time():
    t0 = time.monotonic()
    r = await run(single({"Type": "Wait", "Seconds": 200}), {"a": 1})
    wall = time.monotonic() - t0
    assert r.status == "SUCCEEDED"
    assert r.stop_time - r.start_time == pytest.approx(200, abs=0.01)
    assert wall < 2.0


async def test_clock_now_advances_with_wait():
    clock = express.VirtualClock(start=1000.0)
    r = await run(single({"Type": "Wait", "Seconds": 50}), {}, clock=clock)
    assert r.start_time == 1000.0
    assert r.stop_time == pytest.approx(1050.0)
    assert clock.now() == pytest.approx(1050.0)


async def test_clock_advance_by_hand():
    clock = express.VirtualClock(start=0)
    woke = asyncio.Event()

    async def sleeper():
        await clock.sleep(10)
        woke.set()

    t = asyncio.create_task(sleeper())
    clock.advance(10)
    await asyncio.wait_for(woke.wait(), 1)
    await t
    assert clock.now() >= 10


async def test_concurrent_sleepers_wake_in_deadline_order():
    clock = express.VirtualClock(start=0)
    order: list[tuple[str, float]] = []

    def make(tag):
        def record(event):
            order.append((tag, clock.now()))
            return tag
        return record

    branches = []
    for tag, secs in (("c", 30), ("a", 10), ("b", 20), ("z", 0)):
        branches.append({"StartAt": "W" + tag, "States": {
            "W" + tag: {"Type": "Wait", "Seconds": secs, "Next": "T" + tag},
            "T" + tag: {"Type": "Task", "Resource": tag, "End": True}}})
    d = single({"Type": "Parallel", "Branches": branches})
    r = await run(d, {}, functions={t: make(t) for t in "abcz"}, clock=clock)
    assert r.status == "SUCCEEDED"
    assert r.output == ["c", "a", "b", "z"]
    assert [t for t, _ in order] == ["z", "a", "b", "c"]
    assert [now for _, now in order] == [pytest.approx(x) for x in (0, 10, 20, 30)]
    assert r.stop_time - r.start_time == pytest.approx(30)


async def test_concurrent_executions_share_virtual_clock_in_order():
    clock = express.VirtualClock(start=0)
    engine = express.Engine(clock=clock)
    m = engine.compile(machine({"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}))
    finished: list[int] = []

    async def one(s):
        r = await m.execute({"s": s})
        finished.append(s)
        return r

    results = await asyncio.gather(*(one(s) for s in (50, 5, 25)))
    assert finished == [5, 25, 50]
    assert [r.stop_time for r in results] == [pytest.approx(50), pytest.approx(5), pytest.approx(25)]


async def test_execution_cap_times_out_wait():
    r = await run(single({"Type": "Wait", "Seconds": 60}), {}, max_duration_s=10)
    assert r.status == "TIMED_OUT"
    assert r.error == "States.Timeout"
    assert r.output is None
    assert r.stop_time - r.start_time == pytest.approx(10, abs=0.01)


async def test_execution_cap_times_out_retry_backoff():
    d = single({"Type": "Task", "Resource": "f",
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 100, "MaxAttempts": 5}]})

    def f(event):
        raise RuntimeError("no")

    r = await run(d, {}, functions={"f": f}, max_duration_s=10)
    assert r.status == "TIMED_OUT"
    assert r.error == "States.Timeout"


async def test_execution_cap_not_catchable():
    d = machine({"P": {"Type": "Parallel", "Branches": [{"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 60, "End": True}}}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True}})
    r = await run(d, {}, max_duration_s=10)
    assert r.status == "TIMED_OUT"


async def test_definition_timeout_seconds():
    d = machine({"W": {"Type": "Wait", "Seconds": 60, "End": True}}, TimeoutSeconds=5)
    r = await run(d, {})
    assert r.status == "TIMED_OUT"
    assert r.error is None
    assert r.cause is None
    assert r.stop_time - r.start_time == pytest.approx(5, abs=0.01)


async def test_definition_timeout_not_reached():
    d = machine({"W": {"Type": "Wait", "Seconds": 4, "End": True}}, TimeoutSeconds=5)
    r = await run(d, {"a": 1})
    assert r.status == "SUCCEEDED"
    assert r.output == {"a": 1}


async def test_infinite_pass_loop_times_out_in_real_time():
    d = machine({
        "Loop": {"Type": "Pass", "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "Done"}],
              "Default": "Loop"},
        "Done": {"Type": "Succeed"}})
    t0 = time.monotonic()
    r = await run(d, {}, max_duration_s=0.5)
    assert r.status == "TIMED_OUT"
    assert time.monotonic() - t0 < 5


async def test_infinite_choice_self_loop_real_clock():
    d = machine({"C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "D"}],
                       "Default": "C"},
                 "D": {"Type": "Succeed"}})
    t0 = time.monotonic()
    r = await run(d, {}, max_duration_s=0.5, clock=express.RealClock())
    assert r.status == "TIMED_OUT"
    assert r.error == "States.Timeout"
    assert time.monotonic() - t0 < 5


async def test_infinite_loop_does_not_starve_other_executions():
    loop_m = express.Engine(clock=express.RealClock(), max_duration_s=0.5).compile(machine({
        "L": {"Type": "Pass", "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "D"}], "Default": "L"},
        "D": {"Type": "Succeed"}}))
    quick = express.Engine(clock=express.RealClock()).compile(machine({"W": {"Type": "Wait", "Seconds": 0, "Next": "P"},
                                                                       "P": {"Type": "Pass", "End": True}}))
    looping = asyncio.create_task(loop_m.execute({}))
    await asyncio.sleep(0)
    r = await asyncio.wait_for(quick.execute({"q": 1}), 5)
    assert r.output == {"q": 1}
    assert (await looping).status == "TIMED_OUT"


async def test_infinite_loop_with_wait_zero_virtual():
    d = machine({"W": {"Type": "Wait", "Seconds": 0, "Next": "C"},
                 "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "D"}],
                       "Default": "W"},
                 "D": {"Type": "Succeed"}})
    t0 = time.monotonic()
    r = await run(d, {}, max_duration_s=0.5)
    assert r.status == "TIMED_OUT"
    assert time.monotonic() - t0 < 5


async def test_async_task_with_real_io_under_virtual_clock():
    # A task that awaits real I/O (here a short real sleep) must not make virtual time jump to the
    # execution deadline: the execution should simply succeed.
    async def io(event):
        await asyncio.sleep(0.02)
        return "done"

    r = await run(single({"Type": "Task", "Resource": "f"}), {}, functions={"f": io})
    assert r.status == "SUCCEEDED"
    assert r.output == "done"


async def test_real_clock_short_wait():
    r = await run(single({"Type": "Wait", "Seconds": 0}), {"a": 1}, clock=express.RealClock())
    assert r.status == "SUCCEEDED"
