"""Step Functions Local mock configs: loading and validating them, compiling test cases into the
machine, and running them through ``express exec``."""
from __future__ import annotations

import asyncio
import copy
import json
import pathlib
from typing import Any

import pytest

import express
from express.serve.cli import main
from express.testing.mocking import MockConfig, MockConfigError, MockedResponse, Outcome

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "mocks"
MACHINE_FILE = FIXTURES / "LambdaSQSIntegration.asl.json"
MOCK_FILE = FIXTURES / "MockConfigFile.json"
MACHINE = json.loads(MACHINE_FILE.read_text())
SQS_SUCCESS = {"MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
               "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"}
LAMBDA_SUCCESS = {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}


def raw_config() -> dict[str, Any]:
    return json.loads(MOCK_FILE.read_text())


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(MockConfigError) as e:
        MockConfig(data, "m.json")
    return e.value.problems


class Spy:
    """A task function that records its calls: a mocked state must never reach it."""

    def __init__(self, result: Any = None) -> None:
        self.calls: list[Any] = []
        self.result = result

    def __call__(self, event: Any) -> Any:
        self.calls.append(event)
        return self.result if self.result is not None else event


# ---------------------------------------------------------------------- the file


def test_aws_sample_loads_with_its_three_test_cases():
    config = MockConfig.load(MOCK_FILE)
    assert list(config.machines) == ["LambdaSQSIntegration"]
    assert [c.name for c in config.cases()] == ["HappyPath", "RetryPath", "HybridPath"]
    hybrid = config.case("LambdaSQSIntegration", "HybridPath")
    assert list(hybrid.mocks) == ["LambdaState"] and hybrid.expect is None
    assert hybrid.label == "LambdaSQSIntegration#HybridPath"


def test_invocation_ranges_are_inclusive_and_ordered():
    retry = MockConfig.load(MOCK_FILE).responses["MockedLambdaRetry"]
    errors = [retry.at(n) for n in range(5)]
    assert errors[0] == Outcome(None, "Lambda.ResourceNotReadyException", "Lambda resource is not ready.")
    assert errors[1] == errors[2] == Outcome(None, "Lambda.TimeoutException", "Lambda timed out.")
    assert errors[3] is not None and errors[3].value == LAMBDA_SUCCESS
    assert errors[4] is None  # nothing given for a fifth invocation


def test_every_problem_is_reported_with_its_pointer():
    data = raw_config()
    cases = data["StateMachines"]["LambdaSQSIntegration"]["TestCases"]
    cases["HappyPath"]["SQSState"] = "NoSuchResponse"
    cases["RetryPath"]["LambdaState"] = 7
    data["MockedResponses"]["MockedLambdaRetry"]["x"] = {"Return": {}}
    data["MockedResponses"]["MockedLambdaRetry"]["2-3"] = {"Return": {}}
    data["MockedResponses"]["Both"] = {"0": {"Return": {}, "Throw": {"Error": "E"}}}
    data["MockedResponses"]["NoError"] = {"0": {"Throw": {"Cause": "c"}}}
    data["MockedResponses"]["Backwards"] = {"3-1": {"Return": {}}}
    problems = dict(problems_of(data))
    assert "no mocked response named 'NoSuchResponse'" in problems[
        "/StateMachines/LambdaSQSIntegration/TestCases/HappyPath/SQSState"]
    assert "must be the name of a mocked response" in problems[
        "/StateMachines/LambdaSQSIntegration/TestCases/RetryPath/LambdaState"]
    assert "not an invocation number" in problems["/MockedResponses/MockedLambdaRetry/x"]
    assert "overlap" in problems["/MockedResponses/MockedLambdaRetry"]
    assert "exactly one field: Return or Throw" in problems["/MockedResponses/Both/0"]
    assert "non-empty string Error" in problems["/MockedResponses/NoError/0/Throw"]
    assert "ends before it starts" in problems["/MockedResponses/Backwards/3-1"]


def test_structural_problems_and_the_error_text_name_the_file():
    assert problems_of([]) == [("", "a mock config must be a JSON object with StateMachines and MockedResponses")]
    assert problems_of({"MockedResponses": {}})[0][0] == "/StateMachines"
    assert problems_of({"StateMachines": {"M": {}}})[0][0] == "/StateMachines/M/TestCases"
    with pytest.raises(MockConfigError) as e:
        MockConfig.from_json(b"{nope", "MockConfigFile.json")
    assert str(e.value).startswith("MockConfigFile.json: /: not valid JSON")


