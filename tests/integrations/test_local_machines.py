"""states:startExecution and states:startSyncExecution: other machines of this server, run by the same
engine (express.integrations.local_machines), found through the service's registry."""
from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
import pytest

from express import Engine, VirtualClock
from express.asl.timestamps import parse_timestamp
from express.integrations import Integrations
from express.integrations.local_machines import StartedExecutions, drain, started
from express.serve.registry import Registry

START = "arn:aws:states:::states:startExecution"
START_SYNC = "arn:aws:states:::states:startSyncExecution"
PREFIX = "arn:aws:states:us-east-1:000000000000:stateMachine:"
CHILD = {"StartAt": "Double", "States": {"Double": {
    "Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, $.n)", "by.$": "$$.Execution.Name"}, "End": True}}}
FAILING = {"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Child.Failed", "Cause": "by design"}}}
WAITING = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}


def task(resource: str, parameters: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": resource, "Parameters": parameters, "End": True, **more}}}


def registry(functions: dict[str, Any] | None = None, **children: dict[str, Any]) -> Registry:
    """A registry of the given machines on a virtual clock; its engine's integrations run them."""
    reg = Registry(Engine(functions, clock=VirtualClock(), integrations=Integrations()))
    for name, definition in children.items():
        reg.put(name, orjson.dumps(definition).decode())
    return reg


async def run(reg: Registry, definition: dict[str, Any], input: Any = None) -> Any:
    return await reg.engine.compile(definition, "parent").execute({} if input is None else input)


async def test_start_sync_execution_answers_as_the_api_does() -> None:
    reg = registry(child=CHILD)
    result = await run(reg, task(START_SYNC, {"StateMachineArn": PREFIX + "child", "Input": {"n": 21},
                                              "Name": "job-1"}))
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert list(out) == ["ExecutionArn", "StateMachineArn", "Name", "StartDate", "StopDate", "Status", "Output",
                         "Input", "InputDetails", "OutputDetails", "BillingDetails"]
    assert re.fullmatch(r"arn:aws:states:us-east-1:000000000000:express:child:job-1:[0-9a-f-]{36}",
                        out["ExecutionArn"])
    assert (out["StateMachineArn"], out["Name"], out["Status"]) == (PREFIX + "child", "job-1", "SUCCEEDED")
    assert orjson.loads(out["Output"]) == {"n": 42, "by": "job-1"}
    assert orjson.loads(out["Input"]) == {"n": 21}
    assert parse_timestamp(out["StartDate"]) is not None and parse_timestamp(out["StopDate"]) is not None
    assert out["InputDetails"] == out["OutputDetails"] == {"Included": True}
    assert out["BillingDetails"] == {"BilledMemoryUsedInMB": 64, "BilledDurationInMilliseconds": 100}


async def test_input_may_be_json_text_or_absent() -> None:
    reg = registry(child=CHILD, echo={"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    text = await run(reg, task(START_SYNC, {"StateMachineArn": PREFIX + "child", "Input": '{"n": 2}'}))
    assert orjson.loads(text.output["Output"])["n"] == 4
    assert text.output["Input"] == '{"n": 2}'
    absent = await run(reg, task(START_SYNC, {"StateMachineArn": PREFIX + "echo"}))
    assert (absent.output["Input"], absent.output["Output"]) == ("{}", "{}")
    named = await run(reg, task(START_SYNC, {"StateMachineArn": PREFIX + "echo"}))
    assert re.fullmatch(r"[0-9a-f-]{36}", named.output["Name"])  # a UUID when no Name is given


async def test_a_child_that_fails_is_reported_not_raised() -> None:
    reg = registry(failing=FAILING)
    definition = {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": START_SYNC, "Parameters": {"StateMachineArn": PREFIX + "failing"},
                 "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.Status", "StringEquals": "FAILED", "Next": "Bad"}],
                  "Default": "Good"},
        "Bad": {"Type": "Pass", "Parameters": {"error.$": "$.Error", "cause.$": "$.Cause"}, "End": True},
        "Good": {"Type": "Succeed"}}}
    result = await run(reg, definition)
    assert result.output == {"error": "Child.Failed", "cause": "by design"}


