"""The AWS SDK integrations (``arn:aws:states:::aws-sdk:<service>:<action>``) and the client pool they
share with the optimized ones (express.integrations.aws), end to end through Engine.compile/execute
against the session's moto server (tests/integrations/conftest.py), plus a loopback aiohttp server
for what moto cannot do (never answer)."""
from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import pytest
from aiohttp import web

import express
from express.asl.errors import DefinitionError
from express.integrations import AwsSettings, Integrations
from express.integrations import aws as aws_pool
from express.integrations.aws_sdk import iso_timestamp, java_exception_name, java_service_name, pascal_case
from tests.integrations.awssupport import boto, name, task

SDK = "arn:aws:states:::aws-sdk:"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z$")


def chain(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A definition running the states in order (each but the last goes Next to the following)."""
    out: dict[str, Any] = {}
    for (n, s), following in zip(states, [*[n for n, _ in states[1:]], None], strict=True):
        s = dict(s)
        if following is not None and "Next" not in s and s.get("Type") not in ("Succeed", "Fail"):
            s.pop("End", None)
            s["Next"] = following
        out[n] = s
    return {"StartAt": states[0][0], "States": out}


async def run(integrations: Integrations, definition: dict[str, Any], input: Any = None,
              clock: Any = None) -> express.ExecutionResult:
    engine = express.Engine(integrations=integrations, clock=clock or express.VirtualClock())
    return await engine.compile(definition).execute({} if input is None else input)


# ------------------------------------------------------------------------------------------- S3
async def test_s3_put_and_get_object_as_aws_returns_them(integrations: Integrations, moto_env: str) -> None:
    bucket = name("sdk")
    r = await run(integrations, chain(
        ("Create", task(SDK + "s3:createBucket", {"Bucket": bucket}, ResultPath=None)),
        ("PutJson", task(SDK + "s3:putObject", {"Bucket": bucket, "Key": "doc", "Body.$": "$.doc"},
                         ResultPath="$.put")),
        ("PutText", task(SDK + "s3:putObject", {"Bucket": bucket, "Key": "text", "Body": "text data"},
                         ResultPath=None)),
        ("Get", task(SDK + "s3:getObject", {"Bucket": bucket, "Key": "doc"}, ResultPath="$.got")),
    ), {"doc": {"Dict": "Value"}})
    assert r.status == "SUCCEEDED", r.cause
    put, got = r.output["put"], r.output["got"]
    # the Body is the JSON text of the value, as AWS stores it
    digest = hashlib.md5(b'{"Dict":"Value"}').hexdigest()
    assert put["ETag"] == f'"{digest}"'
    assert "ResponseMetadata" not in put and "SdkHttpMetadata" not in put
    assert got["Body"] == '{"Dict":"Value"}'
    assert got["ContentLength"] == 16 and got["Metadata"] == {}
    assert ISO_UTC.match(got["LastModified"]), got["LastModified"]
    keys = list(got)
    assert keys[-1] == "Body" and keys[:-1] == sorted(keys[:-1])  # AWS: alphabetical, the payload last
    stored = boto("s3", moto_env).get_object(Bucket=bucket, Key="text")["Body"].read()
    assert stored == b'"text data"'  # a string Body is stored as a JSON string (AWS-recorded ETag)


async def test_missing_key_and_bucket_are_caught_by_their_names(integrations: Integrations) -> None:
    bucket = name("sdk")
    catch = [{"ErrorEquals": ["S3.NoSuchKeyException"], "ResultPath": "$.key", "Next": "NoBucket"}]
    r = await run(integrations, {"StartAt": "Create", "States": {
        "Create": task(SDK + "s3:createBucket", {"Bucket": bucket}, ResultPath=None, Next="NoKey"),
        "NoKey": task(SDK + "s3:getObject", {"Bucket": bucket, "Key": "absent"}, Catch=catch, Next="NoBucket"),
        "NoBucket": task(SDK + "s3:listObjects", {"Bucket": bucket + "-none"},
                         Catch=[{"ErrorEquals": ["S3.NoSuchBucketException"], "ResultPath": "$.bucket",
                                 "Next": "Done"}], Next="Done"),
        "Done": {"Type": "Succeed"}}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["key"]["Error"] == "S3.NoSuchKeyException"
    assert re.match(r"^The specified key does not exist\. \(Service: S3, Status Code: 404, Request ID: [^,()]+"
                    r"(, Extended Request ID: [^()]+)?\)$", r.output["key"]["Cause"]), r.output["key"]["Cause"]
    assert r.output["bucket"]["Error"] == "S3.NoSuchBucketException"
    assert r.output["bucket"]["Cause"].startswith("The specified bucket does not exist (Service: S3, Status Code: 404")


async def test_a_result_over_the_payload_limit_fails_the_state(integrations: Integrations, moto_env: str) -> None:
    bucket = name("sdk")
    s3 = boto("s3", moto_env)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="big", Body=b"x" * (300 * 1024))
    r = await run(integrations, {"StartAt": "Get", "States": {
        "Get": task(SDK + "s3:getObject", {"Bucket": bucket, "Key": "big"})}})
    assert (r.status, r.error) == ("FAILED", "States.DataLimitExceeded")
    assert "exceeding the maximum number of bytes service limit" in r.cause


# ------------------------------------------------------------------------------------ SQS, DynamoDB
async def test_sqs_errors_are_named_by_their_shape(integrations: Integrations, moto_env: str) -> None:
    queue = boto("sqs", moto_env).create_queue(QueueName=name("sdk"))["QueueUrl"]
    r = await run(integrations, chain(
        ("Send", task(SDK + "sqs:sendMessage", {"QueueUrl": queue, "MessageBody": "hi"}, ResultPath="$.sent")),
        ("Missing", task(SDK + "sqs:getQueueUrl", {"QueueName": name("absent")},
                         Catch=[{"ErrorEquals": ["Sqs.QueueDoesNotExistException"], "ResultPath": "$.err",
                                 "Next": "Done"}])),
        ("Done", {"Type": "Succeed"}),
    ))
    assert r.status == "SUCCEEDED", r.cause
    assert sorted(r.output["sent"]) == ["MD5OfMessageBody", "MessageId"]
    assert r.output["sent"]["MD5OfMessageBody"] == hashlib.md5(b"hi").hexdigest()
    assert r.output["err"]["Error"] == "Sqs.QueueDoesNotExistException"
    assert re.match(r"^The specified queue does not exist\. \(Service: Sqs, Status Code: 400, Request ID: [^()]+\)$",
                    r.output["err"]["Cause"])


async def test_a_parameter_botocore_requires_fails_as_the_service_would(integrations: Integrations,
                                                                        moto_env: str) -> None:
    queue = boto("sqs", moto_env).create_queue(QueueName=name("sdk"))["QueueUrl"]
    r = await run(integrations, {"StartAt": "Send", "States": {
        "Send": task(SDK + "sqs:sendMessage", {"QueueUrl": queue, "MessageBody": None},
                     Catch=[{"ErrorEquals": ["Sqs.SqsException"], "Next": "Done"}], Next="Done"),
        "Done": {"Type": "Pass", "End": True}}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["Error"] == "Sqs.SqsException"
    assert 'MessageBody' in r.output["Cause"] and "Status Code: 400" in r.output["Cause"]


def _ddb_table(endpoint: str) -> str:
    table = name("sdk")
    boto("dynamodb", endpoint).create_table(
        TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    return table


async def test_dynamodb_conditional_check_failed_is_retried_and_caught(integrations: Integrations,
                                                                     moto_env: str) -> None:
    table = _ddb_table(moto_env)
    ddb = boto("dynamodb", moto_env)
    for taken in ("0", "1"):
        ddb.put_item(TableName=table, Item={"id": {"S": taken}})
    # each attempt writes the key of its retry count: attempts 0 and 1 find their key taken
    put = task(SDK + "dynamodb:putItem", {
        "TableName": table, "Item": {"id": {"S.$": "States.Format('{}', $$.State.RetryCount)"}},
        "ConditionExpression": "attribute_not_exists(id)"},
        Retry=[{"ErrorEquals": ["DynamoDb.ConditionalCheckFailedException"], "MaxAttempts": 3,
                "IntervalSeconds": 1}])
    r = await run(integrations, {"StartAt": "Put", "States": {"Put": put}})
    assert r.status == "SUCCEEDED", r.cause
    assert "Item" in ddb.get_item(TableName=table, Key={"id": {"S": "2"}})

    caught = task(SDK + "dynamodb:putItem", {"TableName": table, "Item": {"id": {"S": "0"}},
                                             "ConditionExpression": "attribute_not_exists(id)"},
                  Catch=[{"ErrorEquals": ["DynamoDb.ConditionalCheckFailedException"], "Next": "Done"}], Next="Done")
    r = await run(integrations, {"StartAt": "Put", "States": {"Put": caught, "Done": {"Type": "Pass", "End": True}}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["Error"] == "DynamoDb.ConditionalCheckFailedException"
    assert r.output["Cause"].startswith("The conditional request failed (Service: DynamoDb, Status Code: 400, ")


async def test_dynamodb_query_result(integrations: Integrations, moto_env: str) -> None:
    table = _ddb_table(moto_env)
    boto("dynamodb", moto_env).put_item(TableName=table, Item={"id": {"S": "id1"}, "data": {"S": "HelloWorld"}})
    r = await run(integrations, {"StartAt": "Q", "States": {"Q": task(SDK + "dynamodb:query", {
        "TableName": table, "KeyConditionExpression": "id = :id", "ExpressionAttributeValues": {":id": {"S": "id1"}}})}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"Count": 1, "Items": [{"id": {"S": "id1"}, "data": {"S": "HelloWorld"}}], "ScannedCount": 1}


# --------------------------------------------------------------------------- other services, names
async def test_eventbridge_is_botocores_events(integrations: Integrations) -> None:
    r = await run(integrations, {"StartAt": "Put", "States": {"Put": task(SDK + "eventbridge:putEvents", {
        "Entries": [{"Source": "my.source", "DetailType": "t", "Detail": "{\"a\": 1}"}]})}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["FailedEntryCount"] == 0 and len(r.output["Entries"]) == 1 and "EventId" in r.output["Entries"][0]


async def test_camel_case_members_are_pascal_case_and_timestamps_iso(integrations: Integrations) -> None:
    # API Gateway's model names its members in camelCase (name, createdDate)
    api = name("api")
    r = await run(integrations, chain(
        ("Create", task(SDK + "apigateway:createRestApi", {"Name": api}, ResultPath="$.api")),
        ("Get", task(SDK + "apigateway:getRestApi", {"RestApiId.$": "$.api.Id"}, ResultPath="$.got")),
    ))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["api"]["Name"] == api and r.output["got"]["Id"] == r.output["api"]["Id"]
    assert ISO_UTC.match(r.output["api"]["CreatedDate"]), r.output["api"]["CreatedDate"]


async def test_blobs_round_trip_as_base64(integrations: Integrations, moto_env: str) -> None:
    key = boto("kms", moto_env).create_key()["KeyMetadata"]["KeyId"]
    r = await run(integrations, chain(
        ("Encrypt", task(SDK + "kms:encrypt", {"KeyId": key, "Plaintext": "hello"}, ResultPath="$.enc")),
        ("Decrypt", task(SDK + "kms:decrypt", {"CiphertextBlob.$": "$.enc.CiphertextBlob"}, ResultPath="$.dec")),
    ))
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["dec"]["Plaintext"] == "aGVsbG8="  # base64 of b"hello"


async def test_step_functions_service_names_map_to_botocores(integrations: Integrations) -> None:
    engine = express.Engine(integrations=integrations)
    for resource in ("sfn:listStateMachines", "eventbridge:listRules", "cloudwatchlogs:describeLogGroups",
                     "apigatewayv2:getApis", "acmpca:listCertificateAuthorities", "cognitoidentityprovider:listUserPools",
                     "elasticloadbalancingv2:describeLoadBalancers"):
        engine.compile({"StartAt": "A", "States": {"A": task(SDK + resource)}})


@pytest.mark.parametrize("resource", [SDK + "nosuchservice:listThings", SDK + "s3:noSuchAction",
                                      SDK + "s3:selectObjectContent", SDK + "s3"])
def test_an_unknown_service_or_action_is_a_definition_error(resource: str) -> None:
    engine = express.Engine(integrations=Integrations())
    with pytest.raises(DefinitionError) as e:
        engine.compile({"StartAt": "A", "States": {"A": task(resource)}})
    [problem] = e.value.problems
    assert problem.pointer == "/States/A/Resource"
    assert problem.message == (f"The resource provided {resource} is not recognized. The value is not a valid "
                               "resource ARN, or the resource is not available in this region.")


def test_java_sdk_names() -> None:
    assert [java_service_name(s) for s in ("SFN", "DynamoDB", "S3", "SQS", "Secrets Manager", "ACM PCA",
                                           "EventBridge", "ApiGatewayV2", "Lambda", "EC2")] == [
        "Sfn", "DynamoDb", "S3", "Sqs", "SecretsManager", "AcmPca", "EventBridge", "ApiGatewayV2", "Lambda", "Ec2"]
    assert java_exception_name("NoSuchKey") == "NoSuchKeyException"
    assert java_exception_name("ConditionalCheckFailedException") == "ConditionalCheckFailedException"
    assert java_exception_name("KMSInvalidStateException") == "KmsInvalidStateException"
    assert java_exception_name("InternalFault") == "InternalException"
    assert pascal_case("ACMSuccess") == "AcmSuccess"


def test_timestamps_as_the_java_sdk_prints_them() -> None:
    import datetime

    utc = datetime.UTC
    assert iso_timestamp(datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=utc)) == "2024-05-01T12:00:00Z"
    assert iso_timestamp(datetime.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=utc)) == "2024-05-01T12:00:00.123Z"
    assert iso_timestamp(datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=utc)) == "2024-05-01T12:00:00.123456Z"
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    assert iso_timestamp(datetime.datetime(2024, 5, 1, 14, 0, 0, tzinfo=plus2)) == "2024-05-01T12:00:00Z"


# --------------------------------------------------------------------------------- bad parameters
@pytest.mark.parametrize(("parameters", "problem"), [
    ({"Bucket": "b", "Kex": "k"}, "The field 'Kex' is not supported by Step Functions"),
    ({"Bucket": "b", "MaxKeys": "many"}, "The value of the field 'MaxKeys' has an invalid format"),
    ({"Bucket": "b", "FetchOwner": "maybe"}, "The value of the field 'FetchOwner' has an invalid format"),
])
async def test_parameters_the_api_cannot_take_fail_with_states_runtime(integrations: Integrations,
                                                                      parameters: dict[str, Any],
                                                                      problem: str) -> None:
    # States.Runtime ends the execution: States.ALL does not catch it (AWS)
    r = await run(integrations, {"StartAt": "List", "States": {
        "List": task(SDK + "s3:listObjectsV2", parameters, Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
                     Next="Done"),
        "Done": {"Type": "Succeed"}}})
    assert (r.status, r.error) == ("FAILED", "States.Runtime")
    assert r.cause == ("An error occurred while executing the state 'List' (entered at the event id #2). The "
                       f"Parameters '{express_json(parameters)}' could not be used to start the Task: [{problem}]")


def express_json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


async def test_a_key_in_any_case_names_the_member(integrations: Integrations, moto_env: str) -> None:
    bucket = name("sdk")
    boto("s3", moto_env).create_bucket(Bucket=bucket)
    r = await run(integrations, {"StartAt": "List", "States": {
        "List": task(SDK + "s3:listObjectsV2", {"bucket": bucket, "MAXKEYS": "5"})}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output["MaxKeys"] == 5 and r.output["Name"] == bucket


# ------------------------------------------------------------------------------------ credentials
async def test_the_tasks_role_is_assumed_where_roles_are(moto_env: str) -> None:
    role = boto("iam", moto_env).create_role(RoleName=name("role"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = {"StartAt": "Who", "States": {"Who": task(SDK + "sts:getCallerIdentity", {},
                                                           Credentials={"RoleArn.$": "$.role"})}}
    in_jsonata = {"QueryLanguage": "JSONata", "StartAt": "Who", "States": {"Who": {
        "Type": "Task", "Resource": SDK + "sts:getCallerIdentity", "Arguments": {},
        "Credentials": {"RoleArn": "{% $states.input.role %}"}, "End": True}}}
    plain = {"StartAt": "Who", "States": {"Who": task(SDK + "sts:getCallerIdentity", {})}}
    integ = Integrations()
    # an emulator that implements STS: assume anyway (by default, only an endpoint of AWS's own)
    integ.pooled("aws", lambda: aws_pool.AwsClients(integ.aws_settings, assume_roles=True))
    try:
        for machine in (definition, definition, in_jsonata):
            r = await run(integ, machine, {"role": role})
            assert r.status == "SUCCEEDED", r.cause
            assert r.output["Arn"].endswith(f":assumed-role/{role.rsplit('/', 1)[1]}/express-states"), r.output
        r = await run(integ, plain)
        assert ":assumed-role/" not in r.output["Arn"]
    finally:
        await integ.aclose()


async def test_against_a_configured_endpoint_the_role_is_not_assumed(integrations: Integrations) -> None:
    r = await run(integrations, {"StartAt": "Who", "States": {"Who": task(
        SDK + "sts:getCallerIdentity", {}, Credentials={"RoleArn": "arn:aws:iam::123456789012:role/other"})}})
    assert r.status == "SUCCEEDED", r.cause
    assert ":assumed-role/" not in r.output["Arn"]


# ---------------------------------------------------------------------------------- the client pool
async def test_the_aws_settings_endpoint_and_region(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = name("sdk")
    integ = Integrations(aws=AwsSettings(endpoint_url=moto_endpoint, region="eu-west-1"))
    try:
        r = await run(integ, chain(
            ("Create", task(SDK + "s3:createBucket", {
                "Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}, ResultPath=None)),
            ("Where", task(SDK + "s3:getBucketLocation", {"Bucket": bucket})),
        ))
        assert r.status == "SUCCEEDED", r.cause
        assert r.output["LocationConstraint"] == "eu-west-1"
    finally:
        await integ.aclose()


def test_region_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    assert aws_pool.AwsClients(AwsSettings()).region() == "us-east-1"
    assert aws_pool.AwsClients(AwsSettings()).region("ap-south-1") == "ap-south-1"  # the state machine's
    assert aws_pool.AwsClients(AwsSettings(region="eu-west-3")).region("ap-south-1") == "eu-west-3"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert aws_pool.AwsClients(AwsSettings()).region("ap-south-1") == "sa-east-1"


async def test_one_client_per_service_even_when_asked_concurrently(integrations: Integrations) -> None:
    pool = aws_pool.clients(integrations)
    a, b, c = await asyncio.gather(pool.client("s3"), pool.client("s3"), pool.client("sqs"))
    assert a is b and a is not c


# ---------------------------------------------------------------------------------------- timeouts
async def test_the_tasks_timeout_bounds_a_call_that_never_answers(moto_env: str) -> None:
    closing = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await closing.wait()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    integ = Integrations(aws=AwsSettings(endpoints={"s3": f"http://127.0.0.1:{port}"}))
    try:
        r = await run(integ, {"StartAt": "Get", "States": {"Get": task(
            SDK + "s3:getObject", {"Bucket": "b", "Key": "k"}, TimeoutSeconds=1)}}, clock=express.RealClock())
        assert (r.status, r.error) == ("FAILED", "States.Timeout")
    finally:
        await integ.aclose()
        closing.set()
        await runner.cleanup()


async def test_no_answer_is_an_sdk_client_exception(moto_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support import free_port

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    integ = Integrations(aws=AwsSettings(endpoints={"s3": f"http://127.0.0.1:{free_port()}"}))  # nobody listens
    try:
        r = await run(integ, {"StartAt": "Get", "States": {"Get": task(SDK + "s3:listBuckets", {})}})
        assert (r.status, r.error) == ("FAILED", "S3.SdkClientException")
        assert r.cause.startswith("Unable to execute HTTP request: Could not connect to the endpoint URL")
    finally:
        await integ.aclose()
