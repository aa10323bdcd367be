"""TestState through boto3 against the real server, as AWS documents it (API reference TestState,
InspectionData, MockInput, TestStateConfiguration; "Using TestState API to test a state")."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from httpsupport import ServerThread, running, sfn_fixture  # noqa: F401 - fixtures

# Imported here, on pytest's main thread, which outlives every server thread: jsonatapy crashes
# (SIGSEGV in compile) once express.asl.jsonata was first imported and used on a thread that has ended.
import express.asl.jsonata  # noqa: F401,E402

ROLE = "arn:aws:iam::123456789012:role/tester"
SUCCEED = {"Type": "Succeed"}


@pytest.fixture(scope="module", name="server")
def module_server() -> Iterator[ServerThread]:
    with running(ServerThread(), task_delay_s=0) as s:
        yield s


def test_state(sfn: Any, state: Any, **kw: Any) -> dict[str, Any]:
    if "input" in kw and not isinstance(kw["input"], str):
        kw["input"] = json.dumps(kw["input"])
    r: dict[str, Any] = sfn.test_state(definition=json.dumps(state), **kw)
    r.pop("ResponseMetadata", None)
    return r


test_state.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def refused(sfn: Any, state: Any, **kw: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        test_state(sfn, state, **kw)
    err = exc.value.response["Error"]
    return str(err["Code"]), str(err["Message"])


def inspection(r: dict[str, Any]) -> dict[str, Any]:
    """inspectionData with its JSON-text fields decoded."""
    return {k: json.loads(v) if isinstance(v, str) else v for k, v in r["inspectionData"].items()}


# ---------------------------------------------------------------------- which state runs, under which name
def test_lone_state_may_hold_inner_states_of_any_name(sfn: Any) -> None:
    state = {"Type": "Map", "ItemProcessor": {"StartAt": "TestState", "States": {
        "TestState": {"Type": "Pass", "Next": "State"}, "State": SUCCEED}}, "End": True}
    r = test_state(sfn, state, input=[1, 2], mock={"result": '["a", "b"]'})
    assert r["status"] == "SUCCEEDED" and json.loads(r["output"]) == ["a", "b"]


def test_state_name_may_name_a_nested_state(sfn: Any) -> None:
    machine = {"StartAt": "Fan", "States": {"Fan": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "Parameters": {"got.$": "$.v"}, "Next": "Last"},
                                        "Last": SUCCEED}}]}}}
    r = test_state(sfn, machine, stateName="Inner", input={"v": 7})
    assert json.loads(r["output"]) == {"got": 7} and r["nextState"] == "Last"
    assert refused(sfn, machine, stateName="Elsewhere") == ("ValidationException", "State not found in definition")


# ---------------------------------------------------------------------- inspectionData
def test_inspection_data_only_at_debug_and_trace(sfn: Any) -> None:
    task = {"Type": "Task", "Resource": "count", "End": True,
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}]}
    mock = {"errorOutput": {"error": "Oops", "cause": "broken"}}
    info = test_state(sfn, task, mock=mock)
    assert info["status"] == "CAUGHT_ERROR" and info["nextState"] == "Handle"
    assert "inspectionData" not in info  # not even errorDetails
    for level in ("DEBUG", "TRACE"):
        r = test_state(sfn, task, mock=mock, inspectionLevel=level)
        assert inspection(r)["errorDetails"] == {"catchIndex": 0}


def test_jsonpath_task_inspection_shows_every_processing_step(sfn: Any) -> None:
    task = {"Type": "Task", "Resource": "count", "InputPath": "$.order", "Parameters": {"id.$": "$.id"},
            "ResultSelector": {"total.$": "$.sum"}, "ResultPath": "$.order.priced", "OutputPath": "$.order",
            "End": True}
    r = test_state(sfn, task, input={"order": {"id": 3}, "other": 1}, mock={"result": '{"sum": 12, "x": 0}'},
                   inspectionLevel="DEBUG")
    assert json.loads(r["output"]) == {"id": 3, "priced": {"total": 12}}
    assert inspection(r) == {
        "input": {"order": {"id": 3}, "other": 1},
        "afterInputPath": {"id": 3},
        "afterParameters": {"id": 3},
        "result": {"sum": 12, "x": 0},
        "afterResultSelector": {"total": 12},
        "afterResultPath": {"order": {"id": 3, "priced": {"total": 12}}, "other": 1},
    }


def test_pass_inspection_depends_on_result(sfn: Any) -> None:
    with_result = {"Type": "Pass", "Result": {"fixed": True}, "ResultPath": "$.r", "End": True}
    r = test_state(sfn, with_result, input={"a": 1}, inspectionLevel="DEBUG")
    assert inspection(r) == {"input": {"a": 1}, "result": {"fixed": True}, "afterResultSelector": {"fixed": True},
                             "afterResultPath": {"a": 1, "r": {"fixed": True}}}
    with_parameters = {"Type": "Pass", "Parameters": {"b.$": "$.a"}, "End": True}
    r = test_state(sfn, with_parameters, input={"a": 1}, inspectionLevel="TRACE")
    assert inspection(r) == {"input": {"a": 1}, "afterInputPath": {"a": 1}, "afterParameters": {"b": 1},
                             "afterResultSelector": {"b": 1}, "afterResultPath": {"b": 1}}
    choice = {"Type": "Choice", "InputPath": "$.a", "Choices": [{"Variable": "$", "NumericEquals": 1, "Next": "One"}],
              "Default": "Other"}
    r = test_state(sfn, choice, input={"a": 1}, inspectionLevel="DEBUG")
    assert r["nextState"] == "One" and inspection(r) == {"input": {"a": 1}, "afterInputPath": 1}


def test_jsonata_task_inspection_shows_arguments_and_result(sfn: Any) -> None:
    task = {"Type": "Task", "QueryLanguage": "JSONata", "Resource": "count",
            "Arguments": {"n": "{% $states.input.n * 2 %}"}, "Output": "{% $states.result.v %}", "Next": "After"}
    r = test_state(sfn, task, input={"n": 4}, mock={"result": '{"v": "done"}'}, inspectionLevel="DEBUG")
    assert json.loads(r["output"]) == "done" and r["nextState"] == "After"
    assert inspection(r) == {"input": {"n": 4}, "afterArguments": {"n": 8}, "result": {"v": "done"}}


def test_retry_reported_not_taken(sfn: Any) -> None:
    task = {"Type": "Task", "Resource": "count", "End": True,
            "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 3, "BackoffRate": 2, "MaxAttempts": 2}]}
    mock = {"errorOutput": {"error": "Busy", "cause": "later"}}
    r = test_state(sfn, task, mock=mock, inspectionLevel="DEBUG", stateConfiguration={"retrierRetryCount": 1})
    assert r["status"] == "RETRIABLE" and r["error"] == "Busy" and r["cause"] == "later"
    assert inspection(r)["errorDetails"] == {"retryIndex": 0, "retryBackoffIntervalSeconds": 6}
    r = test_state(sfn, task, mock=mock, stateConfiguration={"retrierRetryCount": 2})
    assert r["status"] == "FAILED" and "inspectionData" not in r


# ---------------------------------------------------------------------- mock.result against the service's API shape
def test_mock_result_strict_needs_the_required_fields(sfn: Any) -> None:
    task = {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
            "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m"}, "End": True}
    partial = '{"StartDate": "2025-01-01T00:00:00Z"}'
    assert refused(sfn, task, mock={"result": partial}) == (
        "ValidationException", "Mock result schema validation error: Required field 'ExecutionArn' is missing")
    r = test_state(sfn, task, mock={"result": partial, "fieldValidationMode": "PRESENT"})
    assert json.loads(r["output"]) == {"StartDate": "2025-01-01T00:00:00Z"}
    r = test_state(sfn, task, mock={"result": '{"StartDate": 5}', "fieldValidationMode": "NONE"})
    assert json.loads(r["output"]) == {"StartDate": 5}


def test_mock_result_fields_must_conform(sfn: Any) -> None:
    get_function = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:lambda:getFunction",
                    "Parameters": {"FunctionName": "f"}, "End": True}
    cases = [
        ('{"Configuration": {"Timeout": "30"}}', "Field 'Timeout' must be a number"),
        ('{"Configuration": {"Timeout": 0}}', "Field 'Timeout' is less than the minimum value"),
        ('{"Configuration": {"Timeout": 999999}}', "Field 'Timeout' is greater than the maximum value"),
        ('{"Configuration": {"PackageType": "Tarball"}}', "Field 'PackageType' is not an expected value"),
        ('{"Configuration": {"Layers": {"Arn": "x"}}}', "Field 'Layers' must be an array"),
        ('{"Configuration": {"FunctionName": ""}}', "Field 'FunctionName' is smaller than the minimum length"),
        ('{"Configuration": "none"}', "Field 'Configuration' must be an object"),
    ]
    for result, message in cases:
        assert refused(sfn, get_function, mock={"result": result, "fieldValidationMode": "PRESENT"}) == (
            "ValidationException", "Mock result schema validation error: " + message), result
    # a field the API does not have is accepted, and a JSON result of an optimized integration's blob
    r = test_state(sfn, get_function, mock={"result": '{"Configuration": {"Timeout": 30}, "Extra": [1]}'})
    assert json.loads(r["output"])["Extra"] == [1]
    invoke = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "f"}, "End": True}
    r = test_state(sfn, invoke, mock={"result": '{"StatusCode": 200, "Payload": {"any": ["json"]}}'})
    assert json.loads(r["output"])["Payload"] == {"any": ["json"]}
    assert refused(sfn, invoke, mock={"result": '{"StatusCode": true}'})[1].endswith(
        "Field 'StatusCode' must be a number")


def test_mock_result_of_a_function_arn_is_not_checked(sfn: Any) -> None:
    task = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:count", "End": True}
    r = test_state(sfn, task, mock={"result": '"anything"'})
    assert json.loads(r["output"]) == "anything"


# ---------------------------------------------------------------------- requests AWS refuses
def test_mock_only_for_states_that_do_work(sfn: Any) -> None:
    for state in ({"Type": "Pass", "End": True}, {"Type": "Succeed"}, {"Type": "Fail", "Error": "E"},
                  {"Type": "Wait", "Seconds": 1, "End": True},
                  {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsPresent": True, "Next": "X"}]}):
        for mock in ({"result": "{}"}, {"errorOutput": {"error": "E", "cause": "C"}}):
            assert refused(sfn, state, mock=mock) == (
                "ValidationException", f"State type '{state['Type']}' is not supported when a mock is specified")


def test_map_and_parallel_need_a_mock(sfn: Any) -> None:
    for state in ({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                   "End": True},
                  {"Type": "Parallel", "Branches": [{"StartAt": "P", "States": {"P": SUCCEED}}], "End": True}):
        assert refused(sfn, state, input=[1]) == (
            "InvalidDefinition", "TestState API does not support Map or Parallel states. Supported state types "
                                 "include: [Task, Wait, Pass, Succeed, Fail, Choice]")


def test_task_needs_a_role_unless_mocked(sfn: Any, server: ServerThread) -> None:
    task = {"Type": "Task", "Resource": "count", "End": True}
    assert refused(sfn, task) == ("ValidationException", "RoleArn must be specified when testing a Task state")
    before = server.counter.calls
    assert test_state(sfn, task, roleArn=ROLE)["status"] == "SUCCEEDED"
    assert test_state(sfn, task, mock={"result": "1"})["output"] == "1"
    assert server.counter.calls == before + 1


def test_mock_has_exactly_one_outcome(sfn: Any) -> None:
    task = {"Type": "Task", "Resource": "count", "End": True}
    message = "A test mock should have only one of the following fields: [result, errorOutput]."
    assert refused(sfn, task, mock={"result": "{}", "errorOutput": {"error": "E"}}) == ("ValidationException", message)
    assert refused(sfn, task, mock={"fieldValidationMode": "NONE"}) == ("ValidationException", message)


def test_parallel_mock_is_one_result_per_branch(sfn: Any) -> None:
    branches = [{"StartAt": name, "States": {name: {"Type": "Fail", "Error": "Ran"}}} for name in ("B1", "B2")]
    parallel = {"Type": "Parallel", "Branches": branches, "ResultPath": "$.both", "End": True}
    assert refused(sfn, parallel, mock={"result": '{"a": 1}'}) == (
        "ValidationException", "Mocked result must be an array.")
    assert refused(sfn, parallel, mock={"result": "[1, 2, 3]"}) == (
        "ValidationException", "Mocked result must contain the same number of items as number of Parallel branches.")
    r = test_state(sfn, parallel, input={"k": 0}, mock={"result": "[1, 2]"}, inspectionLevel="DEBUG")
    assert r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"k": 0, "both": [1, 2]}  # branches not run
    assert inspection(r) == {"input": {"k": 0}, "afterResultSelector": [1, 2], "afterResultPath": {"k": 0, "both": [1, 2]}}


# ---------------------------------------------------------------------- context and stateConfiguration
def test_given_context_object_is_the_states_context(sfn: Any) -> None:
    task = {"Type": "Task", "Resource": "count", "ResultSelector": {"who.$": "$$.Execution.Name", "r.$": "$"},
            "End": True}
    context = {"Execution": {"Name": "exec-7"}, "State": {"Name": "Mine"}}
    r = test_state(sfn, task, mock={"result": "5"}, context=json.dumps(context))
    assert json.loads(r["output"]) == {"who": "exec-7", "r": 5}
    jsonata = {"Type": "Task", "QueryLanguage": "JSONata", "Resource": "count", "Output": "{% $states.context %}",
               "End": True}
    r = test_state(sfn, jsonata, mock={"result": "5"}, context=json.dumps(context))
    assert json.loads(r["output"]) == context
    token = json.dumps({**context, "Task": {"Token": "t"}})
    assert refused(sfn, task, mock={"result": "5"}, context=token) == (
        "ValidationException", "Invalid Context object provided: Context object contains 'Task' when state is not a "
                               "Task state with a '.sync' or '.waitForTaskToken' service integration pattern")
    callback = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}}, "End": True}
    assert test_state(sfn, callback, mock={"result": "{}"}, context=token)["status"] == "SUCCEEDED"


def test_default_context_object(sfn: Any) -> None:
    show = {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.context %}", "End": True}
    ctx = json.loads(test_state(sfn, show, input={"i": 1}, roleArn=ROLE)["output"])
    assert ctx["Execution"]["Input"] == {"i": 1} and ctx["Execution"]["RoleArn"] == ROLE
    assert "RedriveCount" not in ctx["Execution"]
    assert ctx["Execution"]["Id"].split(":")[5:7] == ["express", ctx["StateMachine"]["Name"]]
    assert ctx["Execution"]["Id"].endswith(":" + ctx["Execution"]["Name"])
    assert ctx["State"]["Name"] == "StateName" and "RetryCount" not in ctx["State"]
    assert json.loads(test_state(sfn, show)["output"])["Execution"]["RoleArn"] is None
    task = {**show, "Type": "Task", "Resource": "count"}
    ctx = json.loads(test_state(sfn, task, mock={"result": "0"})["output"])
    assert ctx["State"]["RetryCount"] == 0


def test_map_iteration_failures_against_the_tolerated_threshold(sfn: Any) -> None:
    mapped = {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"v.$": "$$.Map.Item.Value"},
              "MaxConcurrency": 2, "ToleratedFailurePercentage": 50,
              "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Pass", "End": True}}},
              "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "ResultPath": "$.error",
                         "Next": "TooMany"}], "End": True}
    items = {"items": ["a", "b", "c", "d"]}
    ok = test_state(sfn, mapped, input=items, mock={"result": "[1, null, null, 4]"}, inspectionLevel="DEBUG",
                    stateConfiguration={"mapIterationFailureCount": 2})
    assert ok["status"] == "SUCCEEDED" and json.loads(ok["output"]) == [1, None, None, 4]
    assert inspection(ok) == {
        "input": items, "afterInputPath": items, "afterItemsPath": ["a", "b", "c", "d"],
        "afterItemSelector": [{"v": "a"}, {"v": "b"}, {"v": "c"}, {"v": "d"}],
        "afterResultSelector": [1, None, None, 4], "afterResultPath": [1, None, None, 4],
        "maxConcurrency": 2, "toleratedFailurePercentage": 50.0}
    over = test_state(sfn, mapped, input=items, mock={"result": "[1, null, null, null]"},
                      stateConfiguration={"mapIterationFailureCount": 3})
    assert over["status"] == "CAUGHT_ERROR" and over["nextState"] == "TooMany"
    assert over["error"] == "States.ExceedToleratedFailureThreshold"
    assert json.loads(over["output"])["error"]["Cause"] == "The specified tolerated failure threshold was exceeded"
    assert refused(sfn, mapped, input=items, mock={"result": "[1]"},
                   stateConfiguration={"mapIterationFailureCount": 2}) == (
        "ValidationException", "Map iteration failure count must be less than or equal to the number of Map iterations")


def test_mocked_map_error_caused_by_an_inner_state(sfn: Any) -> None:
    mapped = {"Type": "Map", "QueryLanguage": "JSONata", "Items": "{% $states.input.list %}",
              "ItemProcessor": {"StartAt": "Call", "States": {"Call": {"Type": "Pass", "End": True}}}, "End": True}
    r = test_state(sfn, mapped, input={"list": [1]}, inspectionLevel="TRACE",
                   mock={"errorOutput": {"error": "Inner.Failed", "cause": "item 0"}},
                   stateConfiguration={"errorCausedByState": "Call"})
    assert (r["status"], r["error"], r["cause"]) == ("FAILED", "Inner.Failed", "item 0")
    assert inspection(r) == {"input": {"list": [1]}, "maxConcurrency": 0}
    not_a_list = {"Type": "Map", "ItemsPath": "$.list",
                  "ItemProcessor": {"StartAt": "Call", "States": {"Call": {"Type": "Pass", "End": True}}}, "End": True}
    r = test_state(sfn, not_a_list, input={"list": {"a": 1}}, mock={"result": "[]"})
    assert (r["status"], r["error"], r["cause"]) == (
        "FAILED", "States.Runtime", 'Reference path "$.list" must point to array.')