def test_express_expectations_sit_beside_the_test_cases_and_are_checked():
    config = MockConfig.load(FIXTURES / "ExpectedMockConfig.json")
    expect = config.case("LambdaSQSIntegration", "RetryPath").expect
    assert expect is not None and expect.status == "SUCCEEDED" and expect.output == SQS_SUCCESS
    assert expect.path == ("LambdaState", "SQSState") and expect.attempts == {"LambdaState": 4, "SQSState": 1}
    data = raw_config()
    data["StateMachines"]["LambdaSQSIntegration"]["ExpressExpect"] = {
        "Nope": {}, "HappyPath": {"status": "DONE", "outptu": 1, "attempts": {"LambdaState": -1}}}
    problems = dict(problems_of(data))
    base = "/StateMachines/LambdaSQSIntegration/ExpressExpect"
    assert "no test case named 'Nope'" in problems[base + "/Nope"]
    assert "must be one of SUCCEEDED, FAILED, TIMED_OUT" in problems[base + "/HappyPath/status"]
    assert "unknown field" in problems[base + "/HappyPath/outptu"]
    assert "number of invocations" in problems[base + "/HappyPath/attempts"]


def test_unknown_machine_test_case_and_states_are_errors_that_name_them():
    config = MockConfig.load(MOCK_FILE)
    with pytest.raises(MockConfigError, match="no state machine named 'Other' \\(it has: LambdaSQSIntegration\\)"):
        config.case("Other", "HappyPath")
    with pytest.raises(MockConfigError, match="no test case named 'SadPath' .* HappyPath, RetryPath, HybridPath"):
        config.case("LambdaSQSIntegration", "SadPath")
    renamed = copy.deepcopy(MACHINE)
    renamed["States"]["SQSState"] = {"Type": "Pass", "End": True}
    renamed["States"]["Queue"] = renamed["States"].pop("LambdaState")
    renamed["StartAt"] = "Queue"
    renamed["States"]["Queue"]["Next"] = "SQSState"
    engine = express.Engine(functions={"HelloWorldFunction": Spy()})
    with pytest.raises(MockConfigError) as e:
        config.compile(engine, renamed, "LambdaSQSIntegration", "HappyPath")
    assert dict(e.value.problems) == {
        "/StateMachines/LambdaSQSIntegration/TestCases/HappyPath/LambdaState":
            "the state machine 'LambdaSQSIntegration' has no state named 'LambdaState'",
        "/StateMachines/LambdaSQSIntegration/TestCases/HappyPath/SQSState":
            "the state 'SQSState' is a Pass state: only Task states can be mocked",
    }


# ---------------------------------------------------------------------- compiled into the machine


def test_mocked_states_need_no_function_and_without_integrations_unmocked_resources_fail():
    engine = express.Engine(integrations=False)  # with them, sqs:sendMessage is bound (it calls SQS)
    config = MockConfig.load(MOCK_FILE)
    config.compile(engine, MACHINE, "LambdaSQSIntegration", "HappyPath")  # sqs:sendMessage is never bound
    with pytest.raises(express.DefinitionError) as e:
        config.compile(engine, MACHINE, "LambdaSQSIntegration", "HybridPath")  # SQSState is not mocked
    assert [p.pointer for p in e.value.problems] == ["/States/SQSState/Resource"]
    assert "No function is registered for the Task resource 'arn:aws:states:::sqs:sendMessage'" in str(e.value)