@pytest.mark.parametrize(("parameters", "error", "cause"), [
    ({"StateMachineArn": PREFIX + "nobody"}, "StepFunctions.StateMachineDoesNotExistException",
     f"State Machine Does Not Exist: '{PREFIX}nobody' (Service: AWSStepFunctions; Status Code: 400; "
     "Error Code: StateMachineDoesNotExist; Request ID: "),
    ({"StateMachineArn": "arn:aws:states:eu-west-1:000000000000:stateMachine:child"},
     "StepFunctions.StateMachineDoesNotExistException", "State Machine Does Not Exist"),
    ({"StateMachineArn": PREFIX + "child:1"}, "StepFunctions.StateMachineDoesNotExistException",
     "State Machine Does Not Exist"),  # versions are not kept
    ({"StateMachineArn": "child"}, "StepFunctions.InvalidArnException", "Invalid Arn: 'child'"),
    ({"StateMachineArn": PREFIX + "child", "Name": "a b"}, "StepFunctions.InvalidNameException",
     "Invalid Name: 'a b'"),
    ({"StateMachineArn": PREFIX + "child", "Input": "{not json"}, "StepFunctions.InvalidExecutionInputException",
     "Invalid State Machine Execution Input: "),
    ({"Input": {}}, "States.TaskFailed", "The field 'StateMachineArn' is required and must be a string"),
])
@pytest.mark.parametrize("resource", [START, START_SYNC])
async def test_refused_starts_are_the_service_errors(resource: str, parameters: dict[str, Any], error: str,
                                                     cause: str) -> None:
    reg = registry(child=CHILD)
    result = await run(reg, task(resource, parameters))
    assert (result.status, result.error) == ("FAILED", error)
    assert cause in (result.cause or "")
    assert len(started(reg.engine.integrations)) == 0  # type: ignore[arg-type]


async def test_an_input_over_the_childs_payload_limit_is_refused() -> None:
    # with one engine the parent's own limit refuses such parameters first; a child of a stricter engine
    small = Engine(clock=VirtualClock(), max_payload_bytes=1_000).compile(CHILD, "child")
    engine = Engine(clock=VirtualClock(), integrations=Integrations(machines={small.arn: small}))
    result = await engine.compile(task(START_SYNC, {"StateMachineArn": small.arn,
                                                    "Input": {"s": "x" * 1_100}})).execute({})
    assert (result.status, result.error) == ("FAILED", "StepFunctions.ValidationException")
    assert "Member must have length less than or equal to 1000" in (result.cause or "")


async def test_the_task_timeout_stops_a_sync_child() -> None:
    reg = registry(waiting=WAITING)
    result = await run(reg, task(START_SYNC, {"StateMachineArn": PREFIX + "waiting"}, TimeoutSeconds=5))
    assert (result.status, result.error) == ("FAILED", "States.Timeout")
    caught = await run(reg, {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": START_SYNC, "Parameters": {"StateMachineArn": PREFIX + "waiting"},
                 "TimeoutSeconds": 5, "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Late"}], "End": True},
        "Late": {"Type": "Pass", "Result": "late", "End": True}}})
    assert caught.output == "late"


async def test_the_parents_deadline_bounds_a_sync_child() -> None:
    reg = registry(waiting=WAITING)
    definition = task(START_SYNC, {"StateMachineArn": PREFIX + "waiting"})
    definition["TimeoutSeconds"] = 10
    result = await run(reg, definition)
    assert result.status == "TIMED_OUT"


async def test_start_execution_answers_at_once_and_the_child_is_awaited_on_shutdown() -> None:
    release = asyncio.Event()
    seen: list[Any] = []

    async def gate(event: Any) -> Any:
        await release.wait()
        seen.append(event)
        return event

    reg = registry({"gate": gate}, gated={"StartAt": "G", "States": {"G": {
        "Type": "Task", "Resource": "gate", "End": True}}})
    result = await run(reg, task(START, {"StateMachineArn": PREFIX + "gated", "Input": {"id": 7}, "Name": "bg"}))
    assert result.status == "SUCCEEDED", result.cause
    out = result.output
    assert list(out) == ["ExecutionArn", "SdkHttpMetadata", "SdkResponseMetadata", "StartDate"]
    assert re.fullmatch(r"arn:aws:states:us-east-1:000000000000:express:gated:bg:[0-9a-f-]{36}", out["ExecutionArn"])
    assert parse_timestamp(out["StartDate"]) is not None
    assert out["SdkHttpMetadata"]["HttpStatusCode"] == 200
    assert out["SdkResponseMetadata"]["RequestId"] == out["SdkHttpMetadata"]["HttpHeaders"]["x-amzn-RequestId"]
    integrations = reg.engine.integrations
    assert isinstance(integrations, Integrations)
    assert len(started(integrations)) == 1 and seen == []  # still running, owned by the integrations
    closing = asyncio.ensure_future(drain(integrations))
    await asyncio.sleep(0)
    assert not closing.done()  # the shutdown waits for it
    release.set()
    await closing
    assert seen == [{"id": 7}]
    assert len(started(integrations)) == 0
    refused = await run(reg, task(START, {"StateMachineArn": PREFIX + "gated"}))
    assert refused.error == "StepFunctions.ExecutionLimitExceededException"
    assert "stopping" in (refused.cause or "")
    await integrations.aclose()


