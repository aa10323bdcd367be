"""Named executions across workers (express.http.routing): the forwarding client and its parser, against
real owners on Unix sockets, and ``express serve --workers 2`` under 1,000 concurrent names."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from httpsupport import wait_all_workers

from express.http.routing import NameRouter, RoutingError, socket_path
from tests.support import serve, stop

TARGET = "AWSStepFunctions.StartSyncExecution"
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"echo.$": "$"}, "End": True}}}
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:pass"


# ---------------------------------------------------------------------- the forwarding client's parser
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    return await reader.readexactly(length)


async def with_owner(answer: Answer, requests: int = 1) -> list[Any]:
    """Start a raw owner on worker 1's socket that answers with ``answer``; forward ``requests`` requests."""
    directory = tempfile.mkdtemp(prefix="express-route-test-")
    accepted = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            await answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(serve, socket_path(directory, 1))
    router = NameRouter(0, 2, directory)
    results: list[Any] = []
    try:
        for i in range(requests):
            try:
                results.append(await asyncio.wait_for(router.forward(1, TARGET, b'{"i": %d}' % i), 10))
            except RoutingError as e:
                results.append(e)
    finally:
        await router.close()
        server.close()
        await server.wait_closed()
        os.unlink(socket_path(directory, 1))
        os.rmdir(directory)
    results.append(accepted)
    return results


def test_forward_reads_chunked_answers_split_at_every_byte_and_reuses_the_connection() -> None:
    body = b'{"status":"SUCCEEDED","output":"{}"}'

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            assert (await read_request(reader)).startswith(b'{"i": ')
            wire = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amzn-RequestId: r-1\r\n"
                    b"x-amzn-extra:  padded \r\nServer: other\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"5;ext=1\r\n" + body[:5] + b"\r\n" + f"{len(body) - 5:X}\r\n".encode() + body[5:]
                    + b"\r\n0\r\nTrailer: x\r\n\r\n")
            for i in range(len(wire)):  # one byte per write
                writer.write(wire[i:i + 1])
                await writer.drain()

    *responses, accepted = asyncio.run(with_owner(answer, requests=3))
    assert accepted == 1  # one pooled connection for the three requests
    for r in responses:
        assert r.status == 200 and r.body == body and r.content_type == "application/x-amz-json-1.0"
        assert dict(r.headers) == {"X-Amzn-RequestId": "r-1", "x-amzn-extra": "padded"}


def test_forward_skips_informational_answers_and_reads_close_delimited_bodies() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\n\r\n{\"__type\":\"X\",")
        await writer.drain()
        writer.write(b'"message":"m"}')
        await writer.drain()

    *responses, accepted = asyncio.run(with_owner(answer, requests=2))
    assert accepted == 2  # Connection: close: the second request opened another connection
    for r in responses:
        assert r.status == 400 and json.loads(r.body) == {"__type": "X", "message": "m"}
        assert r.content_type == "application/json"


@pytest.mark.parametrize("wire", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # closed before the body is complete
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{}",  # over the size cap
    b"garbage",
    b"",
])
def test_forward_refuses_malformed_answers_with_a_routing_error(wire: bytes) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(wire)
        await writer.drain()

    [result, _accepted] = asyncio.run(with_owner(answer))
    assert isinstance(result, RoutingError), result
    assert "worker 1" in str(result)


def test_forward_to_an_absent_owner_is_a_routing_error() -> None:
    async def main() -> Any:
        router = NameRouter(0, 2, tempfile.gettempdir() + "/express-no-such-dir")
        try:
            return await router.forward(1, TARGET, b"{}")
        except RoutingError as e:
            return e

    result = asyncio.run(main())
    assert isinstance(result, RoutingError) and "not reachable" in str(result)


# ---------------------------------------------------------------------- express serve --workers 2
@pytest.fixture(name="two_workers", scope="module")
def two_workers_fixture() -> Iterator[str]:
    root = pathlib.Path(tempfile.mkdtemp(prefix="express-routing-"))
    (root / "machines").mkdir()
    (root / "machines" / "pass.asl.json").write_text(json.dumps(PASS))
    log = root / "serve.log"
    proc = serve(root, log, "--no-kafka", "--http", "127.0.0.1:0", "--workers", "2",
                 env={"EXPRESS_WORKERS_HTTP": "all", "EXPRESS_HTTP_MAX_NAMES": "100000"})
    try:
        yield f"http://127.0.0.1:{wait_all_workers(log, proc)}/"
    finally:
        stop(proc)


async def named_calls(url: str, names: list[str], connections: int) -> list[tuple[int, bytes]]:
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def one(name: str) -> tuple[int, bytes]:
            body = json.dumps({"stateMachineArn": ARN, "name": name, "input": json.dumps({"name": name})})
            async with session.post(url, data=body, headers=headers) as resp:
                return resp.status, await resp.read()

        return await asyncio.gather(*(one(name) for name in names))


@pytest.mark.timeout(180)
def test_1000_concurrent_named_executions_over_two_workers_all_succeed(two_workers: str) -> None:
    router = NameRouter(0, 2, "/unused")
    run = os.urandom(4).hex()
    names = [f"n-{run}-{i}" for i in range(1000)]
    owners = {router.owner(ARN, name) for name in names}
    assert owners == {0, 1}  # both workers own names: about half the requests are forwarded
    for _round in range(2):  # the second round reuses the pooled connections between the workers
        answers = asyncio.run(named_calls(two_workers, names, connections=400))
        failed = [(s, b[:200]) for s, b in answers if s != 200]
        assert not failed, f"{len(failed)} of {len(answers)} failed, e.g. {failed[:3]}"
        for (_, payload), name in zip(answers, names, strict=True):
            result = json.loads(payload)
            assert result["status"] == "SUCCEEDED" and result["name"] == name
            assert json.loads(result["output"]) == {"echo": {"name": name}}
