"""Each ASL state type, end to end through Engine.compile/execute (JSONPath)."""
from __future__ import annotations

import asyncio

import pytest

import express
from tests.support import machine, run, single

LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


# =============================================================================== Pass

async def test_pass_default_copies_input():
    r = await run(single({"Type": "Pass"}), {"a": 1})
    assert r.status == "SUCCEEDED"
    assert r.output == {"a": 1}


async def test_pass_no_input_is_empty_object():
    r = await run(single({"Type": "Pass"}))
    assert r.output == {}


async def test_pass_result_replaces_input():
    r = await run(single({"Type": "Pass", "Result": {"x": [1, 2]}}), {"a": 1})
    assert r.output == {"x": [1, 2]}


async def test_pass_result_with_result_path():
    r = await run(single({"Type": "Pass", "Result": "r", "ResultPath": "$.out.deep"}), {"a": 1})
    assert r.output == {"a": 1, "out": {"deep": "r"}}


async def test_pass_result_fresh_each_execution():
    m = express.Engine(clock=express.VirtualClock()).compile(single({"Type": "Pass", "Result": {"l": [1]}}))
    r1 = await m.execute({})
    r1.output["l"].append(2)
    r2 = await m.execute({})
    assert r2.output == {"l": [1]}


async def test_pass_parameters():
    r = await run(single({"Type": "Pass", "Parameters": {"v.$": "$.a", "c": "const"}}), {"a": 5})
    assert r.output == {"v": 5, "c": "const"}


async def test_pass_input_path_then_parameters_then_result_path_into_raw_input():
    r = await run(single({"Type": "Pass", "InputPath": "$.in", "Parameters": {"v.$": "$.x"},
                          "ResultPath": "$.res"}), {"in": {"x": 7}, "other": 1})
    # ResultPath merges into the RAW input, not the InputPath-filtered one.
    assert r.output == {"in": {"x": 7}, "other": 1, "res": {"v": 7}}


async def test_pass_output_path():
    r = await run(single({"Type": "Pass", "Result": {"a": {"b": 3}}, "ResultPath": "$.r", "OutputPath": "$.r.a"}),
                  {"z": 0})
    assert r.output == {"b": 3}


async def test_pass_input_path_null_gives_empty_object():
    r = await run(single({"Type": "Pass", "InputPath": None}), {"a": 1})
    assert r.output == {}


async def test_pass_result_path_null_discards_result():
    r = await run(single({"Type": "Pass", "Result": "ignored", "ResultPath": None}), {"a": 1})
    assert r.output == {"a": 1}


async def test_pass_output_path_null_gives_empty_object():
    r = await run(single({"Type": "Pass", "OutputPath": None}), {"a": 1})
    assert r.output == {}


async def test_pass_multi_match_input_path_gathers_array():
    r = await run(single({"Type": "Pass", "InputPath": "$.a[0,1]"}), {"a": [1, 2, 3]})
    assert r.output == [1, 2]


async def test_pass_input_path_missing_is_runtime_error():
    r = await run(single({"Type": "Pass", "InputPath": "$.nope"}), {"a": 1})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert r.cause.endswith("Invalid path '$.nope' : No results for path: $['nope']")
    assert "executing the state 'S'" in r.cause


async def test_pass_output_path_missing_is_runtime_error():
    r = await run(single({"Type": "Pass", "OutputPath": "$.nope"}), {"a": 1})
    assert r.error == "States.Runtime"
    assert "No results for path: $['nope']" in r.cause


async def test_pass_result_path_through_scalar_is_runtime_error():
    r = await run(single({"Type": "Pass", "Result": 1, "ResultPath": "$.a.b"}), {"a": 1})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert "Invalid path '$.a.b'" in r.cause


async def test_pass_result_path_on_scalar_input_fails():
    r = await run(single({"Type": "Pass", "Result": 1, "ResultPath": "$.x"}), [1, 2])
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"


async def test_pass_chain_next():
    d = machine({"A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "B"},
                 "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.b", "End": True}})
    r = await run(d, {})
    assert r.output == {"a": 1, "b": 2}
    assert r.state_transitions >= 2


async def test_non_object_inputs_pass_through():
    for value in (1, "s", [1, 2], None, True, 1.5):
        r = await run(single({"Type": "Pass"}), value) if value is not None else None
        if r is not None:
            assert r.output == value


# =============================================================================== Succeed

async def test_succeed():
    r = await run(single({"Type": "Succeed"}), {"a": 1})
    assert r.status == "SUCCEEDED"
    assert r.output == {"a": 1}


async def test_succeed_input_output_path():
    r = await run(single({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}), {"a": {"b": 2}})
    assert r.output == 2


# =============================================================================== Fail

async def test_fail_error_cause():
    r = await run(single({"Type": "Fail", "Error": "MyErr", "Cause": "because"}), {})
    assert r.status == "FAILED"
    assert (r.error, r.cause, r.output) == ("MyErr", "because", None)


