"""The optimized integrations (lambda:invoke of a function not bound here, a Lambda function ARN,
sqs:sendMessage, sns:publish, dynamodb:*Item, events:putEvents), end to end through
Engine.compile/execute against the session's moto server (tests/integrations/conftest.py), and a
loopback aiohttp server standing in for Lambda where moto cannot answer as a function does (errors,
logs, never answering)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import express
from express.integrations import AwsSettings, Integrations
from tests.integrations.awssupport import boto, name, task

STATES = "arn:aws:states:::"
V1_CAUSE = r"\(Service: {service}; Status Code: {status}; Error Code: {code}; Request ID: [^;]+; Proxy: null\)$"


def one(state: dict[str, Any], **more: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": "T", "States": {"T": state, **more}}


async def run(integrations: Integrations, definition: dict[str, Any], input: Any = None,
              functions: dict[str, Any] | None = None, clock: Any = None) -> express.ExecutionResult:
    engine = express.Engine(functions=functions, integrations=integrations, clock=clock or express.VirtualClock())
    return await engine.compile(definition).execute({} if input is None else input)


def assert_http_metadata(result: dict[str, Any]) -> None:
    meta = result["SdkHttpMetadata"]
    assert meta["HttpStatusCode"] == 200
    assert all(isinstance(v, list) for v in meta["AllHttpHeaders"].values())
    assert {k: v[-1] for k, v in meta["AllHttpHeaders"].items()} == meta["HttpHeaders"]
    assert list(meta["HttpHeaders"]) == sorted(meta["HttpHeaders"], key=str.lower)
    assert "Content-Length" in meta["HttpHeaders"]  # as the server wrote it, not botocore's lower case
    assert result["SdkResponseMetadata"]["RequestId"]
    assert list(result) == sorted(result)


# ------------------------------------------------------------------------------------------- SQS
async def test_sqs_send_message_sends_json_as_text(integrations: Integrations, moto_env: str) -> None:
    sqs = boto("sqs", moto_env)
    queue = sqs.create_queue(QueueName=name("opt"))["QueueUrl"]
    r = await run(integrations, one(task(STATES + "sqs:sendMessage", {
        "QueueUrl": queue, "MessageBody.$": "$.body",
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "order"}}})),
        {"body": {"order": 7, "items": ["a"]}})
    assert r.status == "SUCCEEDED", r.cause
    assert set(r.output) == {"MD5OfMessageAttributes", "MD5OfMessageBody", "MessageId", "SdkHttpMetadata",
                             "SdkResponseMetadata"}
    assert r.output["MD5OfMessageBody"] == hashlib.md5(b'{"order":7,"items":["a"]}').hexdigest()
    assert_http_metadata(r.output)
    [message] = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    assert message["Body"] == '{"order":7,"items":["a"]}'
    assert message["MessageAttributes"]["kind"]["StringValue"] == "order"


async def test_sqs_errors_by_the_1x_sdks_names(integrations: Integrations, moto_env: str) -> None:
    queue = boto("sqs", moto_env).create_queue(QueueName=name("opt"))["QueueUrl"]
    r = await run(integrations, {"StartAt": "Absent", "States": {
        "Absent": task(STATES + "sqs:sendMessage", {"QueueUrl": queue + "-none", "MessageBody": "x"},
                       Catch=[{"ErrorEquals": ["SQS.QueueDoesNotExistException"], "ResultPath": "$.absent",
                               "Next": "NoBody"}], Next="NoBody"),
        "NoBody": task(STATES + "sqs:sendMessage", {"QueueUrl": queue, "MessageBody": None},
                       Catch=[{"ErrorEquals": ["SQS.AmazonSQSException"], "ResultPath": "$.nobody",
                               "Next": "Done"}], Next="Done"),
        "Done": {"Type": "Succeed"}}})
    assert r.status == "SUCCEEDED", r.cause
    absent = r.output["absent"]
    assert absent["Error"] == "SQS.QueueDoesNotExistException"
    assert re.match(r"^The specified queue does not exist\. " + V1_CAUSE.format(
        service="AmazonSQS", status=400, code=r"AWS\.SimpleQueueService\.NonExistentQueue"), absent["Cause"])
    assert r.output["nobody"]["Error"] == "SQS.AmazonSQSException"
    assert "MessageBody" in r.output["nobody"]["Cause"]


# ------------------------------------------------------------------------------------------- SNS
async def test_sns_publish(integrations: Integrations, moto_env: str) -> None:
    sns, sqs = boto("sns", moto_env), boto("sqs", moto_env)
    topic = sns.create_topic(Name=name("opt"))["TopicArn"]
    queue = sqs.create_queue(QueueName=name("opt"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    r = await run(integrations, one(task(STATES + "sns:publish", {"TopicArn": topic, "Message": {"Message": "Hi!"}})))
    assert r.status == "SUCCEEDED", r.cause
    assert set(r.output) == {"MessageId", "SdkHttpMetadata", "SdkResponseMetadata"}
    assert_http_metadata(r.output)
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert message["Body"] == '{"Message":"Hi!"}'

    r = await run(integrations, one(task(STATES + "sns:publish", {"TopicArn": topic + "-none", "Message": "x"})))
    assert (r.status, r.error) == ("FAILED", "SNS.NotFoundException")
    assert re.search(V1_CAUSE.format(service="AmazonSNS", status=404, code="NotFound"), r.cause), r.cause


# -------------------------------------------------------------------------------------- DynamoDB
def _table(endpoint: str) -> str:
    table = name("opt")
    boto("dynamodb", endpoint).create_table(
        TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    return table


async def test_dynamodb_put_update_get_delete(integrations: Integrations, moto_env: str) -> None:
    table = _table(moto_env)
    key = {"id": {"S": "id1"}}
    r = await run(integrations, {"StartAt": "Put", "States": {
        "Put": task(STATES + "dynamodb:putItem", {"TableName": table, "Item": {"id": {"S": "id1"},
                                                                                "data": {"S": "Hello"}}},
                    ResultPath="$.put", Next="Update"),
        "Update": task(STATES + "dynamodb:updateItem", {
            "TableName": table, "Key": key, "UpdateExpression": "set S=:r",
            "ExpressionAttributeValues": {":r": {"S": "Updated"}}, "ReturnValues": "UPDATED_NEW"},
            ResultPath="$.update", Next="Get"),
        "Get": task(STATES + "dynamodb:getItem", {"TableName": table, "Key": key}, ResultPath="$.get",
                    Next="Delete"),
        "Delete": task(STATES + "dynamodb:deleteItem", {"TableName": table, "Key": key, "ReturnValues": "ALL_OLD"},
                       ResultPath="$.delete")}})
    assert r.status == "SUCCEEDED", r.cause
    out = r.output
    assert set(out["put"]) == {"SdkHttpMetadata", "SdkResponseMetadata"}
    assert out["update"]["Attributes"] == {"S": {"S": "Updated"}}
    assert out["get"]["Item"] == {"id": {"S": "id1"}, "data": {"S": "Hello"}, "S": {"S": "Updated"}}
    assert out["delete"]["Attributes"]["S"] == {"S": "Updated"}
    for step in ("put", "update", "get", "delete"):
        assert_http_metadata(out[step])
    assert "Item" not in boto("dynamodb", moto_env).get_item(TableName=table, Key=key)


async def test_dynamodb_conditional_check_failed_is_retried_and_caught(integrations: Integrations,
                                                                     moto_env: str) -> None:
    table = _table(moto_env)
    ddb = boto("dynamodb", moto_env)
    for taken in ("0", "1"):
        ddb.put_item(TableName=table, Item={"id": {"S": taken}})
    # each attempt writes the key of its retry count: attempts 0 and 1 find theirs taken
    put = task(STATES + "dynamodb:putItem", {
        "TableName": table, "Item": {"id": {"S.$": "States.Format('{}', $$.State.RetryCount)"}},
        "ConditionExpression": "attribute_not_exists(id)"},
        Retry=[{"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"], "MaxAttempts": 2, "IntervalSeconds": 1}],
        Catch=[{"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"], "Next": "Caught"}])
    r = await run(integrations, one(put, Caught={"Type": "Fail", "Error": "Caught"}))
    assert r.status == "SUCCEEDED", r.cause
    assert "Item" in ddb.get_item(TableName=table, Key={"id": {"S": "2"}})

    put["Retry"][0]["MaxAttempts"] = 1  # attempts 0 and 1 only: caught
    r = await run(integrations, one(put, Caught={"Type": "Pass", "End": True}))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["Error"] == "DynamoDB.ConditionalCheckFailedException"
    assert re.match(r"^The conditional request failed " + V1_CAUSE.format(
        service="AmazonDynamoDBv2", status=400, code="ConditionalCheckFailedException"), r.output["Cause"])


# ----------------------------------------------------------------------------------- EventBridge
async def test_events_put_events_appends_the_arns_and_sends_detail_as_text(integrations: Integrations,
                                                                          moto_env: str) -> None:
    events, sqs = boto("events", moto_env), boto("sqs", moto_env)
    source = name("opt.source")
    queue = sqs.create_queue(QueueName=name("opt"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = name("rule")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    engine = express.Engine(integrations=integrations, clock=express.VirtualClock())
    machine = engine.compile(one(task(STATES + "events:putEvents", {"Entries": [
        {"Detail": {"Message": "Hello"}, "DetailType": "greeting", "Source": source,
         "Resources": ["arn:aws:s3:::mine"]}]})), "pub")
    r = await machine.execute({}, arn="arn:aws:states:us-east-1:000000000000:express:pub:run1:x")
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["FailedEntryCount"] == 0 and set(r.output) == {"Entries", "FailedEntryCount"}
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    event = json.loads(message["Body"])
    assert event["detail"] == {"Message": "Hello"} and event["detail-type"] == "greeting"
    assert event["resources"] == ["arn:aws:s3:::mine", machine.arn,
                                  "arn:aws:states:us-east-1:000000000000:express:pub:run1:x"]


async def test_a_failed_entry_fails_the_state(integrations: Integrations) -> None:
    r = await run(integrations, one(task(STATES + "events:putEvents", {"Entries": [
        {"Detail": {"Message": "HelloWorld"}, "DetailType": "t", "Source": "some.source"},
        {"Detail": {"Message": "HelloWorld"}, "DetailType": "t"}]})))
    assert (r.status, r.error) == ("FAILED", "EventBridge.FailedEntry")
    cause = json.loads(r.cause)
    assert list(cause) == ["Entries", "FailedEntryCount"] and cause["FailedEntryCount"] == 1
    assert "EventId" in cause["Entries"][0] and "ErrorCode" in cause["Entries"][1]


# ---------------------------------------------------------------------------------------- Lambda
class FakeLambda:
    """Lambda's Invoke API on a loopback port (moto needs docker to run a function), answering as
    ``answer(request body)`` says."""

    def __init__(self, answer: Callable[[bytes], Awaitable[web.Response]]) -> None:
        self.answer = answer
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.closing = asyncio.Event()  # set on exit: a handler that never answers returns then

    async def __aenter__(self) -> FakeLambda:
        async def invoke(request: web.Request) -> web.Response:
            return await self.answer(await request.read())

        app = web.Application()
        app.router.add_post("/2015-03-31/functions/{name}/invocations", invoke)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.runner is not None
        self.closing.set()
        await self.runner.cleanup()


ERROR_BODY = b'{"errorMessage": "boom", "errorType": "ValueError", "requestId": "r1", "stackTrace": []}'
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:fake"


async def test_lambda_invoke_of_a_function_not_bound_here(moto_env: str) -> None:
    async def echo(body: bytes) -> web.Response:
        return web.Response(body=body, content_type="application/json",
                            headers={"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": "req-1"})

    async with FakeLambda(echo) as fake:
        integ = Integrations(aws=AwsSettings(endpoints={"lambda": fake.url}))
        try:
            r = await run(integ, one(task(STATES + "lambda:invoke", {"FunctionName": FUNCTION, "Payload.$": "$"})),
                          {"order": 7})
            assert r.status == "SUCCEEDED", r.cause
            out = r.output
            assert list(out) == ["ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata", "StatusCode"]
            assert (out["Payload"], out["StatusCode"], out["ExecutedVersion"]) == ({"order": 7}, 200, "$LATEST")
            assert out["SdkHttpMetadata"]["HttpHeaders"]["X-Amz-Executed-Version"] == "$LATEST"
            assert out["SdkResponseMetadata"] == {"RequestId": "req-1"}
            assert_http_metadata(out)

            r = await run(integ, one(task(FUNCTION)), {"order": 8})  # the function's ARN as the Resource
            assert (r.status, r.output) == ("SUCCEEDED", {"order": 8})
        finally:
            await integ.aclose()


async def test_a_function_bound_here_still_runs_here(integrations: Integrations) -> None:
    r = await run(integrations, one(task(STATES + "lambda:invoke", {"FunctionName": "double", "Payload": {"n": 2}})),
                  functions={"double": lambda e: {"n": e["n"] * 2}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["Payload"] == {"n": 4}


async def test_a_function_that_does_not_exist(integrations: Integrations) -> None:
    missing = "arn:aws:lambda:us-east-1:123456789012:function:" + name("absent")
    catch = [{"ErrorEquals": ["Lambda.ResourceNotFoundException"], "Next": "Done"}]
    for state in (task(STATES + "lambda:invoke", {"FunctionName": missing, "Payload": {}}, Catch=catch, Next="Done"),
                  task(missing, Catch=catch, Next="Done")):
        r = await run(integrations, one(state, Done={"Type": "Pass", "End": True}))
        assert r.status == "SUCCEEDED", r.cause
        assert r.output["Error"] == "Lambda.ResourceNotFoundException"
        assert re.match(rf"^Function not found: {re.escape(missing)} " + V1_CAUSE.format(
            service="AWSLambda", status=404, code="ResourceNotFoundException"), r.output["Cause"]), r.output["Cause"]


async def test_a_function_error_is_named_by_its_error_type(moto_env: str) -> None:
    async def fail(body: bytes) -> web.Response:
        return web.Response(body=ERROR_BODY, content_type="application/json",
                            headers={"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"})

    async with FakeLambda(fail) as fake:
        integ = Integrations(aws=AwsSettings(endpoints={"lambda": fake.url}))
        try:
            r = await run(integ, one(task(STATES + "lambda:invoke", {"FunctionName": FUNCTION, "Payload": {}})))
            assert (r.status, r.error) == ("FAILED", "ValueError")
            assert r.cause == '{"errorMessage":"boom","errorType":"ValueError","requestId":"r1","stackTrace":[]}'
            r = await run(integ, one(task(FUNCTION)))
            assert (r.status, r.error, r.cause) == ("FAILED", "ValueError", ERROR_BODY.decode())
        finally:
            await integ.aclose()


async def test_lambda_invoke_request_and_log_tail(moto_env: str) -> None:
    seen: list[bytes] = []
    log = base64.b64encode(b"START RequestId: r1\n").decode()

    async def echo(body: bytes) -> web.Response:
        seen.append(body)
        return web.Response(body=b'"done"', content_type="application/json",
                            headers={"X-Amz-Executed-Version": "3", "X-Amz-Log-Result": log})

    async with FakeLambda(echo) as fake:
        integ = Integrations(aws=AwsSettings(endpoints={"lambda": fake.url}))
        try:
            r = await run(integ, one(task(STATES + "lambda:invoke", {
                "FunctionName": FUNCTION + ":3", "Payload": '{"raw": true}', "LogType": "Tail"})))
            assert r.status == "SUCCEEDED", r.cause
            assert (r.output["Payload"], r.output["ExecutedVersion"], r.output["LogResult"]) == ("done", "3", log)
            assert r.output["SdkHttpMetadata"]["HttpHeaders"]["X-Amz-Log-Result"] == log
            r = await run(integ, one(task(STATES + "lambda:invoke", {"FunctionName": FUNCTION})))
            assert r.status == "SUCCEEDED", r.cause
            assert seen == [b'{"raw": true}', b"{}"]  # a string Payload is the body itself; none is {}
        finally:
            await integ.aclose()


async def test_the_tasks_timeout_bounds_an_invocation(moto_env: str) -> None:
    async def never(body: bytes) -> web.Response:
        await fake.closing.wait()
        return web.Response()

    async with FakeLambda(never) as fake:
        integ = Integrations(aws=AwsSettings(endpoints={"lambda": fake.url}))
        try:
            r = await run(integ, one(task(FUNCTION, TimeoutSeconds=1)), clock=express.RealClock())
            assert (r.status, r.error) == ("FAILED", "States.Timeout")
        finally:
            await integ.aclose()


def test_an_action_aws_has_no_optimized_integration_for_is_a_definition_error() -> None:
    from express.asl.errors import DefinitionError

    with pytest.raises(DefinitionError) as e:
        express.Engine(integrations=Integrations()).compile(one(task(STATES + "dynamodb:query", {})))
    assert "is not recognized" in e.value.problems[0].message


async def test_without_an_aws_account_an_unbound_function_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    # no credentials anywhere and no endpoint: only the functions bound here exist
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    integ = Integrations()
    try:
        r = await run(integ, one(task(STATES + "lambda:invoke", {"FunctionName": "missing"})))
        assert (r.status, r.error) == ("FAILED", "Lambda.ResourceNotFoundException")
        assert r.cause.startswith("Function not found: arn:aws:lambda:us-east-1:000000000000:function:missing:$LATEST "
                                  "(Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException;")
        r = await run(integ, one(task(FUNCTION)))
        assert (r.status, r.error) == ("FAILED", "Lambda.ResourceNotFoundException")
        assert r.cause.startswith(f"Function not found: {FUNCTION}:$LATEST ")
        # other services fail for want of credentials
        r = await run(integ, one(task(STATES + "sqs:sendMessage", {"QueueUrl": "https://sqs/q", "MessageBody": "x"})))
        assert (r.status, r.error) == ("FAILED", "SQS.SdkClientException")
        assert r.cause.startswith("Unable to load credentials from any of the providers in the chain")
    finally:
        await integ.aclose()
