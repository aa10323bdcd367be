"""The pytest plugin (express_workflow, express_clock), tested through pytest's own pytester: a
user's test suite in a temporary folder, run by pytest with the plugin its entry point loads."""
from __future__ import annotations

import json
import pathlib
from importlib.metadata import entry_points

import pytest

from express.testing.cases import ANY, Workflow, WorkflowAssertionError, first_difference

pytest_plugins = ["pytester"]

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "mocks"
SQS_SUCCESS = {"MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
               "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: config/machines/, tests/MockConfigFile.json and the ini options."""
    machines = pytester.path / "config" / "machines"
    machines.mkdir(parents=True)
    (machines / "LambdaSQSIntegration.asl.json").write_text((FIXTURES / "LambdaSQSIntegration.asl.json").read_text())
    (pytester.path / "MockConfigFile.json").write_text((FIXTURES / "MockConfigFile.json").read_text())
    pytester.makeini("[pytest]\nexpress_mock_config = MockConfigFile.json\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


USER_TESTS = '''
SQS_SUCCESS = {"MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
               "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"}
LAMBDA = {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}


def test_happy_path(express_workflow):
    run = express_workflow.run("LambdaSQSIntegration", {"order": 1}, test_case="HappyPath")
    run.assert_succeeded(output=SQS_SUCCESS)
    run.assert_path([{"name": "LambdaState", "input": {"order": 1}, "output": LAMBDA},
                     {"name": "SQSState", "input": LAMBDA, "output": SQS_SUCCESS}])


def test_retry_path_takes_fourteen_virtual_seconds(express_workflow, express_clock):
    started = express_clock.now()
    run = express_workflow.run("LambdaSQSIntegration", test_case="RetryPath")
    run.assert_succeeded().assert_path(["LambdaState", "SQSState"]).assert_attempts("LambdaState", 4)
    assert [a.error for a in run.attempts["LambdaState"]] == [
        "Lambda.ResourceNotReadyException", "Lambda.TimeoutException", "Lambda.TimeoutException", None]
    assert run.duration_s == 14 and express_clock.now() - started == 14


def test_hybrid_path_runs_the_unmocked_state(express_workflow):
    sent = []
    def send_message(request):
        sent.append(request["MessageBody"])
        return {"MessageId": "real"}
    run = express_workflow.run("LambdaSQSIntegration", test_case="HybridPath",
                               functions={"arn:aws:states:::sqs:sendMessage": send_message})
    run.assert_succeeded(output={"MessageId": "real"})
    assert sent == [LAMBDA]
'''


def test_a_users_tests_pass_through_the_fixtures(project):
    project.makepyfile(test_workflow=USER_TESTS)
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


FAILING_USER_TESTS = '''
def test_expects_another_path(express_workflow):
    run = express_workflow.run("LambdaSQSIntegration", test_case="RetryPath")
    run.assert_path(["LambdaState", "Notify", "SQSState"])


def test_expects_another_message_id(express_workflow):
    run = express_workflow.run("LambdaSQSIntegration", test_case="HappyPath")
    run.assert_succeeded(output={"MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51", "MessageId": "m-2"})


def test_expects_a_failure(express_workflow):
    express_workflow.run("LambdaSQSIntegration", test_case="HappyPath").assert_failed(error="States.TaskFailed")


def test_unknown_case(express_workflow):
    express_workflow.run("LambdaSQSIntegration", test_case="SadPath")
'''


def test_failing_assertions_print_the_path_and_the_first_difference(project):
    project.makepyfile(test_workflow=FAILING_USER_TESTS)
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines([  # a path assertion
        "*WorkflowAssertionError: the path differs at state 2: expected 'Notify', got 'SQSState'",
        "*path taken: LambdaSQSIntegration#RetryPath: SUCCEEDED after 2 state(s), 14 s on the clock",
        "*1. LambdaState (Task, 4 attempt(s))",
        "*input:  {}",
        '*output: {"StatusCode":200,"Payload":{"StatusCode":200,"body":"Hello from Lambda!"}}',
        "*2. SQSState (Task)  <- first difference",
    ])
    result.stdout.fnmatch_lines([  # an outcome assertion
        '*the output differs at /MessageId: expected "m-2", got "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"',
        "*path taken: LambdaSQSIntegration#HappyPath: SUCCEEDED after 2 state(s)*",
    ])
    result.stdout.fnmatch_lines(["*expected the execution to end FAILED, it ended SUCCEEDED"])
    result.stdout.fnmatch_lines(["*MockConfigError: *MockConfigFile.json: /StateMachines/LambdaSQSIntegration/"
                                 "TestCases: no test case named 'SadPath'*"])
    out = result.stdout.str()
    # assertion tracebacks stop at the user's line, not inside the assertion helpers
    assert "in assert_path" not in out and "in assert_outcome" not in out and "in _fail" not in out


def test_the_plugin_is_registered_through_its_entry_point():
    found = [e for e in entry_points(group="pytest11") if e.name == "express"]
    assert [e.value for e in found] == ["express.testing.pytest_plugin"]


# ---------------------------------------------------------------------- the library under the fixtures


async def test_arun_in_a_coroutine_and_run_refuses_there():
    workflow = Workflow(FIXTURES / "LambdaSQSIntegration.asl.json", mock_config=FIXTURES / "MockConfigFile.json",
                        test_case="RetryPath")
    assert workflow.label == "LambdaSQSIntegration#RetryPath"
    runs = [await workflow.arun({"n": i}) for i in range(2)]
    assert [(r.status, r.output, r.states) for r in runs] == [("SUCCEEDED", SQS_SUCCESS, ["LambdaState", "SQSState"])] * 2
    assert [len(r.attempts["LambdaState"]) for r in runs] == [4, 4]
    with pytest.raises(RuntimeError, match="await workflow.arun"):
        workflow.run()


def test_paths_through_map_and_parallel_pair_each_entry_with_its_exit():
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "Each", "States": {"Each": {"Type": "Map", "End": True, "ItemProcessor": {
            "StartAt": "Double", "States": {"Double": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, $)"},
                                                       "End": True}}}}}},
        {"StartAt": "Fail", "States": {"Fail": {"Type": "Pass", "Result": "x", "End": True}}}]}}}
    run = Workflow(json.dumps(definition)).run([1, 2])
    run.assert_succeeded(output=[[{"v": 2}, {"v": 4}], "x"])
    assert sorted(run.states) == ["Both", "Double", "Double", "Each", "Fail"]
    run.assert_state("Double", input=1, output={"v": 2}).assert_state("Double", input=2, output={"v": 4}, occurrence=1)
    with pytest.raises(WorkflowAssertionError, match="the state 'Double' was entered 2 time"):
        run.step("Double", occurrence=2)


