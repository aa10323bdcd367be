"""``express serve`` with a Step Functions Local mock config (``SFN_MOCK_CONFIG``, as LocalStack
reads it): StartExecution/StartSyncExecution of ``ARN#CASE`` run that test case; a real server
process, driven by boto3."""
from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from httpsupport import make_client

from tests.support import serve, stop, wait_log

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "mocks"
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:LambdaSQSIntegration"
SQS_SUCCESS = {"MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
               "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"}
LAMBDA_SUCCESS = {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}
HTTP_ONLY = ("--no-kafka", "--http", "127.0.0.1:0")
TOML = """[engine]
virtual_time = true
[functions]
"arn:aws:states:::sqs:sendMessage" = "tests.fixtures.mocks.sqs_stub:send_message"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, pathlib.Path]]:
    root = tmp_path_factory.mktemp("mockserve")
    (root / "config" / "machines").mkdir(parents=True)
    (root / "config" / "machines" / "LambdaSQSIntegration.asl.json").write_text(
        (FIXTURES / "LambdaSQSIntegration.asl.json").read_text())
    (root / "config" / "express.toml").write_text(TOML)
    mock = json.loads((FIXTURES / "MockConfigFile.json").read_text())
    # Step Functions Local's own flow: a machine created over the API, then run with #CASE
    mock["StateMachines"]["Created"] = {"TestCases": {"Mocked": {"Work": "MockedSQSSuccess"}}}
    (root / "mock.json").write_text(json.dumps(mock))
    log = root / "serve.log"
    proc = serve(root / "config", log, *HTTP_ONLY, cwd=ROOT, env={"SFN_MOCK_CONFIG": str(root / "mock.json")})
    try:
        port = wait_log(log, r"StepFunctions API\) on http://127\.0\.0\.1:(\d+)/", proc).group(1)
        yield make_client(f"http://127.0.0.1:{port}"), log
    finally:
        stop(proc)


def test_each_test_case_runs_as_step_functions_local_runs_it(server):
    sfn, log = server
    assert "4 test case(s) for 2 state machine(s); run one with stateMachineArn ARN#CASE" in log.read_text()
    happy = sfn.start_sync_execution(stateMachineArn=ARN + "#HappyPath", input='{"order": "o-1"}')
    assert (happy["status"], json.loads(happy["output"])) == ("SUCCEEDED", SQS_SUCCESS)
    assert happy["stateMachineArn"] == ARN
    retry = sfn.start_sync_execution(stateMachineArn=ARN + "#RetryPath", input="{}")
    assert (retry["status"], json.loads(retry["output"])) == ("SUCCEEDED", SQS_SUCCESS)
    # three retries with backoff 2, 4 and 8 s: on the service's virtual clock
    assert (retry["stopDate"] - retry["startDate"]).total_seconds() == pytest.approx(14.0)
    hybrid = sfn.start_sync_execution(stateMachineArn=ARN + "#HybridPath", input="{}")
    assert hybrid["status"] == "SUCCEEDED"
    # SQSState is not mocked: the configured function (the SQS stub) ran, with the mocked Lambda result
    assert json.loads(hybrid["output"]) == {"MD5OfMessageBody": "7b2024edc574052993a0667908681089",
                                            "MessageId": "7b2024ed-c574-0529-93a0-667908681089"}
    plain = sfn.start_sync_execution(stateMachineArn=ARN, input="{}")  # no test case: nothing is mocked
    assert (plain["status"], plain["error"]) == ("FAILED", "Lambda.ResourceNotFoundException")


def test_start_execution_takes_the_test_case_too(server):
    sfn, _ = server
    started = sfn.start_execution(stateMachineArn=ARN + "#RetryPath", name="retry-1", input="{}")
    assert started["executionArn"].startswith(
        "arn:aws:states:us-east-1:000000000000:express:LambdaSQSIntegration:retry-1:")


def test_concurrent_executions_keep_their_own_invocation_counts(server):
    sfn, _ = server
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: sfn.start_sync_execution(stateMachineArn=ARN + "#RetryPath",
                                                                   input=json.dumps({"i": i})), range(16)))
    assert [(a["status"], json.loads(a["output"])) for a in answers] == [("SUCCEEDED", SQS_SUCCESS)] * 16


def test_an_unknown_test_case_is_refused_naming_it(server):
    sfn, _ = server
    with pytest.raises(ClientError) as e:
        sfn.start_sync_execution(stateMachineArn=ARN + "#SadPath", input="{}")
    err = e.value.response["Error"]
    assert err["Code"] == "StateMachineDoesNotExist"
    assert "no test case named 'SadPath' for the state machine 'LambdaSQSIntegration'" in err["Message"]
    assert "HappyPath, RetryPath, HybridPath" in err["Message"]


def test_a_machine_created_over_the_api_runs_its_test_cases(server):
    sfn, log = server
    assert "no state machine 'Created' is loaded yet" in log.read_text()
    definition = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                                                         "Parameters": {"MessageBody.$": "$"}, "End": True}}}
    arn = sfn.create_state_machine(name="Created", definition=json.dumps(definition), type="EXPRESS",
                                   roleArn="arn:aws:iam::000000000000:role/r")["stateMachineArn"]
    mocked = sfn.start_sync_execution(stateMachineArn=arn + "#Mocked", input='{"a": 1}')
    assert json.loads(mocked["output"]) == SQS_SUCCESS
    real = sfn.start_sync_execution(stateMachineArn=arn, input='{"a": 1}')  # the SQS stub
    assert json.loads(real["output"])["MD5OfMessageBody"] != SQS_SUCCESS["MD5OfMessageBody"]


def test_an_invalid_mock_config_stops_the_start_naming_the_place(tmp_path):
    (tmp_path / "config" / "machines").mkdir(parents=True)
    (tmp_path / "config" / "machines" / "LambdaSQSIntegration.asl.json").write_text(
        (FIXTURES / "LambdaSQSIntegration.asl.json").read_text())
    (tmp_path / "config" / "express.toml").write_text(TOML)
    mock = json.loads((FIXTURES / "MockConfigFile.json").read_text())
    mock["StateMachines"]["LambdaSQSIntegration"]["TestCases"]["HappyPath"]["Notify"] = "MockedSQSSuccess"
    (tmp_path / "mock.json").write_text(json.dumps(mock))
    log = tmp_path / "serve.log"
    proc = serve(tmp_path / "config", log, *HTTP_ONLY, "--mock-config", str(tmp_path / "mock.json"), cwd=ROOT)
    try:
        assert proc.wait(60) == 2
    finally:
        if proc.poll() is None:
            stop(proc)
    assert (f"configuration error: {tmp_path / 'mock.json'}: /StateMachines/LambdaSQSIntegration/TestCases/"
            "HappyPath/Notify: the state machine 'LambdaSQSIntegration' has no state named 'Notify'") in log.read_text()