async def test_shutdown_waits_for_what_started_executions_start() -> None:
    finished: list[str] = []
    reg = registry({"note": lambda e: finished.append(e["who"]) or e},
                   grandchild={"StartAt": "W", "States": {
                       "W": {"Type": "Wait", "Seconds": 30, "Next": "N"},
                       "N": {"Type": "Task", "Resource": "note", "Parameters": {"who": "grandchild"}, "End": True}}},
                   child={"StartAt": "S", "States": {"S": {
                       "Type": "Task", "Resource": START, "Parameters": {"StateMachineArn": PREFIX + "grandchild"},
                       "End": True}}})
    assert (await run(reg, task(START, {"StateMachineArn": PREFIX + "child"}))).status == "SUCCEEDED"
    integrations = reg.engine.integrations
    assert isinstance(integrations, Integrations)
    await drain(integrations)
    assert finished == ["grandchild"]


async def test_started_executions_are_bounded() -> None:
    reg = registry(waiting=WAITING)
    machine = reg.get("waiting")
    assert machine is not None
    pool = StartedExecutions(limit=1)
    pool.spawn(machine, machine.execute({}))
    with pytest.raises(Exception, match="maximum number of running executions \\(1\\)") as e:
        pool.spawn(machine, machine.execute({}))
    assert getattr(e.value, "error", None) == "StepFunctions.ExecutionLimitExceededException"
    await pool.aclose()  # the virtual clock lets the 60 s Wait pass at once
    assert len(pool) == 0


async def test_machines_may_be_a_mapping_of_arns() -> None:
    engine = Engine(clock=VirtualClock(), integrations=Integrations())
    child = engine.compile(CHILD, "child")
    engine.integrations.machines = {child.arn: child}  # type: ignore[union-attr]
    result = await engine.compile(task(START_SYNC, {"StateMachineArn": child.arn, "Input": {"n": 1}})).execute({})
    assert orjson.loads(result.output["Output"])["n"] == 2


async def test_a_machine_unknown_here_is_looked_for_in_the_store_first() -> None:
    engine = Engine(clock=VirtualClock(), integrations=Integrations())
    child = engine.compile(CHILD, "child")

    class Following:
        """Stands in for a registry whose follower has not applied the store's latest change yet."""

        def __init__(self) -> None:
            self.known: dict[str, Any] = {}

        def machine(self, arn: str) -> Any:
            return self.known.get(arn)

        async def catch_up(self) -> bool:
            self.known[child.arn] = child
            return True

    engine.integrations.machines = Following()  # type: ignore[union-attr]
    result = await engine.compile(task(START_SYNC, {"StateMachineArn": child.arn, "Input": {"n": 1}})).execute({})
    assert result.output["Status"] == "SUCCEEDED"


def test_a_registry_gives_an_engine_without_machines_its_own() -> None:
    integrations = Integrations()
    reg = Registry(Engine(integrations=integrations))
    assert integrations.machines is reg
    reg.put("child", orjson.dumps(CHILD).decode())
    assert reg.machine(PREFIX + "child") is reg.get("child")
    assert reg.machine(PREFIX + "child:1") is None
    assert reg.machine("arn:aws:states:us-west-2:000000000000:stateMachine:child") is None
    mine = Integrations(machines={})
    Registry(Engine(integrations=mine))
    assert mine.machines == {}  # one given by the caller is kept
