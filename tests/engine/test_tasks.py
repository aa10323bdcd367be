"""Task invocation: errors from Python functions, payload handling, limits, timeouts."""
from __future__ import annotations

import asyncio
import json

import orjson
import pytest

import express
from tests.support import machine, run, single


class CustomFailure(Exception):
    pass


async def test_exception_class_name_is_error():
    def f(event):
        raise CustomFailure("it broke")

    r = await run(single({"Type": "Task", "Resource": "f"}), {}, functions={"f": f})
    assert r.status == "FAILED"
    assert r.error == "CustomFailure"
    cause = json.loads(r.cause)
    assert cause["errorMessage"] == "it broke"
    assert cause["errorType"] == "CustomFailure"


async def test_async_exception_class_name_is_error():
    async def f(event):
        await asyncio.sleep(0)
        raise ZeroDivisionError("div")

    r = await run(single({"Type": "Task", "Resource": "f"}), {}, functions={"f": f})
    assert r.status == "FAILED"
    assert r.error == "ZeroDivisionError"


async def test_exception_is_catchable_by_name():
    def f(event):
        raise CustomFailure("x")

    d = machine({"T": {"Type": "Task", "Resource": "f", "Catch": [{"ErrorEquals": ["CustomFailure"], "Next": "H"}],
                       "End": True},
                 "H": {"Type": "Pass", "Parameters": {"e.$": "$.Error"}, "End": True}})
    r = await run(d, {}, functions={"f": f})
    assert r.output == {"e": "CustomFailure"}


async def test_function_returning_bytes_json():
    r = await run(single({"Type": "Task", "Resource": "f"}), {},
                  functions={"f": lambda e: b'{"a": [1, 2], "b": null}'})
    assert r.status == "SUCCEEDED"
    assert r.output == {"a": [1, 2], "b": None}


async def test_async_function_returning_bytes_json():
    async def f(event):
        return orjson.dumps({"k": event["v"]})

    r = await run(single({"Type": "Task", "Resource": "f"}), {"v": "x"}, functions={"f": f})
    assert r.output == {"k": "x"}


async def test_function_returning_none_gives_null():
    r = await run(single({"Type": "Task", "Resource": "f", "ResultPath": "$.r"}), {"a": 1},
                  functions={"f": lambda e: None})
    assert r.output == {"a": 1, "r": None}


async def test_function_returning_scalar():
    r = await run(single({"Type": "Task", "Resource": "f"}), {}, functions={"f": lambda e: 3.5})
    assert r.output == 3.5


BIG = "x" * (256 * 1024 + 10)


async def test_result_over_256k_is_data_limit_exceeded():
    r = await run(single({"Type": "Task", "Resource": "f"}), {}, functions={"f": lambda e: {"big": BIG}})
    assert r.status == "FAILED"
    assert r.error == "States.DataLimitExceeded"


async def test_bytes_result_over_256k_is_data_limit_exceeded():
    payload = orjson.dumps({"big": BIG})
    r = await run(single({"Type": "Task", "Resource": "f"}), {}, functions={"f": lambda e: payload})
    assert r.error == "States.DataLimitExceeded"


async def test_result_just_under_limit_succeeds():
    s = "y" * (256 * 1024 - 100)
    r = await run(single({"Type": "Task", "Resource": "f", "ResultSelector": {"n": 1}}), {},
                  functions={"f": lambda e: s})
    assert r.status == "SUCCEEDED"
    assert r.output == {"n": 1}


async def test_data_limit_exceeded_catchable_by_states_all():
    d = machine({"T": {"Type": "Task", "Resource": "f",
                       "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "H"}], "End": True},
                 "H": {"Type": "Pass", "Parameters": {"e.$": "$.err.Error"}, "End": True}})
    r = await run(d, {}, functions={"f": lambda e: BIG})
    assert r.status == "SUCCEEDED"
    assert r.output == {"e": "States.DataLimitExceeded"}


async def test_task_input_is_a_copy():
    def mutate(event):
        event["a"]["b"].append("evil")
        event["new"] = 1
        return {"ok": True}

    d = machine({"T": {"Type": "Task", "Resource": "f", "ResultPath": "$.r", "Next": "P"},
                 "P": {"Type": "Pass", "End": True}})
    data = {"a": {"b": [1]}}
    r = await run(d, data, functions={"f": mutate})
    assert r.output == {"a": {"b": [1]}, "r": {"ok": True}}
    assert data == {"a": {"b": [1]}}


async def test_task_input_copy_in_parallel_branches():
    def mutate(event):
        event["shared"].append(len(event["shared"]))
        return event["shared"]

    d = single({"Type": "Parallel", "Branches": [
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "End": True}}},
        {"StartAt": "U", "States": {"U": {"Type": "Task", "Resource": "f", "End": True}}},
    ]})
    r = await run(d, {"shared": []}, functions={"f": mutate})
    assert r.output == [[0], [0]]


