"""The public Engine/Machine API."""
from __future__ import annotations

import asyncio
import copy
import json
import re

import pytest

import express
from tests.support import machine, run, single

SIMPLE = machine({
    "A": {"Type": "Pass", "Parameters": {"v.$": "$.v", "k": "const"}, "ResultPath": "$.p", "Next": "B"},
    "B": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericGreaterThan": 0, "Next": "Pos"}],
          "Default": "Neg"},
    "Pos": {"Type": "Pass", "Result": "pos", "ResultPath": "$.sign", "End": True},
    "Neg": {"Type": "Pass", "Result": "neg", "ResultPath": "$.sign", "End": True},
})


async def test_compile_from_json_text():
    m = express.Engine().compile(json.dumps(SIMPLE))
    r = await m.execute({"v": 3})
    assert r.status == "SUCCEEDED"
    assert r.output == {"v": 3, "p": {"v": 3, "k": "const"}, "sign": "pos"}
    assert r.error is None and r.cause is None


async def test_compile_from_json_bytes():
    m = express.Engine().compile(json.dumps(SIMPLE).encode())
    r = await m.execute({"v": -1})
    assert r.output["sign"] == "neg"


def test_invalid_json_text():
    with pytest.raises(express.DefinitionError) as ei:
        express.Engine().compile('{"StartAt": ')
    assert ei.value.problems
    assert all(isinstance(p, express.Problem) for p in ei.value.problems)


def test_definition_error_is_value_error():
    with pytest.raises(ValueError):
        express.Engine().compile({})