async def test_each_case_runs_its_responses_and_skips_the_real_integrations():
    lambda_fn, sqs = Spy({"real": "lambda"}), Spy({"real": "sqs"})
    engine = express.Engine(functions={"HelloWorldFunction": lambda_fn, "arn:aws:states:::sqs:sendMessage": sqs},
                            clock=express.VirtualClock())
    config = MockConfig.load(MOCK_FILE)
    happy = await config.compile(engine, MACHINE, "LambdaSQSIntegration", "HappyPath").execute({"order": 1})
    assert (happy.status, happy.output) == ("SUCCEEDED", SQS_SUCCESS)
    assert lambda_fn.calls == [] and sqs.calls == []
    retry = await config.compile(engine, MACHINE, "LambdaSQSIntegration", "RetryPath").execute({})
    # attempt 0 and retries 1-2 throw, retry 3 returns: 2 + 4 + 8 s of backoff on the virtual clock
    assert (retry.status, retry.output, retry.duration_s) == ("SUCCEEDED", SQS_SUCCESS, 14.0)
    assert lambda_fn.calls == [] and sqs.calls == []
    hybrid = await config.compile(engine, MACHINE, "LambdaSQSIntegration", "HybridPath").execute({})
    assert (hybrid.status, hybrid.output) == ("SUCCEEDED", {"real": "sqs"})
    assert lambda_fn.calls == [] and sqs.calls == [
        {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/myQueue", "MessageBody": LAMBDA_SUCCESS}]
    plain = await engine.compile(MACHINE, "LambdaSQSIntegration").execute({})  # the machine itself is untouched
    assert plain.status == "SUCCEEDED" and len(lambda_fn.calls) == 1


async def test_invocation_counters_belong_to_each_execution():
    engine = express.Engine(clock=express.VirtualClock())
    machine = MockConfig.load(MOCK_FILE).compile(engine, MACHINE, "LambdaSQSIntegration", "RetryPath")
    results = await asyncio.gather(*(machine.execute({"n": i}) for i in range(8)))
    assert [(r.status, r.output, r.duration_s) for r in results] == [("SUCCEEDED", SQS_SUCCESS, 14.0)] * 8


async def test_an_invocation_without_a_response_fails_the_execution_naming_the_state():
    data = raw_config()
    data["MockedResponses"]["MockedLambdaRetry"].pop("3")
    machine = MockConfig(data).compile(express.Engine(clock=express.VirtualClock()), MACHINE,
                                       "LambdaSQSIntegration", "RetryPath")
    result = await machine.execute({})
    assert result.status == "FAILED" and result.error == "States.Runtime"
    assert result.cause is not None
    assert result.cause.startswith("An error occurred while executing the state 'LambdaState'")
    assert "'MockedLambdaRetry' has no response for invocation 3" in result.cause


async def test_a_thrown_error_is_caught_like_the_services_own():
    definition = copy.deepcopy(MACHINE)
    lambda_state = definition["States"]["LambdaState"]
    del lambda_state["Retry"]
    lambda_state["Catch"] = [{"ErrorEquals": ["Lambda.ResourceNotReadyException"], "Next": "Recovered",
                              "ResultPath": "$.error"}]
    definition["States"]["Recovered"] = {"Type": "Pass", "End": True}
    data = raw_config()
    data["StateMachines"]["LambdaSQSIntegration"]["TestCases"]["NotReady"] = {
        "LambdaState": "LambdaMockedResourceNotReady", "SQSState": "MockedSQSSuccess"}
    machine = MockConfig(data).compile(express.Engine(), definition, "LambdaSQSIntegration", "NotReady")
    result = await machine.execute({"order": 1})
    assert result.status == "SUCCEEDED"
    assert result.output == {"order": 1, "error": {"Error": "Lambda.ResourceNotReadyException",
                                                   "Cause": "Lambda resource is not ready."}}


async def test_map_iterations_share_the_states_counter_and_each_gets_a_fresh_copy():
    definition = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 1, "End": True,
        "ItemProcessor": {"StartAt": "Price", "States": {"Price": {"Type": "Task", "Resource": "price", "End": True}}}}}}
    config = MockConfig({
        "StateMachines": {"prices": {"TestCases": {"Three": {"Price": "Prices"}}}},
        "MockedResponses": {"Prices": {"0": {"Return": {"p": 1}}, "1-2": {"Return": {"p": 2}}}}})
    machine = config.compile(express.Engine(), definition, "prices", "Three")
    first = await machine.execute([1, 2, 3])
    assert first.output == [{"p": 1}, {"p": 2}, {"p": 2}]
    first.output[0]["p"] = 99  # callers may change what they got: the next execution is unaffected
    assert (await machine.execute([1])).output == [{"p": 1}]


async def test_a_mocked_result_over_the_payload_limit_fails_the_state():
    config = MockConfig({"StateMachines": {"big": {"TestCases": {"Big": {"T": "Huge"}}}},
                         "MockedResponses": {"Huge": {"0": {"Return": "x" * (300 * 1024)}}}})
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "any", "End": True}}}
    result = await config.compile(express.Engine(), definition, "big", "Big").execute({})
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")