async def test_fail_empty():
    r = await run(single({"Type": "Fail"}), {})
    assert r.status == "FAILED"
    assert r.error is None
    assert r.cause is None


async def test_fail_error_path_cause_path():
    r = await run(single({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c.text"}),
                  {"e": "E1", "c": {"text": "C1"}})
    assert (r.error, r.cause) == ("E1", "C1")


async def test_fail_cause_path_intrinsic():
    r = await run(single({"Type": "Fail", "Error": "E", "CausePath": "States.Format('n={}', $.n)"}), {"n": 3})
    assert (r.error, r.cause) == ("E", "n=3")


async def test_fail_error_path_missing():
    r = await run(single({"Type": "Fail", "ErrorPath": "$.ErrorX"}), {"a": 1})
    assert r.error == "States.Runtime"
    assert "The JSONPath '$.ErrorX' specified for the field 'ErrorPath' could not be found in the input '{\"a\":1}'" \
        in r.cause


async def test_fail_error_path_not_string():
    r = await run(single({"Type": "Fail", "ErrorPath": "$.e"}), {"e": 5})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"


def test_fail_error_and_error_path_rejected():
    with pytest.raises(express.DefinitionError):
        express.Engine().compile(single({"Type": "Fail", "Error": "a", "ErrorPath": "$.e"}))


# =============================================================================== Choice

CHOICE = machine({
    "C": {"Type": "Choice", "Choices": [
        {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"},
        {"And": [{"Variable": "$.s", "IsPresent": True}, {"Variable": "$.s", "StringEquals": "x"}], "Next": "X"},
    ], "Default": "Other"},
    "Big": {"Type": "Pass", "Result": "big", "End": True},
    "X": {"Type": "Pass", "Result": "x", "End": True},
    "Other": {"Type": "Pass", "Result": "other", "End": True},
})


@pytest.mark.parametrize(("inp", "out"), [
    ({"n": 11}, "big"), ({"n": 10, "s": "x"}, "x"), ({"n": 1}, "other"), ({"n": "11"}, "other"),
    ({"n": 1, "s": "y"}, "other"),
])
async def test_choice_routes(inp, out):
    r = await run(CHOICE, inp)
    assert r.status == "SUCCEEDED"
    assert r.output == out


async def test_choice_no_match_without_default():
    d = machine({"C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "D"}]},
                 "D": {"Type": "Succeed"}})
    r = await run(d, {"n": 2})
    assert r.status == "FAILED"
    assert r.error == "States.NoChoiceMatched"
    r = await run(d, {"n": 1})
    assert r.status == "SUCCEEDED"


async def test_choice_input_output_path():
    d = machine({"C": {"Type": "Choice", "InputPath": "$.in", "OutputPath": "$.v",
                       "Choices": [{"Variable": "$.v", "IsPresent": True, "Next": "D"}]},
                 "D": {"Type": "Succeed"}})
    r = await run(d, {"in": {"v": 4}})
    assert r.output == 4


async def test_choice_missing_variable_fails_runtime():
    d = machine({"C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "D"}],
                       "Default": "D"},
                 "D": {"Type": "Succeed"}})
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"


# =============================================================================== Wait

def wait_then_stamp(wait: dict) -> dict:
    return machine({"W": {"Type": "Wait", "Next": "P", **wait},
                    "P": {"Type": "Pass", "Parameters": {"entered.$": "$$.State.EnteredTime"}, "End": True}})


async def test_wait_seconds_virtual():
    r = await run(single({"Type": "Wait", "Seconds": 30}), {"a": 1})
    assert r.status == "SUCCEEDED"
    assert r.output == {"a": 1}
    assert r.stop_time - r.start_time == pytest.approx(30, abs=0.01)


async def test_wait_seconds_path():
    r = await run(single({"Type": "Wait", "SecondsPath": "$.s"}), {"s": 12})
    assert r.status == "SUCCEEDED"
    assert r.stop_time - r.start_time == pytest.approx(12, abs=0.01)


async def test_wait_timestamp():
    clock = express.VirtualClock(start=1_700_000_000.0)  # 2023-11-14T22:13:20Z
    r = await run(single({"Type": "Wait", "Timestamp": "2023-11-14T22:15:00Z"}), {}, clock=clock)
    assert r.status == "SUCCEEDED"
    assert r.stop_time - r.start_time == pytest.approx(100, abs=0.01)


async def test_wait_timestamp_path_with_offset():
    clock = express.VirtualClock(start=1_700_000_000.0)
    r = await run(single({"Type": "Wait", "TimestampPath": "$.t"}), {"t": "2023-11-15T00:14:00+02:00"}, clock=clock)
    assert r.status == "SUCCEEDED"
    assert r.stop_time - r.start_time == pytest.approx(40, abs=0.01)


async def test_wait_timestamp_in_past_is_immediate():
    clock = express.VirtualClock(start=1_700_000_000.0)
    r = await run(single({"Type": "Wait", "Timestamp": "2020-01-01T00:00:00Z"}), {}, clock=clock)
    assert r.status == "SUCCEEDED"
    assert r.stop_time - r.start_time == pytest.approx(0, abs=0.01)


async def test_wait_entered_time_advances():
    clock = express.VirtualClock(start=1_700_000_000.0)
    r = await run(wait_then_stamp({"Seconds": 65}), {}, clock=clock)
    assert r.output == {"entered": "2023-11-14T22:14:25.000Z"}


@pytest.mark.parametrize(("inp", "cause"), [
    ({}, "The SecondsPath parameter does not reference an input value: $.x"),
    ({"x": -1}, "The SecondsPath parameter references a negative value: $.x == -1"),
    ({"x": 1.5}, "The SecondsPath parameter cannot be parsed as a long value: $.x == 1.5"),
])
async def test_wait_seconds_path_errors(inp, cause):
    r = await run(single({"Type": "Wait", "SecondsPath": "$.x"}), inp)
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert r.cause.endswith(cause)


async def test_wait_seconds_path_string_fails():
    r = await run(single({"Type": "Wait", "SecondsPath": "$.x"}), {"x": "ten"})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"


async def test_wait_timestamp_path_bad_format():
    r = await run(single({"Type": "Wait", "TimestampPath": "$.x"}), {"x": "2016-12-05 21:29:29Z"})
    assert r.error == "States.Runtime"
    assert r.cause.endswith("The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
                            "date-time format string: $.x == 2016-12-05 21:29:29Z")


async def test_wait_timestamp_path_missing():
    r = await run(single({"Type": "Wait", "TimestampPath": "$.x"}), {})
    assert r.error == "States.Runtime"
    assert "TimestampPath" in r.cause


@pytest.mark.parametrize("wait", [
    {"Seconds": -1}, {"Seconds": "5"}, {"Timestamp": "not a time"}, {"Seconds": 1, "Timestamp": "2020-01-01T00:00:00Z"},
    {"SecondsPath": "nope"},
])
def test_wait_invalid_definitions(wait):
    with pytest.raises(express.DefinitionError):
        express.Engine().compile(single({"Type": "Wait", **wait}))


# =============================================================================== Task

def double(event):
    return {"doubled": event["n"] * 2}


async def adouble(event):
    await asyncio.sleep(0)
    return {"doubled": event["n"] * 2}


@pytest.mark.parametrize("fn", [double, adouble])
async def test_task_plain_and_async_function(fn):
    r = await run(single({"Type": "Task", "Resource": "dbl"}), {"n": 4}, functions={"dbl": fn})
    assert r.status == "SUCCEEDED"
    assert r.output == {"doubled": 8}


async def test_task_by_lambda_arn_registered_by_name():
    r = await run(single({"Type": "Task", "Resource": LAMBDA_ARN.format("dbl")}), {"n": 1}, functions={"dbl": double})
    assert r.output == {"doubled": 2}


async def test_task_by_lambda_arn_registered_by_arn():
    arn = LAMBDA_ARN.format("dbl")
    r = await run(single({"Type": "Task", "Resource": arn}), {"n": 2}, functions={arn: adouble})
    assert r.output == {"doubled": 4}


@pytest.mark.parametrize("fn", [double, adouble])
async def test_task_lambda_invoke_integration(fn):
    d = single({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": LAMBDA_ARN.format("dbl"), "Payload": {"n.$": "$.v"}},
                "ResultSelector": {"p.$": "$.Payload", "code.$": "$.StatusCode"}})
    r = await run(d, {"v": 21}, functions={"dbl": fn})
    assert r.status == "SUCCEEDED"
    assert r.output == {"p": {"doubled": 42}, "code": 200}


async def test_task_lambda_invoke_full_result_has_payload():
    d = single({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "dbl", "Payload.$": "$"}, "ResultPath": "$.res"})
    r = await run(d, {"n": 1}, functions={"dbl": double})
    assert r.output["n"] == 1
    assert r.output["res"]["Payload"] == {"doubled": 2}
    assert r.output["res"]["StatusCode"] == 200


async def test_task_lambda_invoke_unknown_function():
    d = single({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "missing"}})
    r = await run(d, {}, functions={"dbl": double})
    assert r.status == "FAILED"
    assert r.error == "Lambda.ResourceNotFoundException"