@pytest.mark.parametrize(("definition", "pointer"), [
    ({"States": {"A": {"Type": "Succeed"}}}, ""),  # missing StartAt
    ({"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}}, "/StartAt"),
    (machine({"A": {"Type": "Pass", "Next": "Missing"}, "B": {"Type": "Succeed"}}), "/States/A/Next"),
    (machine({"A": {"Type": "Bogus", "End": True}}), "/States/A"),
    (machine({"A": {"Type": "Pass", "End": True, "InputPath": 5}}), "/States/A"),
    (machine({"A": {"Type": "Pass", "End": True, "ResultPath": "$$.x"}}), "/States/A"),
    (machine({"A": {"Type": "Pass", "End": True, "Parameters": {"x.$": "not a path"}}}), "/States/A"),
    (machine({"A": {"Type": "Wait", "End": True}}), "/States/A"),
    (machine({"A": {"Type": "Choice", "Choices": []}}), "/States/A"),
    (machine({"A": {"Type": "Parallel", "End": True, "Branches": [{"StartAt": "X", "States": {}}]}}),
     "/States/A/Branches/0"),
    (machine({"A": {"Type": "Map", "End": True, "ItemProcessor": {"StartAt": "Y", "States": {
        "Y": {"Type": "Pass", "Next": "Z"}}}}}), "/States/A/ItemProcessor"),
    (machine({"A": {"Type": "Task", "Resource": "f", "End": True,
                    "Retry": [{"ErrorEquals": ["States.ALL", "X"]}]}}), "/States/A/Retry"),
])
def test_definition_errors_have_pointers(definition, pointer):
    with pytest.raises(express.DefinitionError) as ei:
        express.Engine(functions={"f": lambda e: e}).compile(definition)
    problems = ei.value.problems
    assert problems
    for p in problems:
        assert isinstance(p.pointer, str) and isinstance(p.code, str) and p.message
    assert any(p.pointer.startswith(pointer) for p in problems), problems
    assert str(ei.value)  # readable message


def test_definition_error_lists_every_problem():
    d = machine({"A": {"Type": "Pass", "Next": "Missing1"}, "B": {"Type": "Bogus"},
                 "C": {"Type": "Wait", "Seconds": -5, "End": True}})
    with pytest.raises(express.DefinitionError) as ei:
        express.Engine().compile(d)
    pointers = {p.pointer for p in ei.value.problems}
    assert any(p.startswith("/States/A") for p in pointers)
    assert any(p.startswith("/States/B") for p in pointers)
    assert any(p.startswith("/States/C") for p in pointers)


@pytest.mark.parametrize("definition", [None, [], "null", "[]", 5, {"StartAt": 1, "States": []}])
def test_garbage_definitions_raise_definition_error(definition):
    with pytest.raises(express.DefinitionError):
        express.Engine().compile(definition)


async def test_input_over_256k_fails_data_limit():
    m = express.Engine().compile(single({"Type": "Pass"}))
    r = await m.execute({"big": "x" * (256 * 1024)})
    assert r.status == "FAILED"
    assert r.error == "States.DataLimitExceeded"
    assert r.output is None


async def test_output_over_256k_fails_data_limit():
    d = single({"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}})
    r = await run(d, {"s": "x" * (150 * 1024)})
    assert r.status == "FAILED"
    assert r.error == "States.DataLimitExceeded"


async def test_many_concurrent_executions_are_independent():
    async def work(event):
        await asyncio.sleep(0)
        return event["i"] * 2

    d = machine({
        "W": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "T"},
        "T": {"Type": "Task", "Resource": "f", "ResultPath": "$.doubled", "Next": "A"},
        "A": {"Type": "Pass", "Assign": {"mine.$": "$.i"}, "Next": "M"},
        "M": {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"x.$": "$$.Map.Item.Value", "i.$": "$mine"},
              "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
              "ResultPath": "$.mapped", "Next": "Out"},
        "Out": {"Type": "Pass", "Parameters": {"i.$": "$mine", "d.$": "$.doubled", "m.$": "$.mapped",
                                                "name.$": "$$.Execution.Name"}, "End": True},
    })
    engine = express.Engine(functions={"f": work}, clock=express.VirtualClock())
    m = engine.compile(d)
    n = 300
    results = await asyncio.gather(*(
        m.execute({"i": i, "wait": (n - i) % 7, "items": list(range(i % 4))}, name=f"ex-{i}") for i in range(n)))
    for i, r in enumerate(results):
        assert r.status == "SUCCEEDED", r
        assert r.name == f"ex-{i}"
        assert r.output == {"i": i, "d": i * 2, "m": [{"x": x, "i": i} for x in range(i % 4)], "name": f"ex-{i}"}


async def test_execution_does_not_mutate_caller_input():
    d = machine({
        "A": {"Type": "Pass", "Result": {"r": 1}, "ResultPath": "$.a.b", "Next": "B"},
        "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.list[0]", "Next": "C"},
        "C": {"Type": "Task", "Resource": "f", "ResultPath": "$.t", "Next": "D"},
        "D": {"Type": "Map", "ItemsPath": "$.list", "ResultPath": "$.list",
              "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Result": 0, "End": True}}},
              "End": True},
    })

    def f(event):
        event["a"]["b"]["r"] = "mutated"
        return "t"

    data = {"a": {"b": {"old": True}, "keep": [1, 2]}, "list": [1, 2, 3]}
    snap = copy.deepcopy(data)
    r = await run(d, data, functions={"f": f})
    assert r.status == "SUCCEEDED"
    assert r.output == {"a": {"b": {"r": 1}, "keep": [1, 2]}, "list": [0, 0, 0], "t": "t"}
    assert data == snap


@pytest.mark.parametrize("resource", [
    "arn:aws:states:::lambda:invoke.waitForTaskToken",
    "arn:aws:states:::states:startExecution.sync",
    "arn:aws:states:::states:startExecution.sync:2",
    "arn:aws:states:::ecs:runTask.sync",
    "arn:aws:states:us-east-1:123456789012:activity:myActivity",
])
def test_unsupported_integration_patterns_rejected(resource):
    with pytest.raises(express.DefinitionError) as ei:
        express.Engine(functions={resource: lambda e: e}).compile(single({"Type": "Task", "Resource": resource}))
    problems = ei.value.problems
    assert any(p.pointer == "/States/S/Resource" for p in problems), problems
    msg = " ".join(p.message for p in problems).lower()
    assert "express" in msg
    assert ("activit" in msg) if ":activity:" in resource else (".sync" in msg or "waitfortasktoken" in msg)


