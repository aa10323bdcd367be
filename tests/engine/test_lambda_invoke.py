"""Lambda through Step Functions: the ``lambda:invoke`` response envelope, its Payload rules and
Lambda's error texts, as AWS documents them (Lambda Invoke API; "Invoke Lambda with Step Functions")."""
from __future__ import annotations

import base64
import json
import re

import pytest

import express
from tests.support import machine, run, single

INVOKE = "arn:aws:states:::lambda:invoke"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def echo(event):
    return event


def invoke(parameters: dict, **state: object) -> dict:
    return single({"Type": "Task", "Resource": INVOKE, "Parameters": parameters, **state})


async def test_invoke_result_is_the_invoke_response_with_http_metadata():
    r = await run(invoke({"FunctionName": "echo", "Payload": {"status": "completed"}}), {},
                  functions={"echo": echo})
    assert r.status == "SUCCEEDED", r.cause
    out = r.output
    assert list(out) == ["ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata", "StatusCode"]
    assert out["ExecutedVersion"] == "$LATEST"
    assert out["Payload"] == {"status": "completed"}
    assert out["StatusCode"] == 200
    meta = out["SdkHttpMetadata"]
    assert meta["HttpStatusCode"] == 200
    headers, all_headers = meta["HttpHeaders"], meta["AllHttpHeaders"]
    # the same headers twice: HttpHeaders has strings, AllHttpHeaders lists of strings
    assert set(headers) == set(all_headers) == {
        "Connection", "Content-Length", "Content-Type", "Date", "X-Amz-Executed-Version",
        "x-amzn-Remapped-Content-Length", "x-amzn-RequestId", "X-Amzn-Trace-Id"}
    assert all(all_headers[k] == [v] for k, v in headers.items())
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Amz-Executed-Version"] == "$LATEST"
    # the body Lambda's Python runtime wrote: json.dumps of the handler's return value
    assert headers["Content-Length"] == str(len(json.dumps({"status": "completed"})))
    assert re.fullmatch(UUID, headers["x-amzn-RequestId"])
    assert out["SdkResponseMetadata"] == {"RequestId": headers["x-amzn-RequestId"]}
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", headers["Date"])


async def test_each_invocation_has_its_own_request_id():
    d = machine({
        "A": {"Type": "Task", "Resource": INVOKE, "Parameters": {"FunctionName": "echo"},
              "ResultSelector": {"id.$": "$.SdkResponseMetadata.RequestId"}, "ResultPath": "$.a", "Next": "B"},
        "B": {"Type": "Task", "Resource": INVOKE, "Parameters": {"FunctionName": "echo"},
              "ResultSelector": {"id.$": "$.SdkResponseMetadata.RequestId"}, "ResultPath": "$.b", "End": True},
    })
    r = await run(d, {}, functions={"echo": echo})
    assert r.output["a"]["id"] != r.output["b"]["id"]


async def test_string_payload_is_the_request_body_itself():
    # Invoke takes the payload as JSON text: a string Payload is that text, not a JSON string
    for text, event in (('"HelloWorld"', "HelloWorld"), ("0.0", 0.0), ("true", True), ("[]", []),
                        ('{"a": [1]}', {"a": [1]})):
        r = await run(invoke({"FunctionName": "echo", "Payload": text}), {}, functions={"echo": echo})
        assert r.status == "SUCCEEDED", r.cause
        assert r.output["Payload"] == event and type(r.output["Payload"]) is type(event)
        assert r.output["SdkHttpMetadata"]["HttpHeaders"]["Content-Length"] == str(len(json.dumps(event)))


async def test_string_payload_that_is_not_json_fails_like_lambda():
    d = invoke({"FunctionName": "echo", "Payload": "not json"},
               Catch=[{"ErrorEquals": ["Lambda.InvalidRequestContentException"], "Next": "H"}])
    d["States"]["S"].pop("End")
    d["States"]["S"]["Next"] = "H"
    d["States"]["H"] = {"Type": "Pass", "End": True}
    r = await run(d, {}, functions={"echo": echo})
    assert r.status == "SUCCEEDED"
    assert r.output["Error"] == "Lambda.InvalidRequestContentException"
    assert r.output["Cause"].startswith("Could not parse request body into json")
    assert "Status Code: 400; Error Code: InvalidRequestContentException" in r.output["Cause"]


async def test_null_or_absent_payload_invokes_with_an_empty_object():
    seen = []

    def record(event):
        seen.append(event)
        return event

    for params in ({"FunctionName": "f", "Payload": None}, {"FunctionName": "f"}):
        r = await run(invoke(params), {}, functions={"f": record})
        assert r.output["Payload"] == {}
    assert seen == [{}, {}]


async def test_log_type_tail_adds_log_result():
    r = await run(invoke({"FunctionName": "echo", "LogType": "Tail"}), {}, functions={"echo": echo})
    out = r.output
    assert list(out)[:3] == ["ExecutedVersion", "LogResult", "Payload"]
    log = base64.b64decode(out["LogResult"]).decode()
    assert log.startswith("START RequestId: ") and "\nEND RequestId: " in log and "\nREPORT RequestId: " in log
    headers = out["SdkHttpMetadata"]["HttpHeaders"]
    assert headers["X-Amz-Log-Result"] == out["LogResult"]
    assert out["SdkHttpMetadata"]["AllHttpHeaders"]["X-Amz-Log-Result"] == [out["LogResult"]]


