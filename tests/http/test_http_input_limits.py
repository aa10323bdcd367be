"""What the HTTP API refuses as input (express.asl.limits), through boto3 and aiohttp against the real
server: input nested deeper than can be written, integers orjson would turn into floats, and
definitions nested deeper than Python's parser reads. Never a 5xx."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError
from httpsupport import ServerThread, arn, running, sfn_fixture  # noqa: F401 - fixtures

from express.asl.limits import MAX_DEPTH
from express.serve.registry import Registry

ECHO = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
# the result {"x": {"y": input}} written two levels down: the output nests 4 levels more than the input
DEEPER = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"x": {"y.$": "$"}},
                                           "ResultPath": "$.a.b", "End": True}}}
BIG = "123456789012345678901234567890"


def nest(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = {"a": v}
    return v


def deep_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


class LimitsServer(ServerThread):
    def build_registry(self) -> Registry:
        registry = super().build_registry()
        registry.put("echo", json.dumps(ECHO))
        registry.put("deeper", json.dumps(DEEPER))
        return registry


@pytest.fixture(name="server")
def server_fixture() -> Iterator[ServerThread]:
    with running(LimitsServer()) as s:
        yield s


def refused(call: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**kw)
    error = info.value.response["Error"]
    assert (info.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"]) == (400, "InvalidExecutionInput")
    return str(error["Message"])


# ---------------------------------------------------------------------- nesting


@pytest.mark.parametrize("named", [False, True])
@pytest.mark.parametrize("op", ["start_sync_execution", "start_execution"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 1024])
def test_input_nested_too_deeply_is_invalid_execution_input(sfn: Any, op: str, named: bool, depth: int) -> None:
    """The bug: 255-1,024 levels were parsed, then named calls answered 500 (the name table could
    not digest the input) and unnamed ones ended FAILED "Internal error ... Recursion limit"."""
    kw = {"name": f"deep-{depth}"} if named else {}
    message = refused(getattr(sfn, op), stateMachineArn=arn("echo"), input=deep_text(depth), **kw)
    assert message.startswith("Invalid State Machine Execution Input: 'the input nests arrays and objects "
                              "more than 253 levels deep: the value at /a/a/a/")
    assert message.endswith("is at depth 254, and the limit is 253'")


def test_input_deeper_than_the_parser_reads_names_the_limit(sfn: Any) -> None:
    message = refused(sfn.start_sync_execution, stateMachineArn=arn("echo"), input="[" * 1100 + "]" * 1100)
    assert message == ("Invalid State Machine Execution Input: 'the input nests arrays and objects more than "
                       "1024 levels deep (from character 1025), and the limit is 253'")


@pytest.mark.parametrize("named", [False, True])
def test_input_at_the_limit_runs(sfn: Any, named: bool) -> None:
    kw = {"name": "at-the-limit"} if named else {}
    r = sfn.start_sync_execution(stateMachineArn=arn("echo"), input=deep_text(MAX_DEPTH), **kw)
    assert r["status"] == "SUCCEEDED"
    assert json.loads(r["output"]) == nest(MAX_DEPTH)


def test_a_state_that_builds_too_deep_an_output_fails_as_an_asl_error(sfn: Any) -> None:
    """The bug: the output (input + 4 levels) could not be written: HTTP 500 InternalFailure."""
    ok = sfn.start_sync_execution(stateMachineArn=arn("deeper"), input=deep_text(MAX_DEPTH - 4))
    assert ok["status"] == "SUCCEEDED"
    r = sfn.start_sync_execution(stateMachineArn=arn("deeper"), input=deep_text(MAX_DEPTH - 2))
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (r["status"], r["error"]) == ("FAILED", "States.Runtime")
    assert r["cause"].startswith("An error occurred while executing the state 'P' (entered at the event id #2). "
                                 "The ResultPath writes the result 2 levels down, where it would nest arrays and "
                                 "objects more than 253 levels deep")


def test_test_state_input_nested_too_deeply_is_invalid_execution_input(sfn: Any) -> None:
    state = json.dumps({"Type": "Pass", "End": True})
    message = refused(sfn.test_state, definition=state, input=deep_text(300))
    assert "the input nests arrays and objects more than 253 levels deep" in message
    assert sfn.test_state(definition=state, input=deep_text(MAX_DEPTH))["status"] == "SUCCEEDED"


# ---------------------------------------------------------------------- integers


@pytest.mark.parametrize("named", [False, True])
@pytest.mark.parametrize("op", ["start_sync_execution", "start_execution"])
@pytest.mark.parametrize("number", [BIG, "18446744073709551616", "-9223372036854775809"])
def test_an_integer_beyond_64_bits_is_invalid_execution_input(sfn: Any, op: str, named: bool, number: str) -> None:
    """The bug: orjson silently made such an integer a float (1.2345678901234568e+29)."""
    kw = {"name": f"big-{number}"} if named else {}
    message = refused(getattr(sfn, op), stateMachineArn=arn("echo"), input='{"ok": 1, "n": [2, ' + number + "]}", **kw)
    assert message == (f"Invalid State Machine Execution Input: 'the input holds the integer {number} at /n/1, "
                       "outside the range -9223372036854775808 to 18446744073709551615 that is kept exactly; "
                       "give it as a string'")


def test_integers_at_the_edges_and_long_digit_strings_are_kept_exactly(sfn: Any) -> None:
    text = '{"max": 18446744073709551615, "min": -9223372036854775808, "s": "' + BIG + '", "f": 1.5e300}'
    r = sfn.start_sync_execution(stateMachineArn=arn("pass"), input=text)
    assert r["status"] == "SUCCEEDED"
    assert json.loads(r["output"]) == {"echo": json.loads(text)}
    assert '"max":18446744073709551615' in r["output"]


# ---------------------------------------------------------------------- definitions


def test_a_template_deeper_than_python_parses_creates_and_runs(sfn: Any) -> None:
    """The bug: a Parameters template 200+ levels deep made CreateStateMachine answer 500 (a
    SyntaxError out of the code generator)."""
    template: Any = {"v.$": "$.v"}
    for _ in range(220):
        template = {"a": template}
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": template, "End": True}}}
    created = sfn.create_state_machine(name="deep-template", definition=json.dumps(definition),
                                       roleArn="arn:aws:iam::000000000000:role/r", type="EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=created["stateMachineArn"], input='{"v": 7}')
    assert r["status"] == "SUCCEEDED"
    out = json.loads(r["output"])
    for _ in range(220):
        out = out["a"]
    assert out == {"v": 7}


@pytest.mark.parametrize("result, pointer", [
    (deep_text(400), "/States/P/Result" + "/a" * (MAX_DEPTH - 3)),
    ('{"n": ' + BIG + "}", "/States/P/Result/n"),
])
def test_definitions_beyond_the_limits_are_invalid_definitions(sfn: Any, result: str, pointer: str) -> None:
    text = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Result": ' + result + "}}}"
    with pytest.raises(ClientError) as info:
        sfn.create_state_machine(name="too-deep", definition=text, roleArn="arn:aws:iam::000000000000:role/r",
                                 type="EXPRESS")
    assert info.value.response["Error"]["Code"] == "InvalidDefinition"
    assert "SCHEMA_VALIDATION_FAILED: " in info.value.response["Error"]["Message"]
    assert info.value.response["Error"]["Message"].endswith(f" at {pointer}'")
    check = sfn.validate_state_machine_definition(definition=text)
    assert check["result"] == "FAIL" and check["diagnostics"][0]["location"] == pointer


# ---------------------------------------------------------------------- never a 5xx


async def _sweep(url: str) -> list[tuple[str, int, int]]:
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    calls = []
    for depth in (MAX_DEPTH - 3, MAX_DEPTH, MAX_DEPTH + 1, 255, 256, 1024, 1025):
        text = deep_text(depth)
        calls += [("StartSyncExecution", {"stateMachineArn": arn("deeper"), "input": text}),
                  ("StartSyncExecution", {"stateMachineArn": arn("pass"), "input": text, "name": f"n{depth}"}),
                  ("StartExecution", {"stateMachineArn": arn("deeper"), "input": text, "name": f"a{depth}"}),
                  ("TestState", {"definition": json.dumps(DEEPER["States"]["P"]), "input": text})]
    async with aiohttp.ClientSession() as session:
        async def one(op: str, body: dict[str, Any]) -> tuple[str, int, int]:
            async with session.post(url, data=json.dumps(body),
                                    headers={**headers, "X-Amz-Target": f"AWSStepFunctions.{op}"}) as resp:
                await resp.read()
                return op, body["input"].count("{"), resp.status
        return await asyncio.gather(*(one(op, body) for op, body in calls))


def test_no_input_depth_gives_a_5xx(server: ServerThread) -> None:
    answers = asyncio.run(_sweep(server.url))
    assert [a for a in answers if a[2] >= 500] == []
    assert {a[2] for a in answers} <= {200, 400}