def test_task_unknown_resource_rejected():
    with pytest.raises(express.DefinitionError) as ei:
        express.Engine(functions={}).compile(single({"Type": "Task", "Resource": "nothing"}))
    assert any(p.pointer == "/States/S/Resource" for p in ei.value.problems)


async def test_task_input_path_parameters_result_selector_result_path_output_path():
    d = single({"Type": "Task", "Resource": "f", "InputPath": "$.in", "Parameters": {"n.$": "$.x"},
                "ResultSelector": {"r.$": "$.doubled"}, "ResultPath": "$.out", "OutputPath": "$.out"})
    r = await run(d, {"in": {"x": 3}}, functions={"f": double})
    assert r.output == {"r": 6}


async def test_task_context_object_in_parameters():
    seen = {}

    def f(event):
        seen.update(event)
        return None

    d = single({"Type": "Task", "Resource": "f",
                "Parameters": {"state.$": "$$.State.Name", "input.$": "$$.Execution.Input"}})
    r = await run(d, {"k": 1}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert r.output is None
    assert seen == {"state": "S", "input": {"k": 1}}


# =============================================================================== Parallel

async def test_parallel_results_in_branch_order():
    d = single({"Type": "Parallel", "Branches": [
        {"StartAt": "C", "States": {"C": {"Type": "Wait", "Seconds": 5, "Next": "D"},
                                    "D": {"Type": "Pass", "InputPath": "$.x", "End": True}}},
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": "fast", "End": True}}},
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "f", "End": True}}},
    ], "ResultPath": "$.res"})
    r = await run(d, {"x": 9, "n": 1}, functions={"f": adouble})
    assert r.status == "SUCCEEDED"
    assert r.output == {"x": 9, "n": 1, "res": [9, "fast", {"doubled": 2}]}
    assert r.stop_time - r.start_time == pytest.approx(5, abs=0.01)