async def test_log_type_none_has_no_log_result():
    r = await run(invoke({"FunctionName": "echo", "LogType": "None"}), {}, functions={"echo": echo})
    assert "LogResult" not in r.output
    assert "X-Amz-Log-Result" not in r.output["SdkHttpMetadata"]["HttpHeaders"]


async def test_version_qualifier_is_the_executed_version():
    r = await run(invoke({"FunctionName": "echo:7"}), {}, functions={"echo": echo})
    assert r.output["ExecutedVersion"] == "7"
    assert r.output["SdkHttpMetadata"]["HttpHeaders"]["X-Amz-Executed-Version"] == "7"


async def test_unknown_function_cause_is_lambdas_not_found_text():
    r = await run(invoke({"FunctionName": "missing"}), {}, functions={"echo": echo})
    assert r.status == "FAILED"
    assert r.error == "Lambda.ResourceNotFoundException"
    assert re.fullmatch(
        r"Function not found: arn:aws:lambda:us-east-1:000000000000:function:missing:\$LATEST "
        rf"\(Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException; Request ID: {UUID}; "
        r"Proxy: null\)", r.cause or ""), r.cause


async def test_unknown_function_by_arn_keeps_its_region_account_and_qualifier():
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:gone:prod"
    r = await run(invoke({"FunctionName": arn}), {}, functions={"echo": echo})
    assert (r.cause or "").startswith(f"Function not found: {arn} (Service: AWSLambda; Status Code: 404;")


async def test_unknown_function_is_not_caught_as_lambda_unknown():
    d = invoke({"FunctionName": "missing"}, Catch=[{"ErrorEquals": ["Lambda.Unknown"], "Next": "H"}])
    d["States"]["H"] = {"Type": "Pass", "End": True}
    r = await run(d, {}, functions={"echo": echo})
    assert r.status == "FAILED" and r.error == "Lambda.ResourceNotFoundException"


def too_big(event):
    return bytes(257 * 1024)


async def test_oversized_result_names_the_function_arn_for_a_lambda_resource():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:big"
    r = await run(single({"Type": "Task", "Resource": arn}), {}, functions={arn: too_big})
    assert r.error == "States.DataLimitExceeded"
    assert r.cause == (f"The state/task '{arn}' returned a result with a size exceeding the maximum number of "
                       "bytes service limit.")


async def test_oversized_result_names_lambda_for_the_invoke_integration():
    r = await run(invoke({"FunctionName": "big"}), {}, functions={"big": too_big})
    assert r.error == "States.DataLimitExceeded"
    assert (r.cause or "").startswith("The state/task 'lambda' returned a result with a size exceeding")


class OrderRejected(Exception):
    pass


def reject(event):
    raise OrderRejected("no stock")


async def test_lambda_resource_error_payload_is_pythons_runtime_text():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:reject"
    r = await run(single({"Type": "Task", "Resource": arn}), {}, functions={arn: reject})
    assert r.error == "OrderRejected"
    cause = json.loads(r.cause or "")
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert r.cause == json.dumps(cause)  # Python's json.dumps spacing, as the runtime writes it
    assert cause["errorMessage"] == "no stock" and cause["errorType"] == "OrderRejected"
    assert re.fullmatch(UUID, cause["requestId"])
    # the handler's frames only, in traceback's format (not the engine's own)
    assert cause["stackTrace"] and all(f.startswith("  File ") for f in cause["stackTrace"])
    assert "in reject\n" in cause["stackTrace"][-1]
    assert not any("express/tasks.py" in f for f in cause["stackTrace"])


async def test_invoke_integration_error_payload_is_compact():
    r = await run(invoke({"FunctionName": "reject"}), {}, functions={"reject": reject})
    assert r.error == "OrderRejected"
    cause = json.loads(r.cause or "")
    assert r.cause == json.dumps(cause, separators=(",", ":"))


def test_unrecognized_integration_is_rejected_with_aws_message():
    bad = "arn:aws:states:::dynamodb:query"  # not one of DynamoDB's optimized integrations
    try:
        express.Engine().compile(single({"Type": "Task", "Resource": bad}))
    except express.DefinitionError as e:
        assert [(p.pointer, p.message) for p in e.problems] == [(
            "/States/S/Resource",
            f"The resource provided {bad} is not recognized. The value is not a valid resource ARN, "
            "or the resource is not available in this region.")]
    else:
        raise AssertionError("accepted")
    # a resource AWS knows: the DynamoDB integration runs it; without integrations, express's own explanation
    express.Engine().compile(single({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem"}))
    with pytest.raises(express.DefinitionError) as known:
        express.Engine(integrations=False).compile(
            single({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem"}))
    assert "No function is registered" in known.value.problems[0].message
