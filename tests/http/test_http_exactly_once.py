"""Execution names: at most one run per (machine, name), and the same answer for every duplicate."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError
from httpsupport import ServerThread, arn, server_fixture, sfn_fixture  # noqa: F401 - fixtures

from express.http.names import RECORD_OVERHEAD_BYTES, NameConflict, NamesExhausted, NameTable, input_digest

HEADERS = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.StartSyncExecution"}


async def _concurrent(url: str, body: dict[str, Any], n: int) -> list[tuple[int, bytes]]:
    data = json.dumps(body).encode()
    connector = aiohttp.TCPConnector(limit=n)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> tuple[int, bytes]:
            async with session.post(url + "/", data=data, headers=HEADERS) as resp:
                return resp.status, await resp.read()

        return await asyncio.gather(*(one() for _ in range(n)))


def test_50_concurrent_duplicates_run_once_and_get_the_same_answer(server: ServerThread, sfn: Any) -> None:
    body = {"stateMachineArn": arn("counted"), "name": "order-42", "input": '{"order": 42}'}
    answers = asyncio.run(_concurrent(server.url, body, 50))
    assert server.counter.calls == 1
    assert {status for status, _ in answers} == {200}
    assert len({payload for _, payload in answers}) == 1
    result = json.loads(answers[0][1])
    assert result["status"] == "SUCCEEDED" and json.loads(result["output"])["calls"] == 1

    # A retry after completion gets the stored answer (same execution ARN), without running again.
    again = sfn.start_sync_execution(stateMachineArn=arn("counted"), name="order-42", input='{ "order" : 42 }')
    assert again["executionArn"] == result["executionArn"]
    assert json.loads(again["output"])["calls"] == 1
    assert server.counter.calls == 1

    # The same name with another input is refused and runs nothing.
    with pytest.raises(ClientError) as exc:
        sfn.start_sync_execution(stateMachineArn=arn("counted"), name="order-42", input='{"order": 43}')
    assert exc.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert server.counter.calls == 1

    # Names are per state machine; a new name runs.
    sfn.start_sync_execution(stateMachineArn=arn("counted"), name="order-43", input='{"order": 42}')
    assert server.counter.calls == 2


def test_failed_answers_are_kept_too(server: ServerThread, sfn: Any) -> None:
    a = sfn.start_sync_execution(stateMachineArn=arn("fail"), name="f1")
    b = sfn.start_sync_execution(stateMachineArn=arn("fail"), name="f1")
    assert a["status"] == b["status"] == "FAILED" and a["executionArn"] == b["executionArn"]


def test_full_table_of_running_names_throttles_instead_of_forgetting() -> None:
    server = ServerThread(max_names=2).start()
    try:
        server.counter.delay = 1.0
        sfn = server.client()

        async def three() -> list[tuple[int, bytes]]:
            async with aiohttp.ClientSession() as session:
                async def one(name: str, delay: float) -> tuple[int, bytes]:
                    await asyncio.sleep(delay)
                    body = json.dumps({"stateMachineArn": arn("counted"), "name": name}).encode()
                    async with session.post(server.url + "/", data=body, headers=HEADERS) as resp:
                        return resp.status, await resp.read()

                return await asyncio.gather(one("a", 0), one("b", 0), one("c", 0.3))

        answers = asyncio.run(three())
        assert [s for s, _ in answers] == [200, 200, 400]
        assert json.loads(answers[2][1])["__type"] == "ThrottlingException"
        assert server.counter.calls == 2
        # Both finished now: a new name evicts the oldest finished one and runs.
        server.counter.delay = 0
        r = sfn.start_sync_execution(stateMachineArn=arn("counted"), name="c")
        assert r["status"] == "SUCCEEDED" and server.counter.calls == 3
    finally:
        server.stop()


def test_names_expire_after_retention() -> None:
    server = ServerThread(retention_s=0.3).start()
    try:
        server.counter.delay = 0
        sfn = server.client()
        sfn.start_sync_execution(stateMachineArn=arn("counted"), name="n", input="{}")
        sfn.start_sync_execution(stateMachineArn=arn("counted"), name="n", input="{}")
        assert server.counter.calls == 1
        time.sleep(0.4)
        sfn.start_sync_execution(stateMachineArn=arn("counted"), name="n", input='{"other": 1}')
        assert server.counter.calls == 2
    finally:
        server.stop()


# ---------------------------------------------------------------------- NameTable on its own
async def test_name_table_bounds() -> None:
    base = RECORD_OVERHEAD_BYTES + len("m") + len("1") + len("arn1")  # what each record costs before its answer
    table = NameTable(retention_s=3600, max_names=2, max_bytes=2 * base + 100)
    d = input_digest({"a": 1})
    assert d == input_digest({"a": 1}) and d != input_digest({"a": 2})
    r1 = table.claim(("m", "1"), d, "arn1", 1.0)
    r2 = table.claim(("m", "2"), d, "arn2", 1.0)
    with pytest.raises(NamesExhausted):
        table.claim(("m", "3"), d, "arn3", 1.0)
    assert table.lookup(("m", "1"), d) is r1
    with pytest.raises(NameConflict):
        table.lookup(("m", "1"), input_digest({"a": 2}))
    table.finish(r1, b"x" * 10)
    assert await r1.done == b"x" * 10
    r3 = table.claim(("m", "3"), d, "arn3", 1.0)  # evicts r1, the oldest finished
    assert table.evicted_early == 1 and table.lookup(("m", "1"), d) is None
    table.finish(r2, b"y" * 60)
    table.finish(r3, b"z" * 60)  # over max_bytes: r2 goes
    assert table.lookup(("m", "2"), d) is None and table.lookup(("m", "3"), d) is r3
    assert table.stored_bytes == base + 60 and table.running == 0


async def test_name_table_abandon_lets_a_retry_run() -> None:
    table = NameTable(retention_s=3600, max_names=10)
    d = input_digest({})
    r = table.claim(("m", "x"), d, "arn", 1.0)
    table.abandon(r, RuntimeError("gone"))
    with pytest.raises(RuntimeError):
        await r.done
    assert table.lookup(("m", "x"), d) is None and table.running == 0 and len(table) == 0


async def test_name_table_retention_zero_keeps_only_running() -> None:
    table = NameTable(retention_s=0, max_names=10)
    d = input_digest({})
    r = table.claim(("m", "x"), d, "arn", 1.0)
    assert table.lookup(("m", "x"), d) is r
    table.finish(r, b"{}")
    assert table.lookup(("m", "x"), d) is None and len(table) == 0