async def test_parallel_branches_run_concurrently_real_clock():
    # Branch A can only finish once branch B has started: sequential branches would deadlock.
    b_started = asyncio.Event()

    async def a(event):
        await asyncio.wait_for(b_started.wait(), 2)
        return "a"

    async def b(event):
        b_started.set()
        return "b"

    d = single({"Type": "Parallel", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "a", "End": True}}},
        {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "b", "End": True}}},
    ]})
    r = await run(d, {}, functions={"a": a, "b": b}, clock=express.RealClock())
    assert r.status == "SUCCEEDED"
    assert r.output == ["a", "b"]


async def test_parallel_branch_failure_fails_state_and_is_catchable():
    d = machine({
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
            {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "b"}}},
        ], "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.err", "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True},
    })
    r = await run(d, {"i": 1})
    assert r.status == "SUCCEEDED"
    assert r.output == {"i": 1, "err": {"Error": "Boom", "Cause": "b"}}


async def test_parallel_branch_failure_uncaught():
    d = single({"Type": "Parallel", "Branches": [
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom"}}}]})
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == "Boom"


async def test_parallel_parameters_and_result_selector():
    d = single({"Type": "Parallel", "Parameters": {"v.$": "$.a"}, "ResultSelector": {"first.$": "$[0]"},
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}]})
    r = await run(d, {"a": 1})
    assert r.output == {"first": {"v": 1}}


async def test_parallel_succeed_in_branch_ends_only_branch():
    d = machine({"P": {"Type": "Parallel", "Next": "After", "Branches": [
        {"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}]},
        "After": {"Type": "Pass", "Result": "after", "End": True}})
    r = await run(d, {})
    assert r.output == "after"


# =============================================================================== Map

async def test_map_items_path_and_item_selector_with_context():
    d = single({"Type": "Map", "ItemsPath": "$.items",
                "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "shared.$": "$.shared"},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}})
    r = await run(d, {"items": ["a", "b", "c"], "shared": 0})
    assert r.status == "SUCCEEDED"
    assert r.output == [{"i": 0, "v": "a", "shared": 0}, {"i": 1, "v": "b", "shared": 0},
                        {"i": 2, "v": "c", "shared": 0}]


async def test_map_default_items_is_input():
    d = single({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {
        "P": {"Type": "Task", "Resource": "f", "End": True}}}})
    r = await run(d, [{"n": 1}, {"n": 2}], functions={"f": double})
    assert r.output == [{"doubled": 2}, {"doubled": 4}]


async def test_map_legacy_parameters_and_iterator():
    d = single({"Type": "Map", "ItemsPath": "$.l", "Parameters": {"idx.$": "$$.Map.Item.Index", "val.$": "$$.Map.Item.Value"},
                "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "ResultPath": "$.out"})
    r = await run(d, {"l": [10, 20]})
    assert r.output == {"l": [10, 20], "out": [{"idx": 0, "val": 10}, {"idx": 1, "val": 20}]}


async def test_map_max_concurrency_one_is_sequential():
    log = []

    async def f(event):
        log.append(("start", event))
        await asyncio.sleep(0.001 * (5 - event))
        log.append(("end", event))
        return event * 10

    d = single({"Type": "Map", "MaxConcurrency": 1, "ItemProcessor": {"StartAt": "P", "States": {
        "P": {"Type": "Task", "Resource": "f", "End": True}}}})
    r = await run(d, [0, 1, 2, 3], functions={"f": f}, clock=express.RealClock())
    assert r.output == [0, 10, 20, 30]
    assert log == [(k, i) for i in range(4) for k in ("start", "end")]


async def test_map_unbounded_concurrency_overlaps_but_keeps_order():
    clock = express.VirtualClock(start=0)
    d = single({"Type": "Map", "ItemProcessor": {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "SecondsPath": "$", "End": True}}}})
    r = await run(d, [30, 10, 20], clock=clock)
    assert r.output == [30, 10, 20]
    assert r.stop_time - r.start_time == pytest.approx(30, abs=0.01)


async def test_map_empty_items():
    d = single({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}})
    r = await run(d, [])
    assert r.output == []


async def test_map_items_not_array_fails():
    d = single({"Type": "Map", "ItemsPath": "$.l",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}})
    r = await run(d, {"l": {"not": "array"}})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert "Map state input must be an array" in r.cause


async def test_map_iteration_failure_fails_map():
    d = single({"Type": "Map", "ItemProcessor": {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "OK"},
        "F": {"Type": "Fail", "Error": "Two"}, "OK": {"Type": "Succeed"}}}})
    r = await run(d, [1, 2, 3])
    assert r.status == "FAILED"
    assert r.error == "Two"


# =============================================================================== Retry

class Flaky:
    def __init__(self, failures: int, exc: type[Exception] = RuntimeError) -> None:
        self.failures = failures
        self.calls = 0
        self.exc = exc

    def __call__(self, event):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"fail {self.calls}")
        return {"calls": self.calls}


