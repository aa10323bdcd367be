"""``express serve --reload`` (express.serve.reload): changed machines and mock configs are recompiled,
invalid ones are reported with pointers while the previous version keeps serving."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import express
from express.serve.config import ConfigError
from express.serve.registry import Registry
from express.serve.reload import Reloader
from tests.support import serve, stop

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "mocks"
SQS_SUCCESS = {"MD5OfMessageBody": "3bcb6e8e-7h85-4375-b0bc-1a59812c6e51",
               "MessageId": "3bcb6e8e-8b51-4375-b0bc-1a59812c6e51"}


def pass_machine(result: Any) -> str:
    return json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": result, "End": True}}})


_tick = [time.time_ns()]


def write(path: pathlib.Path, text: str) -> None:
    """Write and give the file a modification time of its own (file times are coarse)."""
    path.write_text(text)
    _tick[0] += 1_000_000_000
    os.utime(path, ns=(_tick[0], _tick[0]))


async def output(registry: Registry, name: str, case: str | None = None) -> Any:
    machine = registry.get(name)
    assert machine is not None
    if case is not None:
        machine = registry.mock_config.variant(machine, case)
    result = await machine.execute({})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return result.output


@contextlib.asynccontextmanager
async def watching(registry: Registry, machines: pathlib.Path, logs: list[str],
                   mock: pathlib.Path | None = None) -> AsyncIterator[Reloader]:
    """A started Reloader that polls too rarely to matter (the tests call check() themselves),
    logging into ``logs``."""
    reloader = Reloader(registry, machines, mock, interval_s=3600, log=logs.append)
    await reloader.start()
    try:
        yield reloader
    finally:
        await reloader.stop()


@pytest.fixture
def setup(tmp_path: pathlib.Path) -> tuple[pathlib.Path, Registry, list[str]]:
    machines = tmp_path / "machines"
    machines.mkdir()
    write(machines / "m.asl.json", pass_machine("v1"))
    registry = Registry(express.Engine(functions={"arn:aws:states:::sqs:sendMessage": lambda e: {"real": True}}))
    registry.put("m", (machines / "m.asl.json").read_text())
    return machines, registry, []


async def test_a_changed_machine_replaces_the_running_one_and_an_invalid_one_does_not(setup):
    machines, registry, logs = setup
    async with watching(registry, machines, logs) as reloader:
        assert await reloader.check() == []  # nothing changed
        write(machines / "m.asl.json", pass_machine("v2"))
        assert await reloader.check() == ["m"]
        assert await output(registry, "m") == "v2"
        assert f"reload: the state machine 'm' was recompiled from {machines / 'm.asl.json'}" in logs

        broken = json.loads(pass_machine("v3"))
        broken["States"]["A"] = {"Type": "Pass", "Next": "Nowhere"}
        write(machines / "m.asl.json", json.dumps(broken))
        assert await reloader.check() == []
        assert await output(registry, "m") == "v2"  # still the previous version
        path = machines / "m.asl.json"
        assert f"reload: {path}: MISSING_TRANSITION_TARGET: Missing 'Next' target: Nowhere at /States/A/Next" in logs
        assert f"reload: {path}: still serving the previous version of 'm'" in logs

        write(path, '{"StartAt": ')
        assert await reloader.check() == []
        assert any(line.startswith(f"reload: {path}: INVALID_JSON_DESCRIPTION") for line in logs)
        write(path, pass_machine("v4"))
        assert await reloader.check() == ["m"] and await output(registry, "m") == "v4"


async def test_new_machine_files_are_added_and_deleted_ones_removed(setup):
    machines, registry, logs = setup
    async with watching(registry, machines, logs) as reloader:
        write(machines / "n.asl.json", pass_machine("n1"))
        assert await reloader.check() == ["n"] and await output(registry, "n") == "n1"
        registry.put("api-created", pass_machine("api"))  # not from a file: never removed by the watcher
        (machines / "m.asl.json").unlink()
        assert await reloader.check() == ["m"]
        assert "m" not in registry and "n" in registry and "api-created" in registry
        assert any("was deleted: the state machine 'm' is no longer served" in line for line in logs)


async def test_the_mock_config_is_reloaded_and_an_invalid_one_keeps_the_previous(setup, tmp_path):
    machines, registry, logs = setup
    write(machines / "LambdaSQSIntegration.asl.json", (FIXTURES / "LambdaSQSIntegration.asl.json").read_text())
    registry.put("LambdaSQSIntegration", (machines / "LambdaSQSIntegration.asl.json").read_text())
    mock = tmp_path / "mock.json"
    data = json.loads((FIXTURES / "MockConfigFile.json").read_text())
    write(mock, json.dumps(data))
    async with watching(registry, machines, logs, mock) as reloader:
        first = registry.mock_config
        assert await output(registry, "LambdaSQSIntegration", "HappyPath") == SQS_SUCCESS

        data["MockedResponses"]["MockedSQSSuccess"]["0"]["Return"] = {"MessageId": "changed"}
        write(mock, json.dumps(data))
        assert await reloader.check() == [str(mock)]
        assert registry.mock_config is not first
        assert await output(registry, "LambdaSQSIntegration", "HappyPath") == {"MessageId": "changed"}

        current = registry.mock_config
        write(mock, '{"StateMachines": {"LambdaSQSIntegration": {"TestCases": {"HappyPath": {"Nope": "X"}}}}}')
        assert await reloader.check() == []
        assert registry.mock_config is current
        assert (f"reload: {mock}: /StateMachines/LambdaSQSIntegration/TestCases/HappyPath/Nope: no mocked response "
                "named 'X' in /MockedResponses") in logs
        assert f"reload: {mock}: still using the previous mock config" in logs

        data["StateMachines"]["LambdaSQSIntegration"]["TestCases"]["HappyPath"]["Nope"] = "MockedSQSSuccess"
        write(mock, json.dumps(data))  # valid on its own, but the machine has no state Nope
        assert await reloader.check() == [] and registry.mock_config is current
        assert (f"reload: {mock}: /StateMachines/LambdaSQSIntegration/TestCases/HappyPath/Nope: the state machine "
                "'LambdaSQSIntegration' has no state named 'Nope'") in logs


async def test_a_machine_change_that_breaks_a_test_case_is_reported(setup, tmp_path):
    machines, registry, logs = setup
    mock = tmp_path / "mock.json"
    write(mock, json.dumps({"StateMachines": {"m": {"TestCases": {"T": {"A": "R"}}}},
                            "MockedResponses": {"R": {"0": {"Return": 1}}}}))
    write(machines / "m.asl.json", json.dumps(
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}}}))
    registry.put("m", (machines / "m.asl.json").read_text())
    async with watching(registry, machines, logs, mock) as reloader:
        assert await output(registry, "m", "T") == 1
        write(machines / "m.asl.json", pass_machine("no task"))
        assert await reloader.check() == ["m"]
        assert (f"reload: {mock}: /StateMachines/m/TestCases/T/A: the state 'A' is a Pass state: only Task states "
                "can be mocked (after 'm' changed)") in logs


async def test_an_invalid_mock_config_stops_the_start(setup, tmp_path):
    machines, registry, logs = setup
    mock = tmp_path / "mock.json"
    write(mock, '{"StateMachines": {"m": {"TestCases": {"T": {"A": "R"}}}}, "MockedResponses": {"R": {"0": {}}}}')
    with pytest.raises(ConfigError) as e:
        await Reloader(registry, machines, mock, log=logs.append).start(watch=False)
    assert str(e.value) == f"{mock}: /MockedResponses/R/0: must be an object with exactly one field: Return or Throw"
    write(mock, '{"StateMachines": {"m": {"TestCases": {"T": {"A": "R", "B": "R"}}}}, '
                '"MockedResponses": {"R": {"0": {"Return": 1}}}}')
    with pytest.raises(ConfigError) as e:
        await Reloader(registry, machines, mock, log=logs.append).start(watch=False)
    assert str(e.value) == (f"{mock}: /StateMachines/m/TestCases/T/A: the state 'A' is a Pass state: only Task "
                            "states can be mocked; /StateMachines/m/TestCases/T/B: the state machine 'm' has no "
                            "state named 'B'")
    assert registry.mock_config is None


async def test_the_watcher_polls_until_stopped(setup):
    machines, registry, logs = setup
    reloader = Reloader(registry, machines, interval_s=0.01, log=logs.append)
    await reloader.start()
    await reloader.start()  # idempotent
    task = reloader._task
    assert task is not None and not task.done()
    write(machines / "m.asl.json", pass_machine("polled"))
    for _ in range(2000):  # waits for the poll; asserts nothing about how long it takes
        if registry.get("m") is not None and await output(registry, "m") == "polled":
            break
        await asyncio.sleep(0.01)
    assert await output(registry, "m") == "polled"
    await reloader.stop()
    await reloader.stop()
    assert task.done() and reloader._task is None


def test_serve_reload_end_to_end(tmp_path):
    """A real `express serve --reload --mock-config` process, driven by boto3."""
    from tests.http.httpsupport import make_client

    config = tmp_path / "config"
    (config / "machines").mkdir(parents=True)
    machine = config / "machines" / "greet.asl.json"
    write(machine, json.dumps({"StartAt": "Hello", "States": {"Hello": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "greet", "Payload.$": "$"}, "OutputPath": "$.Payload", "End": True}}}))
    mock = tmp_path / "mock.json"
    data = {"StateMachines": {"greet": {"TestCases": {"Hi": {"Hello": "Hi"}}}},
            "MockedResponses": {"Hi": {"0": {"Return": {"StatusCode": 200, "Payload": "hi"}}}}}
    write(mock, json.dumps(data))
    log = tmp_path / "serve.log"
    root = pathlib.Path(__file__).resolve().parents[2]
    proc = serve(config, log, "--no-kafka", "--http", "127.0.0.1:0", "--reload", "--mock-config", str(mock), cwd=root)

    def wait_for(check: Any, what: str) -> Any:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"{what} did not happen; log:\n{log.read_text()[-3000:]}")

    try:
        port = wait_for(lambda: re.search(r"API\) on http://127\.0\.0\.1:(\d+)/", log.read_text()), "start").group(1)
        assert "reload: watching" in log.read_text()
        sfn = make_client(f"http://127.0.0.1:{port}")
        arn = "arn:aws:states:us-east-1:000000000000:stateMachine:greet"

        def answer(case: str = "Hi") -> Any:
            # between the machine's and the mock config's reloads an execution may fail: its status then
            done = sfn.start_sync_execution(stateMachineArn=f"{arn}#{case}", input="{}")
            return json.loads(done["output"]) if "output" in done else done["status"]

        assert answer() == "hi"
        data["MockedResponses"]["Hi"]["0"]["Return"]["Payload"] = "hello"
        write(mock, json.dumps(data))
        wait_for(lambda: answer() == "hello", "the mock config reload")
        write(machine, json.dumps({"StartAt": "Hello", "States": {"Hello": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "greet", "Payload.$": "$"}, "OutputPath": "$.Payload.text", "End": True}}}))
        data["MockedResponses"]["Hi"]["0"]["Return"]["Payload"] = {"text": "hello again"}
        write(mock, json.dumps(data))
        wait_for(lambda: answer() == "hello again", "the machine and mock config reload")
        write(machine, '{"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "Next": "Gone"}}}')
        wait_for(lambda: "still serving the previous version of 'greet'" in log.read_text(), "the invalid version")
        assert "MISSING_TRANSITION_TARGET: Missing 'Next' target: Gone at /States/Hello/Next" in log.read_text()
        assert answer() == "hello again"
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()


def test_reload_and_mock_configs_serve_in_one_process(tmp_path, capsys):
    from express.serve.cli import main

    (tmp_path / "machines").mkdir()
    assert main(["serve", "--config", str(tmp_path), "--no-kafka", "--reload", "--workers", "2"]) == 2
    assert "--reload serve in one process: use --workers 1" in capsys.readouterr().err
