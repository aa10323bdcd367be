"""The context object (``$$`` / ``$states.context``) of an Express execution, as AWS shows it."""
from __future__ import annotations

import re

import express
from tests.support import machine, run, single

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def context_of(state: dict) -> dict:
    """A one-state machine whose output is ``$$`` as the state sees it."""
    return single({**state, "Parameters": {"ctx.$": "$$"}})


async def test_express_execution_id_is_awss_express_arn():
    m = express.Engine(clock=express.VirtualClock()).compile(context_of({"Type": "Pass"}), name="orders")
    r = await m.execute({}, name="run-1")
    ex = r.output["ctx"]["Execution"]
    # arn:aws:states:REGION:ACCOUNT:express:MACHINE:NAME:UUID
    assert re.fullmatch(rf"arn:aws:states:us-east-1:000000000000:express:orders:run-1:{UUID}", ex["Id"])
    assert ex["Name"] == "run-1"
    assert r.output["ctx"]["StateMachine"] == {
        "Id": "arn:aws:states:us-east-1:000000000000:stateMachine:orders", "Name": "orders"}


async def test_execution_id_is_the_same_for_every_state_and_new_for_each_execution():
    d = machine({"A": {"Type": "Pass", "Parameters": {"a.$": "$$.Execution.Id"}, "Next": "B"},
                 "B": {"Type": "Pass", "Parameters": {"a.$": "$.a", "b.$": "$$.Execution.Id"}, "End": True}})
    m = express.Engine(clock=express.VirtualClock()).compile(d)
    one, two = await m.execute({}), await m.execute({})
    assert one.output["a"] == one.output["b"]
    assert one.output["a"] != two.output["a"]


async def test_a_given_execution_arn_is_kept():
    m = express.Engine(clock=express.VirtualClock()).compile(context_of({"Type": "Pass"}))
    r = await m.execute({}, name="n", arn="arn:aws:states:us-east-1:1:express:machine:n:fixed")
    assert r.output["ctx"]["Execution"]["Id"] == "arn:aws:states:us-east-1:1:express:machine:n:fixed"


async def test_synchronous_execution_has_no_redrive_count():
    # StartSyncExecution (and the Python API's execute): Express executions are never redriven
    r = await run(context_of({"Type": "Pass"}), {})
    assert "RedriveCount" not in r.output["ctx"]["Execution"]
    assert set(r.output["ctx"]["Execution"]) == {"Id", "Input", "Name", "RoleArn", "StartTime"}


async def test_asynchronous_execution_shows_redrive_count_zero():
    # StartExecution of an Express machine: AWS's $$.Execution carries RedriveCount 0
    m = express.Engine(clock=express.VirtualClock()).compile(context_of({"Type": "Pass"}))
    r = await m.execute({}, mode="async")
    assert r.output["ctx"]["Execution"]["RedriveCount"] == 0


def echo(event):
    return event


async def test_retry_count_only_in_states_that_can_retry():
    states = {
        "Pass": {"Type": "Pass", "Parameters": {"s.$": "$$.State"}, "ResultPath": "$.pass", "Next": "Task"},
        "Task": {"Type": "Task", "Resource": "echo", "Parameters": {"s.$": "$$.State"}, "ResultPath": "$.task",
                 "Next": "Par"},
        "Par": {"Type": "Parallel", "Parameters": {"s.$": "$$.State"}, "ResultSelector": {"s.$": "$[0].s"},
                "ResultPath": "$.par", "Next": "Map",
                "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}]},
        "Map": {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"s.$": "$$.State"},
                "ResultSelector": {"s.$": "$[0].s"}, "ResultPath": "$.map", "Next": "Wait",
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}},
        "Wait": {"Type": "Wait", "Seconds": 0, "Next": "Choice"},
        "Choice": {"Type": "Choice", "Choices": [{"Variable": "$$.State.Name", "StringEquals": "Choice",
                                                  "Next": "Done"}]},
        "Done": {"Type": "Pass", "Parameters": {"s.$": "$$.State", "rest.$": "$"}, "End": True},
    }
    r = await run(machine(states), {"items": [1]}, functions={"echo": echo})
    assert r.status == "SUCCEEDED", r.cause
    out = r.output["rest"]
    assert set(out["pass"]["s"]) == {"EnteredTime", "Name"}
    assert out["task"]["s"]["RetryCount"] == 0
    assert out["par"]["s"]["RetryCount"] == 0
    assert out["map"]["s"]["RetryCount"] == 0 and out["map"]["s"]["Name"] == "Map"
    assert set(r.output["s"]) == {"EnteredTime", "Name"}


async def test_jsonata_states_context_follows_the_same_rules():
    d = machine({"P": {"Type": "Pass", "Output": "{% $states.context %}", "End": True}}, QueryLanguage="JSONata")
    r = await run(d, {"k": 1})
    assert "RetryCount" not in r.output["State"]
    assert "RedriveCount" not in r.output["Execution"]
    assert r.output["Execution"]["Input"] == {"k": 1}