def test_unsupported_resource_nested_in_map_rejected():
    d = single({"Type": "Map", "ItemProcessor": {"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": True}}}})
    with pytest.raises(express.DefinitionError) as ei:
        express.Engine().compile(d)
    assert any(p.pointer.startswith("/States/S/ItemProcessor/States/T") for p in ei.value.problems)


async def test_default_input_and_result_fields():
    m = express.Engine(clock=express.VirtualClock()).compile(single({"Type": "Pass"}))
    r = await m.execute()
    assert r.output == {}
    assert r.status == "SUCCEEDED"
    assert isinstance(r.name, str) and r.name
    assert r.stop_time >= r.start_time
    assert r.duration_s == r.stop_time - r.start_time


async def test_execution_names_unique_by_default():
    m = express.Engine().compile(single({"Type": "Pass"}))
    names = {(await m.execute({})).name for _ in range(5)}
    assert len(names) == 5


async def test_context_execution_fields():
    d = single({"Type": "Pass", "Parameters": {"name.$": "$$.Execution.Name", "id.$": "$$.Execution.Id",
                                               "input.$": "$$.Execution.Input", "sm.$": "$$.StateMachine.Name",
                                               "state.$": "$$.State.Name"}})
    m = express.Engine().compile(d, name="my-machine")
    r = await m.execute({"q": 1}, name="run-1")
    assert r.output["name"] == "run-1"
    # AWS's Express execution ARN: ...:express:MACHINE:NAME:UUID
    assert re.fullmatch(r"arn:aws:states:us-east-1:000000000000:express:my-machine:run-1:[0-9a-f-]{36}",
                        r.output["id"])
    assert r.output["input"] == {"q": 1}
    assert r.output["sm"] == "my-machine"
    assert r.output["state"] == "S"


async def test_machine_reusable_after_failure():
    m = express.Engine().compile(single({"Type": "Pass", "InputPath": "$.a"}))
    assert (await m.execute({})).status == "FAILED"
    assert (await m.execute({"a": 1})).output == 1


async def test_execute_never_raises_on_non_json_input():
    m = express.Engine().compile(single({"Type": "Pass"}))
    r = await m.execute({"s": {1, 2}})
    assert r.status in ("SUCCEEDED", "FAILED", "TIMED_OUT")


# ---------------------------------------------------------------------- TIMED_OUT, both caps
SPIN_LOOP = machine({
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": -1, "Next": "D"}], "Default": "P"},
    "P": {"Type": "Pass", "Next": "C"},
    "D": {"Type": "Succeed"}})


@pytest.mark.parametrize("definition", [SPIN_LOOP, single({"Type": "Wait", "Seconds": 60})], ids=["spin", "wait"])
async def test_timed_out_by_the_express_cap(definition):
    m = express.Engine(clock=express.RealClock(), max_duration_s=0.3).compile(definition)
    r = await m.execute({"x": 1})
    assert (r.status, r.output) == ("TIMED_OUT", None)
    assert r.error == "States.Timeout"
    assert r.cause == "The execution exceeded its maximum duration of 0.3 seconds."


@pytest.mark.parametrize("definition", [SPIN_LOOP, single({"Type": "Wait", "Seconds": 60})], ids=["spin", "wait"])
async def test_timed_out_by_the_machines_timeout_seconds(definition):
    # As AWS records it (DescribeExecution after TimeoutSeconds, LocalStack's AWS-validated
    # test_global_timeout in ../shared/conformance/cases.jsonl): TIMED_OUT with neither error nor
    # cause; States.Timeout is only in the ExecutionTimedOut history event.
    m = express.Engine(clock=express.RealClock(), max_duration_s=60).compile({**definition, "TimeoutSeconds": 1})
    r = await m.execute({"x": 1})
    assert (r.status, r.output, r.error, r.cause) == ("TIMED_OUT", None, None, None)


async def test_the_tighter_of_the_two_caps_applies():
    m = express.Engine(clock=express.RealClock(), max_duration_s=0.3).compile({**SPIN_LOOP, "TimeoutSeconds": 60})
    r = await m.execute({"x": 1})
    assert (r.status, r.error) == ("TIMED_OUT", "States.Timeout")  # the Express cap, not TimeoutSeconds