async def test_retry_interval_and_backoff():
    f = Flaky(3)
    d = single({"Type": "Task", "Resource": "f", "Retry": [
        {"ErrorEquals": ["RuntimeError"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}]})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert r.output == {"calls": 4}
    assert r.stop_time - r.start_time == pytest.approx(2 + 6 + 18, abs=0.01)


async def test_retry_defaults():
    f = Flaky(2)
    d = single({"Type": "Task", "Resource": "f", "Retry": [{"ErrorEquals": ["States.ALL"]}]})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert r.stop_time - r.start_time == pytest.approx(1 + 2, abs=0.01)


async def test_retry_max_delay_seconds():
    f = Flaky(4)
    d = single({"Type": "Task", "Resource": "f", "Retry": [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 5,
         "MaxDelaySeconds": 5}]})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert r.stop_time - r.start_time == pytest.approx(2 + 5 + 5 + 5, abs=0.01)


async def test_retry_exhausted_fails_with_last_error():
    f = Flaky(10, ValueError)
    d = single({"Type": "Task", "Resource": "f", "Retry": [
        {"ErrorEquals": ["ValueError"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}]})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "FAILED"
    assert r.error == "ValueError"
    assert f.calls == 3
    assert r.stop_time - r.start_time == pytest.approx(2, abs=0.01)


async def test_retry_max_attempts_zero_never_retries():
    f = Flaky(1)
    d = single({"Type": "Task", "Resource": "f", "Retry": [
        {"ErrorEquals": ["RuntimeError"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]})
    r = await run(d, {}, functions={"f": f})
    # The first matching retrier decides; MaxAttempts 0 means the error is not retried.
    assert r.status == "FAILED"
    assert r.error == "RuntimeError"
    assert f.calls == 1


async def test_retry_only_matching_retrier():
    f = Flaky(1, KeyError)
    d = single({"Type": "Task", "Resource": "f", "Retry": [{"ErrorEquals": ["ValueError"]}]})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "FAILED"
    assert r.error == "KeyError"
    assert f.calls == 1


async def test_retry_count_in_context():
    calls = []

    def f(event):
        calls.append(event["rc"])
        if len(calls) < 3:
            raise RuntimeError("x")
        return event

    d = single({"Type": "Task", "Resource": "f", "Parameters": {"rc.$": "$$.State.RetryCount"},
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}]})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert calls == [0, 1, 2]


async def test_retry_on_parallel():
    f = Flaky(1)
    d = single({"Type": "Parallel", "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3}],
                "Branches": [{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "End": True}}}]})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert r.output == [{"calls": 2}]
    assert r.stop_time - r.start_time == pytest.approx(3, abs=0.01)


async def test_runtime_error_not_retried():
    d = single({"Type": "Task", "Resource": "f", "Parameters": {"x.$": "$.missing"},
                "Retry": [{"ErrorEquals": ["States.ALL"]}, ]})
    calls = []
    r = await run(d, {}, functions={"f": lambda e: calls.append(e)})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert r.stop_time - r.start_time == pytest.approx(0, abs=0.01)
    assert calls == []


# =============================================================================== Catch

async def test_catch_with_result_path():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Catch": [
            {"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Handler"}], "End": True},
        "Handler": {"Type": "Pass", "End": True}})
    r = await run(d, {"in": 1}, functions={"f": Flaky(1, ValueError)})
    assert r.status == "SUCCEEDED"
    assert r.output["in"] == 1
    assert r.output["error"]["Error"] == "ValueError"
    assert "fail 1" in r.output["error"]["Cause"]