def test_a_failed_state_shows_it_did_not_exit():
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "boom", "End": True}}}

    def boom(event: object) -> object:
        raise ValueError("no")

    run = Workflow(definition, functions={"boom": boom}).run()
    run.assert_failed(error="ValueError")
    assert run.path[0].exited is False and "output: (did not exit)" in run.describe()
    with pytest.raises(WorkflowAssertionError, match="did not exit, so it has no output"):
        run.assert_state("T", output={})


def test_first_difference_is_a_json_pointer_and_json_typed():
    assert first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == ("/a/1/b", 2, 3)
    assert first_difference({"a": 1}, {"a": 1, "b/c": 2})[0] == "/b~1c"
    assert first_difference([1, 2], [1])[0] == "/1"
    assert first_difference(1, 1.0) is None and first_difference(True, 1) == ("", True, 1)
    assert first_difference({"a": ANY, "b": 1}, {"a": [9], "b": 1}) is None


def test_the_readme_example_passes(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]):
    import re

    from express.serve.cli import main

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Testing your workflows"):]
    section = section[:section.index("\n## ", 1)]
    machine, mock, tests = (body for _, body in re.findall(r"```(json|python)\n(.*?)```", section, re.S))
    (pytester.path / "config" / "machines").mkdir(parents=True)
    (pytester.path / "config" / "machines" / "OrderWorkflow.asl.json").write_text(machine)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "MockConfigFile.json").write_text(mock)
    (pytester.path / "tests" / "test_order_workflow.py").write_text(tests)
    pytester.makeini("[pytest]\nexpress_mock_config = tests/MockConfigFile.json\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=4)
    assert main(["test", str(pytester.path / "tests" / "MockConfigFile.json"),
                 "--config", str(pytester.path / "config")]) == 0
    assert "3 test case(s): 3 passed, 0 failed" in capsys.readouterr().out
