"""Every operation of the HTTP API through boto3's stepfunctions client, against the real server."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from httpsupport import ACCOUNT, COUNTED, PASS, REGION, ServerThread, arn, server_fixture, sfn_fixture  # noqa: F401 - fixtures


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# ---------------------------------------------------------------------- StartSyncExecution
def test_start_sync_execution_succeeds(sfn: Any) -> None:
    before = time.time()
    r = sfn.start_sync_execution(stateMachineArn=arn("pass"), input='{"a": 1}', name="first")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["status"] == "SUCCEEDED"
    assert json.loads(r["output"]) == {"echo": {"a": 1}}
    assert r["input"] == '{"a": 1}'
    assert r["inputDetails"] == {"included": True} and r["outputDetails"] == {"included": True}
    assert r["name"] == "first"
    assert r["stateMachineArn"] == arn("pass")
    prefix = f"arn:aws:states:{REGION}:{ACCOUNT}:express:pass:first:"
    assert r["executionArn"].startswith(prefix) and len(r["executionArn"]) == len(prefix) + 36
    assert r["billingDetails"] == {"billedDurationInMilliseconds": 100, "billedMemoryUsedInMB": 64}
    assert before - 1 <= r["startDate"].timestamp() <= r["stopDate"].timestamp() <= time.time() + 1
    assert "error" not in r


def test_start_sync_execution_without_name_or_input(sfn: Any) -> None:
    r = sfn.start_sync_execution(stateMachineArn=arn("pass"))
    assert r["status"] == "SUCCEEDED"
    assert json.loads(r["output"]) == {"echo": {}}
    assert len(r["name"]) == 36  # a UUID


def test_start_sync_execution_failed_is_http_200(sfn: Any) -> None:
    r = sfn.start_sync_execution(stateMachineArn=arn("fail"), input="{}")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["status"] == "FAILED"
    assert r["error"] == "Custom.Failure" and r["cause"] == "it failed"
    assert "output" not in r
    assert r["billingDetails"]["billedDurationInMilliseconds"] == 100


def test_start_sync_execution_times_out(sfn: Any) -> None:
    t0 = time.monotonic()
    r = sfn.start_sync_execution(stateMachineArn=arn("slow"), input="{}")
    assert r["status"] == "TIMED_OUT"
    assert r["error"] == "States.Timeout"
    assert time.monotonic() - t0 < 10
    assert r["billingDetails"]["billedDurationInMilliseconds"] >= 1000  # the 1 s cap of the test server


def test_start_sync_execution_metadata_only(sfn: Any) -> None:
    r = sfn.start_sync_execution(stateMachineArn=arn("pass"), input='{"secret": 1}', includedData="METADATA_ONLY")
    assert r["status"] == "SUCCEEDED"
    assert "input" not in r and "output" not in r
    assert r["inputDetails"] == {"included": False}


def test_start_sync_execution_trace_header(sfn: Any) -> None:
    r = sfn.start_sync_execution(stateMachineArn=arn("pass"), traceHeader="Root=1-abc")
    assert r["traceHeader"] == "Root=1-abc"


def test_start_sync_execution_refusals_run_nothing(server: ServerThread, sfn: Any) -> None:
    cases = [
        (dict(stateMachineArn=arn("nope")), "StateMachineDoesNotExist"),
        (dict(stateMachineArn="not-an-arn"), "InvalidArn"),
        (dict(stateMachineArn=f"arn:aws:states:{REGION}:{ACCOUNT}:express:counted:x:y"), "InvalidArn"),
        (dict(stateMachineArn=f"arn:aws:states:eu-west-1:{ACCOUNT}:stateMachine:counted"),
         "StateMachineDoesNotExist"),
        (dict(stateMachineArn=arn("counted") + "/label"), "ValidationException"),
        (dict(stateMachineArn=arn("counted"), name="bad name"), "InvalidName"),
        (dict(stateMachineArn=arn("counted"), name="a" * 81), "ValidationException"),
        (dict(stateMachineArn=arn("counted"), name="x:y"), "InvalidName"),
        (dict(stateMachineArn=arn("counted"), input="{not json"), "InvalidExecutionInput"),
        (dict(stateMachineArn=arn("counted"), input='"' + "x" * 262_144 + '"'), "ValidationException"),
        (dict(stateMachineArn=arn("counted"), includedData="SOME"), "ValidationException"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as exc:
            sfn.start_sync_execution(**kwargs)
        assert code_of(exc) == code, kwargs
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert exc.value.response["Error"]["Message"]
    assert server.counter.calls == 0


def test_input_of_exactly_256_kib_is_accepted(sfn: Any) -> None:
    text = '"' + "x" * (262_144 - 2) + '"'
    r = sfn.start_sync_execution(stateMachineArn=arn("pass"), input=text)
    assert r["status"] in ("SUCCEEDED", "FAILED")  # the output (wrapped) may exceed the payload limit


def test_start_sync_execution_of_standard_machine_is_refused(sfn: Any) -> None:
    sfn.create_state_machine(name="std", definition=json.dumps(PASS), roleArn="arn:aws:iam::0:role/r",
                             type="STANDARD")
    with pytest.raises(ClientError) as exc:
        sfn.start_sync_execution(stateMachineArn=arn("std"))
    assert code_of(exc) == "StateMachineTypeNotSupported"


# ---------------------------------------------------------------------- StartExecution
def test_start_execution_runs_in_background(server: ServerThread, sfn: Any) -> None:
    r = sfn.start_execution(stateMachineArn=arn("counted"), input='{"x": 1}')
    assert r["executionArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:express:counted:")
    assert r["startDate"].timestamp() > 0
    deadline = time.monotonic() + 5
    while server.counter.calls < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.counter.calls == 1


def test_start_execution_with_name_is_exactly_once(server: ServerThread, sfn: Any) -> None:
    a = sfn.start_execution(stateMachineArn=arn("counted"), input='{"x": 1}', name="job-1")
    b = sfn.start_execution(stateMachineArn=arn("counted"), input='{"x":1}', name="job-1")
    assert a["executionArn"] == b["executionArn"]
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn("counted"), input='{"x": 2}', name="job-1")
    assert code_of(exc) == "ExecutionAlreadyExists"
    # A sync request for the same name waits for the background run and gets its answer.
    r = sfn.start_sync_execution(stateMachineArn=arn("counted"), input='{"x": 1}', name="job-1")
    assert r["executionArn"] == a["executionArn"]
    assert json.loads(r["output"])["calls"] == 1
    assert server.counter.calls == 1


def test_start_execution_refusals(sfn: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn("nope"))
    assert code_of(exc) == "StateMachineDoesNotExist"
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn("pass"), input="[")
    assert code_of(exc) == "InvalidExecutionInput"


# ---------------------------------------------------------------------- state machine management
def test_create_describe_list_update_delete(sfn: Any) -> None:
    definition = json.dumps(PASS)
    created = sfn.create_state_machine(name="mine", definition=definition, roleArn="arn:aws:iam::0:role/r",
                                       type="EXPRESS")
    assert created["stateMachineArn"] == arn("mine")
    again = sfn.create_state_machine(name="mine", definition=definition, roleArn="arn:aws:iam::0:role/r",
                                     type="EXPRESS")
    assert again["creationDate"] == created["creationDate"]  # idempotent
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name="mine", definition=json.dumps(COUNTED), roleArn="arn:aws:iam::0:role/r",
                                 type="EXPRESS")
    assert code_of(exc) == "StateMachineAlreadyExists"

    d = sfn.describe_state_machine(stateMachineArn=arn("mine"))
    assert d["name"] == "mine" and d["type"] == "EXPRESS" and d["status"] == "ACTIVE"
    assert json.loads(d["definition"]) == PASS
    assert d["roleArn"] == "arn:aws:iam::0:role/r"
    assert d["creationDate"] == created["creationDate"]
    assert d["loggingConfiguration"]["level"] == "OFF"

    names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert names == sorted(names) and "mine" in names and "pass" in names

    new_def = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "v2", "End": True}}}
    u = sfn.update_state_machine(stateMachineArn=arn("mine"), definition=json.dumps(new_def))
    assert u["updateDate"].timestamp() > 0 and u["revisionId"]
    assert json.loads(sfn.start_sync_execution(stateMachineArn=arn("mine"))["output"]) == "v2"
    d2 = sfn.describe_state_machine(stateMachineArn=arn("mine"))
    assert json.loads(d2["definition"]) == new_def and d2["creationDate"] == created["creationDate"]

    sfn.delete_state_machine(stateMachineArn=arn("mine"))
    sfn.delete_state_machine(stateMachineArn=arn("mine"))  # idempotent
    with pytest.raises(ClientError) as exc:
        sfn.describe_state_machine(stateMachineArn=arn("mine"))
    assert code_of(exc) == "StateMachineDoesNotExist"
    with pytest.raises(ClientError) as exc:
        sfn.start_sync_execution(stateMachineArn=arn("mine"))
    assert code_of(exc) == "StateMachineDoesNotExist"


def test_create_state_machine_refusals(sfn: Any) -> None:
    role = "arn:aws:iam::0:role/r"
    bad = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name="bad", definition=json.dumps(bad), roleArn=role)
    assert code_of(exc) == "InvalidDefinition"
    msg = exc.value.response["Error"]["Message"]
    assert msg.startswith("Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET")
    assert "/States/A/Next" in msg
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name="bad", definition="{not json", roleArn=role)
    assert code_of(exc) == "InvalidDefinition"
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name="has space", definition=json.dumps(PASS), roleArn=role)
    assert code_of(exc) == "InvalidName"
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name="r", definition=json.dumps(PASS), roleArn="role")
    assert code_of(exc) == "InvalidArn"
    with pytest.raises(ClientError) as exc:
        sfn.create_state_machine(name="l", definition=json.dumps(PASS), roleArn=role,
                                 loggingConfiguration={"level": "ALL"})
    assert code_of(exc) == "InvalidLoggingConfiguration"
    with pytest.raises(ClientError) as exc:
        sfn.update_state_machine(stateMachineArn=arn("pass"))
    assert code_of(exc) == "MissingRequiredParameter"
    with pytest.raises(ClientError) as exc:
        sfn.update_state_machine(stateMachineArn=arn("nope"), definition=json.dumps(PASS))
    assert code_of(exc) == "StateMachineDoesNotExist"
    with pytest.raises(ClientError) as exc:
        sfn.update_state_machine(stateMachineArn=arn("pass"), definition=json.dumps(bad))
    assert code_of(exc) == "InvalidDefinition"
    assert "bad" not in [m["name"] for m in sfn.list_state_machines()["stateMachines"]]


def test_create_large_definition_compiles_off_loop(sfn: Any) -> None:
    states = {f"S{i}": {"Type": "Pass", "Result": {"pad": "x" * 100}, "Next": f"S{i + 1}"} for i in range(700)}
    states["S700"] = {"Type": "Succeed"}
    definition = json.dumps({"StartAt": "S0", "States": states})
    assert len(definition) > 64 * 1024
    sfn.create_state_machine(name="big", definition=definition, roleArn="arn:aws:iam::0:role/r", type="EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=arn("big"))
    assert r["status"] == "SUCCEEDED"


def test_list_state_machines_pages(sfn: Any) -> None:
    seen: list[str] = []
    token = None
    while True:
        kw = {"maxResults": 2} | ({"nextToken": token} if token else {})
        page = sfn.list_state_machines(**kw)
        assert len(page["stateMachines"]) <= 2
        seen += [m["name"] for m in page["stateMachines"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == ["counted", "fail", "pass", "sleepy", "slow"]
    paginated = [m["name"] for p in sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 3})
                 for m in p["stateMachines"]]
    assert paginated == seen
    with pytest.raises(ClientError) as exc:
        sfn.list_state_machines(nextToken="!!!")
    assert code_of(exc) == "InvalidToken"
    with pytest.raises(ClientError) as exc:
        sfn.list_state_machines(maxResults=1001)
    assert code_of(exc) == "ValidationException"


def test_validate_state_machine_definition(sfn: Any) -> None:
    ok = sfn.validate_state_machine_definition(definition=json.dumps(PASS), type="EXPRESS")
    assert ok["result"] == "OK" and ok["diagnostics"] == []
    bad = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}, "B": {"Type": "Succeed"}}}
    r = sfn.validate_state_machine_definition(definition=json.dumps(bad))
    assert r["result"] == "FAIL"
    assert all(d["severity"] == "ERROR" for d in r["diagnostics"])
    by_location = {d["location"]: d for d in r["diagnostics"]}
    assert by_location["/States/A/Next"]["code"] == "MISSING_TRANSITION_TARGET"
    assert r["truncated"] is False
    one = sfn.validate_state_machine_definition(definition=json.dumps(bad), maxResults=1)
    assert len(one["diagnostics"]) == 1 and one["truncated"] is True
    j = sfn.validate_state_machine_definition(definition="not a definition")
    assert j["result"] == "FAIL" and j["diagnostics"][0]["code"] == "INVALID_JSON_DESCRIPTION"
    missing = sfn.validate_state_machine_definition(definition="{}")
    assert missing["result"] == "FAIL" and missing["diagnostics"][0]["location"].startswith("/")


# ---------------------------------------------------------------------- TestState
def test_test_state_pass_with_next(sfn: Any) -> None:
    state = {"Type": "Pass", "Parameters": {"v.$": "$.a"}, "ResultPath": "$.r", "Next": "After"}
    r = sfn.test_state(definition=json.dumps(state), input='{"a": 5}')
    assert r["status"] == "SUCCEEDED"
    assert json.loads(r["output"]) == {"a": 5, "r": {"v": 5}}
    assert r["nextState"] == "After"
    assert "inspectionData" not in r


def test_test_state_debug_inspection(sfn: Any) -> None:
    state = {"Type": "Pass", "Result": 1, "End": True}
    r = sfn.test_state(definition=json.dumps(state), input='{"a": 5}', inspectionLevel="DEBUG")
    assert json.loads(r["inspectionData"]["input"]) == {"a": 5}
    assert json.loads(r["inspectionData"]["afterResultPath"]) == 1
    assert "nextState" not in r


def test_test_state_choice(sfn: Any) -> None:
    state = {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 3, "Next": "Big"}],
             "Default": "Small"}
    big = sfn.test_state(definition=json.dumps(state), input='{"n": 5}')
    assert big["status"] == "SUCCEEDED" and big["nextState"] == "Big" and json.loads(big["output"]) == {"n": 5}
    small = sfn.test_state(definition=json.dumps(state), input='{"n": 1}')
    assert small["nextState"] == "Small"


def test_test_state_fail_retry_and_catch(sfn: Any) -> None:
    fail = sfn.test_state(definition=json.dumps({"Type": "Fail", "Error": "E", "Cause": "C"}))
    assert fail["status"] == "FAILED" and fail["error"] == "E" and fail["cause"] == "C"
    task = {"Type": "Task", "Resource": "count", "End": True,
            "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["Other"], "Next": "X"},
                      {"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handler"}]}
    mock = {"errorOutput": {"error": "Boom", "cause": "bang"}}
    r = sfn.test_state(definition=json.dumps(task), input='{"a": 1}', mock=mock, inspectionLevel="DEBUG")
    assert r["status"] == "RETRIABLE" and r["error"] == "Boom"
    assert r["inspectionData"]["errorDetails"] == {"retryIndex": 0, "retryBackoffIntervalSeconds": 2}
    r = sfn.test_state(definition=json.dumps(task), input='{"a": 1}', mock=mock, inspectionLevel="DEBUG",
                       stateConfiguration={"retrierRetryCount": 1})
    assert r["inspectionData"]["errorDetails"]["retryBackoffIntervalSeconds"] == 6
    r = sfn.test_state(definition=json.dumps(task), input='{"a": 1}', mock=mock, inspectionLevel="DEBUG",
                       stateConfiguration={"retrierRetryCount": 2})
    assert r["status"] == "CAUGHT_ERROR" and r["nextState"] == "Handler"
    assert json.loads(r["output"]) == {"a": 1, "err": {"Error": "Boom", "Cause": "bang"}}
    assert r["inspectionData"]["errorDetails"] == {"catchIndex": 1}


def test_test_state_runs_task_and_mock_result(server: ServerThread, sfn: Any) -> None:
    server.counter.delay = 0
    task = {"Type": "Task", "Resource": "count", "ResultSelector": {"n.$": "$.calls"}, "Next": "N"}
    r = sfn.test_state(definition=json.dumps(task), input="{}", roleArn="arn:aws:iam::000000000000:role/r")
    assert json.loads(r["output"]) == {"n": 1} and r["nextState"] == "N"
    r = sfn.test_state(definition=json.dumps(task), input="{}", mock={"result": '{"calls": 42}'})
    assert json.loads(r["output"]) == {"n": 42}
    assert server.counter.calls == 1


def test_test_state_variables_and_state_name(sfn: Any) -> None:
    machine = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Pass", "Output": "{% $x + $states.input.y %}", "End": True}}}
    r = sfn.test_state(definition=json.dumps(machine), stateName="B", input='{"y": 2}', variables='{"x": 40}')
    assert r["status"] == "SUCCEEDED" and json.loads(r["output"]) == 42


def test_test_state_refusals(sfn: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sfn.test_state(definition="{nope")
    assert code_of(exc) == "InvalidDefinition"
    with pytest.raises(ClientError) as exc:
        sfn.test_state(definition=json.dumps({"Type": "Bogus", "End": True}))
    assert code_of(exc) == "InvalidDefinition"
    with pytest.raises(ClientError) as exc:
        sfn.test_state(definition=json.dumps({"Type": "Pass", "End": True}), input="[")
    assert code_of(exc) == "InvalidExecutionInput"


# ---------------------------------------------------------------------- host prefix
def test_sync_host_prefix_is_accepted(server: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("pass")}).encode()
    status, _, data = server.request("POST", "/", body, {
        "Host": f"sync-127.0.0.1:{server.port}", "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "AWSStepFunctions.StartSyncExecution"})
    assert status == 200 and json.loads(data)["status"] == "SUCCEEDED"