async def test_catch_default_result_path_replaces_with_error_output():
    d = machine({
        "F": {"Type": "Pass", "Next": "T"},
        "T": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {
            "X": {"Type": "Fail", "Error": "E", "Cause": "C"}}}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True}})
    r = await run(d, {"in": 1})
    assert r.output == {"Error": "E", "Cause": "C"}


async def test_catch_result_path_null_keeps_input():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Catch": [
            {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True}})
    r = await run(d, {"in": 1}, functions={"f": Flaky(1)})
    assert r.output == {"in": 1}


async def test_catch_order_first_match_wins():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Catch": [
            {"ErrorEquals": ["KeyError"], "Next": "K"},
            {"ErrorEquals": ["ValueError"], "Next": "V"},
            {"ErrorEquals": ["States.ALL"], "Next": "A"}], "End": True},
        "K": {"Type": "Pass", "Result": "K", "End": True},
        "V": {"Type": "Pass", "Result": "V", "End": True},
        "A": {"Type": "Pass", "Result": "A", "End": True}})
    assert (await run(d, {}, functions={"f": Flaky(1, ValueError)})).output == "V"
    assert (await run(d, {}, functions={"f": Flaky(1, TypeError)})).output == "A"


async def test_retry_then_catch():
    f = Flaky(10)
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True}})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert f.calls == 3
    assert r.output["Error"] == "RuntimeError"


async def test_states_task_failed_catches_custom_error():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}],
              "End": True},
        "H": {"Type": "Pass", "Result": "caught", "End": True}})
    r = await run(d, {}, functions={"f": Flaky(1)})
    assert r.output == "caught"


async def test_states_all_does_not_catch_runtime():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Parameters": {"x.$": "$.missing"},
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "Result": "caught", "End": True}})
    r = await run(d, {}, functions={"f": double})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"


async def test_runtime_not_catchable_even_when_named():
    d = machine({
        "P": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {
            "X": {"Type": "Pass", "InputPath": "$.missing", "End": True}}}],
              "Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "Result": "caught", "End": True}})
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"


async def test_fail_state_error_is_catchable_in_map():
    d = machine({
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad"}}},
              "Catch": [{"ErrorEquals": ["Bad"], "ResultPath": "$.e", "Next": "H"}], "ItemsPath": "$.l", "End": True},
        "H": {"Type": "Pass", "End": True}})
    r = await run(d, {"l": [1]})
    assert r.status == "SUCCEEDED"
    assert r.output == {"l": [1], "e": {"Error": "Bad"}}


# =============================================================================== Assign / variables

async def test_assign_then_read_in_later_state():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"x.$": "$.a", "lit": "L"}, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"x.$": "$x", "lit.$": "$lit"}, "End": True}})
    r = await run(d, {"a": {"deep": 1}})
    assert r.status == "SUCCEEDED"
    assert r.output == {"x": {"deep": 1}, "lit": "L"}


async def test_assign_uses_values_before_state():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "B"},
        "B": {"Type": "Pass", "Assign": {"x": 2, "old.$": "$x"}, "Next": "C"},
        "C": {"Type": "Pass", "Parameters": {"x.$": "$x", "old.$": "$old"}, "End": True}})
    r = await run(d, {})
    assert r.output == {"x": 2, "old": 1}


async def test_assign_in_task_sees_result():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Assign": {"r.$": "$.doubled"}, "ResultPath": None, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"r.$": "$r", "n.$": "$.n"}, "End": True}})
    r = await run(d, {"n": 5}, functions={"f": double})
    assert r.output == {"r": 10, "n": 5}


async def test_assign_in_choice_rule():
    d = machine({
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Assign": {"which": "rule"},
                                             "Next": "B"}], "Default": "B", "Assign": {"which": "default"}},
        "B": {"Type": "Pass", "Parameters": {"w.$": "$which"}, "End": True}})
    assert (await run(d, {"n": 1})).output == {"w": "rule"}
    assert (await run(d, {"n": 2})).output == {"w": "default"}


async def test_assign_in_catcher_sees_error_output():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Catch": [
            {"ErrorEquals": ["States.ALL"], "Assign": {"err.$": "$.Error"}, "ResultPath": None, "Next": "H"}],
              "End": True},
        "H": {"Type": "Pass", "Parameters": {"err.$": "$err"}, "End": True}})
    r = await run(d, {}, functions={"f": Flaky(1, KeyError)})
    assert r.output == {"err": "KeyError"}


async def test_undefined_variable_fails_runtime():
    r = await run(single({"Type": "Pass", "Parameters": {"v.$": "$nope"}}), {})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"


async def test_parallel_inner_scope_reads_outer_vars_and_does_not_leak():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"outer": "O"}, "Next": "P"},
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "B1", "States": {
                "B1": {"Type": "Pass", "Assign": {"inner": "I"}, "Next": "B2"},
                "B2": {"Type": "Pass", "Parameters": {"o.$": "$outer", "i.$": "$inner"}, "End": True}}},
        ], "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"o.$": "$outer", "res.$": "$"}, "Next": "Leak"},
        "Leak": {"Type": "Pass", "Parameters": {"i.$": "$inner"}, "End": True},
    })
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert "'Leak'" in r.cause


