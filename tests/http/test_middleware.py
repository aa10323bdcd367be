"""The API's stack (express.http.middleware): the public socket's requests are counted, authenticated
and routed; those forwarded on the private routing socket go through the same stack without those
wrappers."""
from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from httpsupport import ServerThread, arn
from prometheus_client.parser import text_string_to_metric_families

from express.http.messages import Request, Response
from express.http.middleware import routed, with_auth
from express.http.routing import ENV_ROUTE_DIR, ENV_WORKER_COUNT, ENV_WORKER_INDEX, NameRouter, socket_path

TARGET = "AWSStepFunctions.StartSyncExecution"


@pytest.fixture(name="worker")
def worker_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServerThread, str]]:
    """Worker 0 of 2, with credentials; worker 1 is not running, so what is forwarded to it fails."""
    directory = tempfile.mkdtemp(prefix="express-mw-", dir="/tmp")  # short: a Unix socket path
    monkeypatch.setenv(ENV_ROUTE_DIR, directory)
    monkeypatch.setenv(ENV_WORKER_COUNT, "2")
    monkeypatch.setenv(ENV_WORKER_INDEX, "0")
    server = ServerThread(credentials={"AKIDEXAMPLE": "secret"}).start()
    try:
        yield server, directory
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def name_owned_by(owner: int) -> str:
    router = NameRouter(0, 2, "/unused")
    return next(n for n in (f"mw-{i}" for i in range(1000)) if router.owner(arn("pass"), n) == owner)


def requests_counted(server: ServerThread, status: str) -> float:
    _, _, body = server.request("GET", "/metrics")
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == "express_http_requests_total" and s.labels == {"operation": "StartSyncExecution",
                                                                        "status": status}:
                return s.value
    return 0.0


def unsigned(body: bytes) -> bytes:
    return (b"POST / HTTP/1.1\r\nHost: express-worker\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"X-Amz-Target: " + TARGET.encode() + b"\r\nConnection: close\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def exchange(sock: socket.socket, wire: bytes) -> tuple[int, dict[str, object]]:
    with sock:
        sock.settimeout(30)
        sock.sendall(wire)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_a_forwarded_request_is_neither_authenticated_counted_nor_forwarded_again(
        worker: tuple[ServerThread, str]) -> None:
    server, directory = worker
    name = name_owned_by(1)
    body = json.dumps({"stateMachineArn": arn("pass"), "name": name, "input": '{"a": 1}'}).encode()
    ok, refused = requests_counted(server, "200"), requests_counted(server, "503")

    private = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    private.connect(socket_path(directory, 0))
    status, answer = exchange(private, unsigned(body))
    assert status == 200 and answer["status"] == "SUCCEEDED" and answer["name"] == name
    assert requests_counted(server, "200") == ok  # counted by the worker that forwarded it

    public = socket.create_connection(("127.0.0.1", server.port))
    status, answer = exchange(public, unsigned(body))
    assert (status, answer["__type"]) == (403, "MissingAuthenticationTokenException")

    with pytest.raises(ClientError) as e:  # signed, on the public socket: routed to worker 1, which is absent
        server.client(retries={"total_max_attempts": 1}).start_sync_execution(stateMachineArn=arn("pass"), name=name, input='{"a": 1}')
    assert e.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert "not reachable" in e.value.response["Error"]["Message"]
    assert requests_counted(server, "503") == refused + 1


def test_a_wrapper_with_nothing_to_do_is_left_out() -> None:
    async def handler(request: Request) -> Response:
        return Response(200, b"{}")

    def error(status: int, code: str, message: str, **extra: object) -> Response:
        return Response(status, b"{}")

    assert with_auth(handler, None, error) is handler
    assert routed(handler, None, error) is handler