async def test_returned_object_is_decoupled_from_function_state():
    cache = {"v": [1]}

    def f(event):
        return cache

    d = machine({"T": {"Type": "Task", "Resource": "f", "Next": "P"},
                 "P": {"Type": "Pass", "Result": "x", "ResultPath": "$.v[0]", "End": True}})
    r = await run(d, {}, functions={"f": f})
    assert r.output == {"v": ["x"]}
    assert cache == {"v": [1]}


async def test_timeout_seconds_on_async_function():
    started = []

    async def slow(event):
        started.append(1)
        await asyncio.Event().wait()  # never completes

    d = single({"Type": "Task", "Resource": "f", "TimeoutSeconds": 3})
    r = await run(d, {}, functions={"f": slow})
    assert started == [1]
    assert r.status == "FAILED"
    assert r.error == "States.Timeout"
    assert r.stop_time - r.start_time == pytest.approx(3, abs=0.01)


async def test_timeout_is_retriable_and_catchable():
    calls = []

    async def slow(event):
        calls.append(1)
        if len(calls) == 1:
            await asyncio.Event().wait()
        return "done"

    d = single({"Type": "Task", "Resource": "f", "TimeoutSeconds": 2,
                "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1}]})
    r = await run(d, {}, functions={"f": slow})
    assert r.status == "SUCCEEDED"
    assert r.output == "done"
    assert len(calls) == 2


async def test_task_failed_does_not_match_timeout():
    async def slow(event):
        await asyncio.Event().wait()

    d = machine({"T": {"Type": "Task", "Resource": "f", "TimeoutSeconds": 1,
                       "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}], "End": True},
                 "H": {"Type": "Pass", "End": True}})
    r = await run(d, {}, functions={"f": slow})
    assert r.status == "FAILED"
    assert r.error == "States.Timeout"


async def test_timeout_seconds_real_clock():
    async def slow(event):
        await asyncio.sleep(5)

    d = single({"Type": "Task", "Resource": "f", "TimeoutSeconds": 1})
    # Real clock, but a short cap on the whole execution must not preempt the task timeout.
    r = await run(d, {}, functions={"f": slow}, clock=express.RealClock(), max_duration_s=3)
    assert r.status == "FAILED"
    assert r.error == "States.Timeout"


async def test_timeout_seconds_path():
    async def slow(event):
        await asyncio.Event().wait()

    d = single({"Type": "Task", "Resource": "f", "TimeoutSecondsPath": "$.t"})
    r = await run(d, {"t": 4}, functions={"f": slow})
    assert r.error == "States.Timeout"
    assert r.stop_time - r.start_time == pytest.approx(4, abs=0.01)


async def test_non_json_result_fails():
    r = await run(single({"Type": "Task", "Resource": "f"}), {}, functions={"f": lambda e: {1, 2}})
    assert r.status == "FAILED"
    assert r.error is not None


async def test_function_receives_effective_input():
    got = []
    d = single({"Type": "Task", "Resource": "f", "InputPath": "$.a", "Parameters": {"x.$": "$.b"}})
    await run(d, {"a": {"b": 2}}, functions={"f": lambda e: got.append(e)})
    assert got == [{"x": 2}]


async def test_resource_lookup_by_lambda_arn_with_qualifier():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn:prod"
    r = await run(single({"Type": "Task", "Resource": arn}), {"a": 1}, functions={"fn": lambda e: e})
    assert r.output == {"a": 1}


async def test_states_all_catches_task_timeout():
    async def slow(event):
        await asyncio.Event().wait()

    d = machine({"T": {"Type": "Task", "Resource": "f", "TimeoutSeconds": 1,
                       "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}], "End": True},
                 "H": {"Type": "Pass", "Parameters": {"e.$": "$.Error"}, "End": True}})
    r = await run(d, {}, functions={"f": slow})
    assert r.status == "SUCCEEDED"
    assert r.output == {"e": "States.Timeout"}


async def test_data_limit_in_parallel_branch_task():
    d = single({"Type": "Parallel", "Branches": [
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "End": True}}}]})
    r = await run(d, {}, functions={"f": lambda e: BIG})
    assert r.status == "FAILED"
    assert r.error == "States.DataLimitExceeded"


async def test_timeout_seconds_not_hit_by_short_real_io_under_virtual_clock():
    # 20 ms of real work is far below a 60 s TimeoutSeconds: it must not time out just because the
    # virtual clock jumps ahead while the function awaits real I/O.
    async def io(event):
        await asyncio.sleep(0.02)
        return "done"

    r = await run(single({"Type": "Task", "Resource": "f", "TimeoutSeconds": 60}), {}, functions={"f": io})
    assert r.status == "SUCCEEDED"
    assert r.output == "done"