async def test_parallel_inner_scope_values():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"outer": "O"}, "Next": "P"},
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "B1", "States": {
                "B1": {"Type": "Pass", "Assign": {"inner": "I"}, "Next": "B2"},
                "B2": {"Type": "Pass", "Parameters": {"o.$": "$outer", "i.$": "$inner"}, "End": True}}},
        ], "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"o.$": "$outer", "res.$": "$"}, "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED"
    assert r.output == {"o": "O", "res": [{"o": "O", "i": "I"}]}


async def test_map_inner_scope_reads_outer_vars_and_does_not_leak():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"base": 100}, "Next": "M"},
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I1", "States": {
            "I1": {"Type": "Pass", "Assign": {"item.$": "$"}, "Next": "I2"},
            "I2": {"Type": "Pass", "Parameters": {"b.$": "$base", "item.$": "$item"}, "End": True}}},
              "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"res.$": "$", "b.$": "$base"}, "Next": "Leak"},
        "Leak": {"Type": "Pass", "Parameters": {"i.$": "$item"}, "End": True},
    })
    r = await run(d, [1, 2])
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert "'Leak'" in r.cause


async def test_map_iterations_have_independent_scopes():
    d = machine({
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I1", "States": {
            "I1": {"Type": "Pass", "Assign": {"item.$": "$"}, "Next": "W"},
            "W": {"Type": "Wait", "SecondsPath": "$", "Next": "I2"},
            "I2": {"Type": "Pass", "Parameters": {"item.$": "$item"}, "End": True}}},
              "End": True},
    })
    r = await run(d, [3, 1, 2])
    assert r.output == [{"item": 3}, {"item": 1}, {"item": 2}]


# =============================================================================== more semantics

async def test_retry_jitter_full_is_bounded():
    f = Flaky(3)
    d = single({"Type": "Task", "Resource": "f", "Retry": [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 3,
         "JitterStrategy": "FULL"}]})
    r = await run(d, {}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert 0 <= r.stop_time - r.start_time <= 2 + 4 + 8 + 0.01


async def test_retry_counters_reset_on_new_visit():
    calls = []

    def f(event):
        calls.append(event["round"])
        if len(calls) in (1, 2, 4, 5):  # each visit fails twice, then succeeds
            raise RuntimeError("x")
        return event["round"] + 1

    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Parameters": {"round.$": "$.round"}, "ResultPath": "$.round",
              "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 1}],
              "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.round", "NumericLessThan": 2, "Next": "T"}],
              "Default": "D"},
        "D": {"Type": "Succeed"}})
    r = await run(d, {"round": 0}, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert r.output == {"round": 2}
    assert calls == [0, 0, 0, 1, 1, 1]


async def test_result_selector_missing_path_is_runtime():
    d = single({"Type": "Task", "Resource": "f", "ResultSelector": {"x.$": "$.nope"}})
    r = await run(d, {}, functions={"f": lambda e: {"a": 1}})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert "The JSONPath '$.nope' specified for the field 'x.$' could not be found in the input '{\"a\":1}'" in r.cause


async def test_map_max_concurrency_limits_in_flight():
    for limit, expected_max in ((3, 3), (0, 40)):
        state = {"now": 0, "max": 0}

        async def f(event, state=state):
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            for _ in range(5):
                await asyncio.sleep(0)
            state["now"] -= 1
            return event

        d = single({"Type": "Map", "MaxConcurrency": limit, "ItemProcessor": {"StartAt": "P", "States": {
            "P": {"Type": "Task", "Resource": "f", "End": True}}}})
        r = await run(d, list(range(100)), functions={"f": f}, clock=express.RealClock())
        assert r.output == list(range(100))
        assert 1 < state["max"] <= expected_max


async def test_intermediate_state_output_over_256k_fails():
    big = "x" * (200 * 1024)
    d = machine({
        "Grow": {"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}, "Next": "Shrink"},
        "Shrink": {"Type": "Pass", "Result": "small", "End": True}})
    r = await run(d, {"s": big})
    # AWS checks every state's output against the 256 KiB limit, not just the execution's.
    assert r.status == "FAILED"
    assert r.error == "States.DataLimitExceeded"


async def test_parallel_branch_failure_cancels_siblings():
    reached = []

    def record(event):
        reached.append(event)
        return event

    d = single({"Type": "Parallel", "Branches": [
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Early"}}},
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100, "Next": "T"},
                                    "T": {"Type": "Task", "Resource": "f", "End": True}}},
    ]})
    r = await run(d, {}, functions={"f": record})
    assert r.error == "Early"
    assert reached == []
    assert r.stop_time - r.start_time < 100


