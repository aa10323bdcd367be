"""``express test MOCK.json``: every test case of a mock config against its machine, one line per
case and a summary, exit 1 on failure, JUnit XML with ``--junit``."""
from __future__ import annotations

import json
import pathlib
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from express.serve.cli import main
from tests.support import free_port

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "mocks"
MACHINE_FILE = FIXTURES / "LambdaSQSIntegration.asl.json"
STUB = "tests.fixtures.mocks.sqs_stub:send_message"


def make_config(root: pathlib.Path, functions: bool = True) -> pathlib.Path:
    """A config folder with the sample machine and (for HybridPath's unmocked SQSState) the SQS stub."""
    config = root / "config"
    (config / "machines").mkdir(parents=True)
    (config / "machines" / "LambdaSQSIntegration.asl.json").write_text(MACHINE_FILE.read_text())
    if functions:
        (config / "express.toml").write_text(f'[functions]\n"arn:aws:states:::sqs:sendMessage" = "{STUB}"\n')
    return config


def expected_config(root: pathlib.Path, change: Any = None) -> pathlib.Path:
    data = json.loads((FIXTURES / "ExpectedMockConfig.json").read_text())
    if change is not None:
        change(data["StateMachines"]["LambdaSQSIntegration"])
    path = root / "MockConfigFile.json"
    path.write_text(json.dumps(data))
    return path


def test_every_case_passes_with_one_line_each_and_a_junit_report(tmp_path, capsys):
    config = make_config(tmp_path)
    junit = tmp_path / "report.xml"
    rc = main(["test", str(FIXTURES / "ExpectedMockConfig.json"), "--config", str(config), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("PASS  LambdaSQSIntegration#HappyPath: SUCCEEDED (2 states, 0 s on the clock")
    assert lines[1].startswith("PASS  LambdaSQSIntegration#RetryPath: SUCCEEDED (2 states, 14 s on the clock")
    assert lines[2].startswith("PASS  LambdaSQSIntegration#HybridPath: SUCCEEDED")
    assert lines[3] == "3 test case(s): 3 passed, 0 failed"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "0")
    assert [(c.get("classname"), c.get("name")) for c in suite.findall("testcase")] == [
        ("LambdaSQSIntegration", "HappyPath"), ("LambdaSQSIntegration", "RetryPath"),
        ("LambdaSQSIntegration", "HybridPath")]


def test_a_failed_expectation_prints_the_first_difference_and_the_path(tmp_path, capsys):
    def wrong(machine: dict[str, Any]) -> None:
        machine["ExpressExpect"]["RetryPath"]["output"]["MessageId"] = "something-else"
        machine["ExpressExpect"]["HappyPath"]["attempts"]["LambdaState"] = 2
    junit = tmp_path / "report.xml"
    rc = main(["test", str(expected_config(tmp_path, wrong)), "--config", str(make_config(tmp_path)),
               "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 1
    assert ("FAIL  LambdaSQSIntegration#HappyPath: the state 'LambdaState' was invoked 1 time(s), expected 2"
            in out)
    assert ("FAIL  LambdaSQSIntegration#RetryPath: the output differs at /MessageId: expected \"something-else\", "
            "got \"3bcb6e8e-8b51-4375-b0bc-1a59812c6e51\"") in out
    assert "path taken:" in out and "1. LambdaState (Task, 4 attempt(s))" in out
    assert out.rstrip().endswith("3 test case(s): 1 passed, 2 failed")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    failure = suite.find("testcase[@name='RetryPath']/failure")
    assert failure is not None and "at /MessageId" in (failure.get("message") or "")
    assert "2. SQSState (Task)" in (failure.text or "")


def test_without_an_expectation_a_case_must_succeed(tmp_path, capsys):
    data = json.loads((FIXTURES / "MockConfigFile.json").read_text())
    data["StateMachines"]["LambdaSQSIntegration"]["TestCases"]["NotReady"] = {
        "LambdaState": "LambdaMockedResourceNotReady", "SQSState": "MockedSQSSuccess"}
    mock = tmp_path / "mock.json"
    mock.write_text(json.dumps(data))
    rc = main(["test", str(mock), "--config", str(make_config(tmp_path))])
    out = capsys.readouterr().out
    assert rc == 1
    # the only response throws on invocation 0, and the Retry asks for a second one
    assert "FAIL  LambdaSQSIntegration#NotReady: expected the execution to end SUCCEEDED, it ended FAILED " \
           "(States.Runtime: An error occurred while executing the state 'LambdaState'" in out
    assert "4 test case(s): 3 passed, 1 failed" in out


def test_an_expected_failure_passes(tmp_path, capsys):
    def fails(machine: dict[str, Any]) -> None:
        machine["TestCases"]["NotReady"] = {"LambdaState": "LambdaMockedResourceNotReady"}
        machine["ExpressExpect"]["NotReady"] = {
            "status": "FAILED", "error": "States.Runtime", "path": ["LambdaState"], "attempts": {"LambdaState": 2}}
    rc = main(["test", str(expected_config(tmp_path, fails)), "--config", str(make_config(tmp_path))])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "PASS  LambdaSQSIntegration#NotReady: FAILED" in out


def test_cases_that_cannot_run_are_errors_and_unmocked_integrations_call_their_service(tmp_path, capsys,
                                                                                       monkeypatch):
    def other_machine(machine: dict[str, Any]) -> None:
        pass
    mock = expected_config(tmp_path, other_machine)
    data = json.loads(mock.read_text())
    data["StateMachines"]["Missing"] = {"TestCases": {"Any": {}}}
    mock.write_text(json.dumps(data))
    junit = tmp_path / "report.xml"
    # As Step Functions Local does, an unmocked state calls its service: here an SQS endpoint where nothing listens
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    rc = main(["test", str(mock), "--config", str(make_config(tmp_path, functions=False)), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 1
    hybrid = next(line for line in out.splitlines() if "LambdaSQSIntegration#HybridPath" in line)
    assert hybrid.startswith("FAIL  ") and "SQS." in hybrid, out
    assert "ERROR Missing#Any: cannot read the state machine 'Missing': " in out
    assert out.rstrip().endswith("4 test case(s): 2 passed, 1 failed, 1 could not run")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1" and suite.get("failures") == "1"


def test_machine_dir_and_an_invalid_mock_config(tmp_path, capsys):
    machines = tmp_path / "elsewhere"
    machines.mkdir()
    (machines / "LambdaSQSIntegration.asl.json").write_text(MACHINE_FILE.read_text())
    assert main(["test", str(FIXTURES / "MockConfigFile.json"), "--config", str(tmp_path / "none"),
                 "--machine-dir", str(machines)]) == 1  # HybridPath: nothing bound for SQS
    out = capsys.readouterr().out
    assert "PASS  LambdaSQSIntegration#HappyPath" in out and "PASS  LambdaSQSIntegration#RetryPath" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"StateMachines": {"M": {"TestCases": {"C": {"S": "Nope"}}}}, "MockedResponses": {}}')
    assert main(["test", str(bad)]) == 1
    assert f"{bad}: /StateMachines/M/TestCases/C/S: no mocked response named 'Nope'" in capsys.readouterr().err


def test_validate_accepts_any_task_resource(tmp_path, capsys):
    # validate binds no functions: a resource nothing runs here is still a valid definition
    assert main(["validate", str(MACHINE_FILE)]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.fixture(autouse=True)
def _forget_sent_messages() -> Any:
    yield
    from tests.fixtures.mocks import sqs_stub

    sqs_stub.SENT.clear()
