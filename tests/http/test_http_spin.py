"""A spinning execution does not freeze the server: /healthz answers while a StartSyncExecution of a
Pass <-> Choice loop runs until its cap on the same server (real server, aiohttp client)."""
from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from httpsupport import ServerThread, arn

from express.engine.machine import Engine
from express.serve.registry import Registry
from tests.support import free_port, serve, stop, wait_log

HEADERS = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.StartSyncExecution"}
SPIN = {"StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": -1, "Next": "D"}], "Default": "P"},
    "P": {"Type": "Pass", "Next": "C"},
    "D": {"Type": "Succeed"}}}
CAP_S = 2.0


class SpinServer(ServerThread):
    def __init__(self) -> None:
        super().__init__(max_duration_s=CAP_S)

    def build_registry(self) -> Registry:
        registry = Registry(Engine(max_duration_s=CAP_S))
        registry.put("spin", json.dumps(SPIN))
        registry.put("spin-timeout", json.dumps({**SPIN, "TimeoutSeconds": 1}))
        return registry


@pytest.fixture(name="spin_server")
def spin_server_fixture() -> Iterator[SpinServer]:
    s = SpinServer().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(name="spin_process")
def spin_process_fixture(tmp_path: pathlib.Path) -> Iterator[str]:
    """``express serve`` in its own process (a server thread in the test's process would share its
    GIL with the probing client: the client, not the server, would then be what is starved)."""
    (tmp_path / "machines").mkdir()
    (tmp_path / "machines" / "spin.asl.json").write_text(json.dumps(SPIN))
    (tmp_path / "express.toml").write_text(f"[engine]\nmax_duration_s = {CAP_S}\n")
    port, log = free_port(), tmp_path / "serve.log"
    proc = serve(tmp_path, log, "--no-kafka", "--workers", "1", "--http", f"127.0.0.1:{port}")
    try:
        wait_log(log, r"HTTP \(AWS JSON 1.0 StepFunctions API\) on", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


async def test_healthz_answers_while_a_spinning_execution_runs(spin_process: str) -> None:
    body = {"stateMachineArn": arn("spin"), "input": json.dumps({"x": 1})}
    async with aiohttp.ClientSession() as session:

        async def spin() -> Any:
            async with session.post(spin_process + "/", json=body, headers=HEADERS) as resp:
                assert resp.status == 200
                return json.loads(await resp.read())

        spinning = asyncio.ensure_future(spin())
        answered = 0
        async with aiohttp.ClientSession() as probe:  # its own connection
            while not spinning.done():
                async with probe.get(spin_process + "/healthz") as resp:
                    assert resp.status == 200
                    await resp.read()
                if not spinning.done():
                    answered += 1
                await asyncio.sleep(0.01)
        answer = await spinning
    assert answer["status"] == "TIMED_OUT"
    assert answer["error"] == "States.Timeout"
    assert answer["cause"] == f"The execution exceeded its maximum duration of {CAP_S:g} seconds."
    # before: the loop was held for the whole run and /healthz answered only after it
    assert answered >= 10, answered


def test_timeout_seconds_answer_has_neither_error_nor_cause(spin_server: SpinServer) -> None:
    """AWS's shape for a machine's own TimeoutSeconds (recorded: DescribeExecution of
    test_global_timeout in ../shared/conformance/cases.jsonl): the keys are absent."""
    status, answer = spin_server.api("StartSyncExecution", {"stateMachineArn": arn("spin-timeout"),
                                                            "input": json.dumps({"x": 1})})
    assert (status, answer["status"]) == (200, "TIMED_OUT")
    assert "error" not in answer and "cause" not in answer