async def test_map_legacy_parameters_and_item_selector_conflict_rejected():
    with pytest.raises(express.DefinitionError):
        express.Engine().compile(single({
            "Type": "Map", "ItemSelector": {"a": 1}, "Parameters": {"b": 2},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}}))


async def test_wait_input_output_path_and_assign():
    d = machine({"W": {"Type": "Wait", "Seconds": 1, "InputPath": "$.in", "OutputPath": "$.x",
                       "Assign": {"seen.$": "$.x"}, "Next": "P"},
                 "P": {"Type": "Pass", "Parameters": {"out.$": "$", "seen.$": "$seen"}, "End": True}})
    r = await run(d, {"in": {"x": 5}})
    assert r.output == {"out": 5, "seen": 5}


async def test_pass_result_is_literal_even_with_dollar_keys():
    r = await run(single({"Type": "Pass", "Result": {"a.$": "$.x", "b": "$.x"}}), {"x": 1})
    assert r.output == {"a.$": "$.x", "b": "$.x"}


async def test_catch_result_path_merges_into_raw_input_not_input_path():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "InputPath": "$.sub",
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "End": True}})
    r = await run(d, {"sub": {"q": 1}, "top": 2}, functions={"f": Flaky(1, KeyError)})
    assert r.output["sub"] == {"q": 1}
    assert r.output["top"] == 2
    assert r.output["err"]["Error"] == "KeyError"


async def test_map_item_selector_sees_input_path_filtered_input():
    d = single({"Type": "Map", "InputPath": "$.in", "ItemsPath": "$.l",
                "ItemSelector": {"tag.$": "$.tag", "v.$": "$$.Map.Item.Value"},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}})
    r = await run(d, {"in": {"l": [1, 2], "tag": "t"}})
    assert r.output == [{"tag": "t", "v": 1}, {"tag": "t", "v": 2}]


# --------------------------------------------------------------------------- AWS-exact Pass and Map paths


async def test_pass_with_result_and_parameters_outputs_result():
    # Result is the output of the Pass state's "virtual task"; Parameters only shapes its input
    d = single({"Type": "Pass", "Parameters": {"fromInput.$": "$.a", "static": 1},
                "Result": {"resultKey": "result value"}, "ResultPath": "$.modified"})
    r = await run(d, {"a": "x"})
    assert r.output == {"a": "x", "modified": {"resultKey": "result value"}}


async def test_pass_with_parameters_only_still_uses_parameters():
    r = await run(single({"Type": "Pass", "Parameters": {"b.$": "$.a"}}), {"a": 1})
    assert r.output == {"b": 1}


def _map_with(**fields):
    return single({"Type": "Map", "ItemsPath": "$.items", **fields,
                   "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}})


@pytest.mark.parametrize("fields, inp", [
    ({"MaxConcurrencyPath": "$.mc"}, {"mc": "2"}),
    ({"ToleratedFailureCountPath": "$.n"}, {"n": "1"}),
    ({"ToleratedFailurePercentagePath": "$.p"}, {"p": "12.5"}),
    ({"ToleratedFailurePercentagePath": "$.p"}, {"p": "1"}),
])
async def test_map_path_fields_accept_numbers_written_as_strings(fields, inp):
    r = await run(_map_with(**fields), {"items": [1, 2, 3], **inp})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [1, 2, 3]


async def test_map_path_field_with_a_non_numeric_string_still_fails():
    r = await run(_map_with(MaxConcurrencyPath="$.mc"), {"items": [1], "mc": "two"})
    assert r.status == "FAILED" and r.error == "States.Runtime"
    assert 'The MaxConcurrencyPath field refers to value "two" which is not a valid integer: $.mc' in r.cause
    r = await run(_map_with(ToleratedFailureCountPath="$.n"), {"items": [1], "n": "1.5"})
    assert r.status == "FAILED" and "which is not a valid integer" in r.cause


async def test_map_max_concurrency_path_reads_a_variable_holding_a_string():
    d = machine({
        "Init": {"Type": "Pass", "Assign": {"mc": "1"}, "Next": "M"},
        "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$mc", "End": True,
              "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}},
    })
    r = await run(d, {"items": ["a", "b"]})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == ["a", "b"]


async def test_map_with_item_reader_compiles_and_fails_at_run_time():
    # AWS accepts a Distributed Map with an ItemReader; an engine without integrations cannot read
    # S3, so running it fails with the error AWS uses for a reader that cannot read (catchable)
    d = machine({
        "M": {"Type": "Map", "Next": "Done",
              "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                             "ReaderConfig": {"InputType": "JSON"},
                             "Parameters": {"Bucket": "b", "Key": "k"}},
              "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                                "StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
              "Catch": [{"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Caught"}]},
        "Done": {"Type": "Succeed"},
        "Caught": {"Type": "Pass", "End": True},
    })
    r = await run(d, {}, integrations=False)
    assert r.status == "SUCCEEDED"
    assert r.output["Error"] == "States.ItemReaderFailed"
    assert "arn:aws:states:::s3:getObject" in r.output["Cause"]