def test_engine_compile_takes_mocked_responses_directly():
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "nowhere", "End": True}}}
    response = MockedResponse("R", [(0, 0, Outcome(b'{"ok":true}'))])
    machine = express.Engine().compile(definition, mocks={"T": response})
    assert asyncio.run(machine.execute({})).output == {"ok": True}
    with pytest.raises(ValueError, match="mocks name no Task state of the machine 'machine': Missing"):
        express.Engine().compile(definition, mocks={"T": response, "Missing": response})


def test_variants_are_compiled_once_per_machine_and_case():
    config = MockConfig.load(MOCK_FILE)
    engine = express.Engine(functions={"HelloWorldFunction": Spy(), "arn:aws:states:::sqs:sendMessage": Spy()})
    base = engine.compile(MACHINE, "LambdaSQSIntegration")
    happy = config.variant(base, "HappyPath")
    assert config.variant(base, "HappyPath") is happy and config.variant(base, "RetryPath") is not happy
    assert happy.name == base.name and happy.arn == base.arn
    other = engine.compile(MACHINE, "LambdaSQSIntegration")  # e.g. after UpdateStateMachine
    assert config.variant(other, "HappyPath") is not happy


# ---------------------------------------------------------------------- express exec


def exec_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    rc = main(["exec", str(MACHINE_FILE), *args])
    return rc, json.loads(capsys.readouterr().out)


def test_exec_runs_each_test_case(capsys):
    rc, happy = exec_json(capsys, "--mock-config", str(MOCK_FILE), "--test-case", "HappyPath")
    assert (rc, happy["status"], happy["output"]) == (0, "SUCCEEDED", SQS_SUCCESS)
    rc, retry = exec_json(capsys, "--mock-config", str(MOCK_FILE), "--test-case", "RetryPath", "--virtual-time")
    assert (rc, retry["status"], retry["output"]) == (0, "SUCCEEDED", SQS_SUCCESS)
    assert retry["durationMs"] == 14_000  # the three retries' backoff: 2 + 4 + 8 s
    # HybridPath: SQSState is not mocked; exec binds no service, so it echoes its effective input
    rc, hybrid = exec_json(capsys, "--mock-config", str(MOCK_FILE), "--test-case", "HybridPath")
    assert (rc, hybrid["status"]) == (0, "SUCCEEDED")
    assert hybrid["output"] == {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/myQueue",
                                "MessageBody": LAMBDA_SUCCESS}


def test_exec_reads_the_mock_config_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("SFN_MOCK_CONFIG", str(MOCK_FILE))
    rc, out = exec_json(capsys, "--test-case", "HappyPath", "--input", '{"a": 1}')
    assert (rc, out["output"]) == (0, SQS_SUCCESS)


def test_exec_names_what_is_wrong(capsys, tmp_path):
    assert main(["exec", str(MACHINE_FILE), "--mock-config", str(MOCK_FILE), "--test-case", "SadPath"]) == 1
    err = capsys.readouterr().err
    assert f"{MOCK_FILE}: /StateMachines/LambdaSQSIntegration/TestCases: no test case named 'SadPath'" in err
    with pytest.raises(SystemExit, match="--test-case needs --mock-config"):
        main(["exec", str(MACHINE_FILE), "--test-case", "HappyPath"])
    with pytest.raises(SystemExit, match="--mock-config needs --test-case"):
        main(["exec", str(MACHINE_FILE), "--mock-config", str(MOCK_FILE)])
    other = tmp_path / "Other.asl.json"
    other.write_text(MACHINE_FILE.read_text())
    assert main(["exec", str(other), "--mock-config", str(MOCK_FILE), "--test-case", "HappyPath"]) == 1
    assert "no state machine named 'Other' (it has: LambdaSQSIntegration)" in capsys.readouterr().err


def test_a_broken_definition_is_reported_as_such_not_as_missing_states():
    config = MockConfig.load(MOCK_FILE)
    with pytest.raises(express.DefinitionError, match="INVALID_JSON_DESCRIPTION"):
        config.compile(express.Engine(), b'{"StartAt": ', "LambdaSQSIntegration", "HappyPath")
    with pytest.raises(express.DefinitionError) as e:
        config.compile(express.Engine(), {"StartAt": "LambdaState"}, "LambdaSQSIntegration", "HappyPath")
    assert e.value.problems and all(p.code != "" for p in e.value.problems)
