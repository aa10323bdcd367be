"""Overload is refused, not queued: StartSyncExecution beyond ``[http] max_concurrent_sync`` runs
at once gets AWS's ThrottlingException (HTTP 400, "Rate exceeded") and counts in
``express_executions_throttled_total``; the name table is bounded by bytes, running names included.

The executions that are admitted wait on a gate the test opens only after every excess request
has been answered, so which requests are refused does not depend on timing."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from httpsupport import PASS, ServerThread, arn, replace_settings

from express.engine.machine import Engine
from express.http.names import RECORD_OVERHEAD_BYTES
from express.serve.registry import Registry

HEADERS = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.StartSyncExecution"}
GATED = {"StartAt": "G", "States": {"G": {"Type": "Task", "Resource": "gate", "End": True}}}


class GatedServer(ServerThread):
    """The test server plus machine ``gated``, whose executions wait until :meth:`open_gate`."""

    def __init__(self, **http: Any) -> None:
        super().__init__(max_duration_s=60.0)
        self.settings = replace_settings(self.settings, **http)
        self.entered = 0
        self.gate: asyncio.Event | None = None

    def build_registry(self) -> Registry:
        self.gate = asyncio.Event()

        async def gate(event: Any) -> Any:
            self.entered += 1
            assert self.gate is not None
            await self.gate.wait()
            return event

        registry = Registry(Engine(functions={"gate": gate}, max_duration_s=60.0))
        registry.put("gated", json.dumps(GATED))
        registry.put("pass", json.dumps(PASS))
        return registry

    def open_gate(self) -> None:
        assert self.gate is not None
        self.loop.call_soon_threadsafe(self.gate.set)


def throttled_count(server: ServerThread, machine: str, operation: str) -> float:
    _, _, body = server.request("GET", "/metrics")
    series = f'express_executions_throttled_total{{machine="{machine}",operation="{operation}"}} '
    line = next((x for x in body.decode().splitlines() if x.startswith(series)), None)
    return float(line[len(series):]) if line is not None else 0.0


async def flood(server: GatedServer, bodies: list[dict[str, Any]], refused: int) -> list[tuple[int, Any]]:
    """Send every body at once; when ``refused`` answers are in (the others are held at the gate),
    open the gate and collect the rest. Answers in request order."""
    connector = aiohttp.TCPConnector(limit=len(bodies))
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(body: dict[str, Any]) -> tuple[int, Any]:
            async with session.post(server.url + "/", data=json.dumps(body).encode(), headers=HEADERS) as resp:
                return resp.status, json.loads(await resp.read())

        tasks = [asyncio.ensure_future(one(b)) for b in bodies]
        pending = set(tasks)
        while len(tasks) - len(pending) < refused:  # nothing admitted can finish before the gate opens
            done, pending = await asyncio.wait(pending, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            assert done, f"only {len(tasks) - len(pending)} of {len(tasks)} answered, {refused} refusals expected"
            assert all(not t.done() or t.result()[0] == 400 for t in tasks), "an admitted request finished early"
        server.open_gate()
        return list(await asyncio.gather(*tasks))


def test_sync_executions_beyond_the_bound_are_throttled_at_once() -> None:
    server = GatedServer(max_concurrent_sync=5).start()
    try:
        before = throttled_count(server, "gated", "StartSyncExecution")
        unnamed = [{"stateMachineArn": arn("gated"), "input": json.dumps({"i": i})} for i in range(25)]
        named = [{"stateMachineArn": arn("gated"), "name": f"n-{i}", "input": "{}"} for i in range(15)]
        answers = asyncio.run(flood(server, unnamed + named, refused=35))
        ok = [a for s, a in answers if s == 200]
        refused = [a for s, a in answers if s != 200]
        assert len(ok) == 5 and all(a["status"] == "SUCCEEDED" for a in ok)
        assert server.entered == 5
        assert len(refused) == 35
        assert all(a == {"__type": "ThrottlingException", "message": "Rate exceeded"} for a in refused)
        assert throttled_count(server, "gated", "StartSyncExecution") == before + 35

        # A refused name was never claimed: its retry runs (the gate is open now).
        refused_names = [b["name"] for b, (s, _) in zip(unnamed + named, answers, strict=True) if "name" in b and s != 200]
        assert refused_names
        status, answer = server.api("StartSyncExecution", {"stateMachineArn": arn("gated"), "name": refused_names[0],
                                                           "input": "{}"})
        assert status == 200 and answer["status"] == "SUCCEEDED"
        # The slots are free again.
        status, answer = server.api("StartSyncExecution", {"stateMachineArn": arn("pass"), "input": "{}"})
        assert status == 200 and answer["status"] == "SUCCEEDED"
        assert server.server is not None and server.server.api.sync_running == 0
    finally:
        server.stop()


def test_duplicates_of_a_running_name_wait_and_are_not_throttled() -> None:
    server = GatedServer(max_concurrent_sync=1).start()
    try:
        before = throttled_count(server, "gated", "StartSyncExecution")
        body = {"stateMachineArn": arn("gated"), "name": "only-one", "input": '{"a": 1}'}
        other = {"stateMachineArn": arn("gated"), "name": "another", "input": "{}"}
        # The one slot: "only-one" runs; its 9 duplicates wait for its answer; "another" is refused.
        answers = asyncio.run(flood(server, [body] * 10 + [other], refused=1))
        assert [s for s, _ in answers] == [200] * 10 + [400]
        assert len({json.dumps(a, sort_keys=True) for _, a in answers[:10]}) == 1
        assert answers[10][1]["__type"] == "ThrottlingException"
        assert server.entered == 1
        assert throttled_count(server, "gated", "StartSyncExecution") == before + 1
    finally:
        server.stop()


def test_the_name_table_is_bounded_by_bytes_of_running_names() -> None:
    """Room for 3 running named executions with 80-character names (and nothing else): a 4th
    distinct name is refused with ThrottlingException, although max_names is far away."""
    per_record = RECORD_OVERHEAD_BYTES + len("gated") + 80 + len(arn("gated")) + 200  # + ARN tail, generously
    server = GatedServer(max_concurrent_sync=100, max_names=1000, max_name_bytes=3 * per_record + 10).start()
    try:
        before = throttled_count(server, "gated", "StartSyncExecution")
        bodies = [{"stateMachineArn": arn("gated"), "name": f"{i:02d}" + "x" * 78, "input": "{}"} for i in range(6)]
        answers = asyncio.run(flood(server, bodies, refused=3))
        assert sorted(s for s, _ in answers) == [200, 200, 200, 400, 400, 400]
        refused = [a for s, a in answers if s == 400]
        assert all(a["__type"] == "ThrottlingException" and "still running" in a["message"] for a in refused)
        assert server.entered == 3
        assert throttled_count(server, "gated", "StartSyncExecution") == before + 3
        assert server.server is not None
        names = server.server.names
        assert names.running == 0 and names.stored_bytes <= names.max_bytes
    finally:
        server.stop()
