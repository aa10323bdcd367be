"""Raw HTTP: malformed requests get 4xx with AWS error bodies; keep-alive, pipelining, chunked
bodies, health, readiness and metrics."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import pytest
from httpsupport import ServerThread, arn, server_fixture, sfn_fixture  # noqa: F401 - fixtures
from prometheus_client.parser import text_string_to_metric_families

TARGET = "AWSStepFunctions.StartSyncExecution"


def raw(port: int, data: bytes, timeout: float = 10.0, shutdown: bool = True) -> bytes:
    """Send bytes, half-close, read everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def split_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def post(body: bytes, target: str = TARGET, extra: str = "") -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: {target}\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


def aws_error(response: tuple[int, dict[str, str], bytes]) -> tuple[int, str]:
    status, headers, body = response
    parsed = json.loads(body)
    assert isinstance(parsed["message"], str) and parsed["message"]
    return status, parsed["__type"]


@pytest.mark.parametrize("body,code", [
    (b"{not json", "SerializationException"),
    (b"[1, 2]", "SerializationException"),
    (b'"string"', "SerializationException"),
    (b'{"stateMachineArn": 5}', "SerializationException"),
    (b'{"stateMachineArn": "' + arn("pass").encode() + b'", "input": {"a": 1}}', "SerializationException"),
    (b"{}", "ValidationException"),
    (b'{"stateMachineArn": ""}', "ValidationException"),
    (b"\xff\xfe", "SerializationException"),
])
def test_bad_bodies(server: ServerThread, body: bytes, code: str) -> None:
    [resp] = split_responses(raw(server.port, post(body)))
    assert aws_error(resp) == (400, code)
    assert server.counter.calls == 0


def test_unknown_or_missing_target(server: ServerThread) -> None:
    [resp] = split_responses(raw(server.port, post(b"{}", target="AWSStepFunctions.Nope")))
    assert aws_error(resp) == (400, "UnknownOperationException")
    [resp] = split_responses(raw(server.port, post(b"{}", target="DynamoDB_20120810.GetItem")))
    assert aws_error(resp) == (400, "UnknownOperationException")
    data = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    [resp] = split_responses(raw(server.port, data))
    assert aws_error(resp) == (400, "UnknownOperationException")


@pytest.mark.parametrize("data,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"POST / HTTP/1.1\nHost: x\n\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}", 400),  # closed before the body
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 100 + b"\r\n", 431),  # 101 headers
    (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"POST / HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 2\r\n\r\n{}", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n0\r\n"
     + b"T: 1\r\n" * 100 + b"\r\n", 431),  # 101 header and trailer fields
])
def test_malformed_http(server: ServerThread, data: bytes, status: int) -> None:
    responses = split_responses(raw(server.port, data))
    assert responses, data
    got_status, code = aws_error(responses[0])
    assert got_status == status
    assert code


def test_keep_alive_pipelining_and_chunked(server: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("pass"), "input": '{"i": 1}'}).encode()
    chunked = (f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {TARGET}\r\nTransfer-Encoding: chunked\r\n\r\n"
               f"{5:x}\r\n").encode() + body[:5] + f"\r\n{len(body) - 5:x};ext=1\r\n".encode() + body[5:] + \
        b"\r\n0\r\nTrailer: x\r\n\r\n"
    data = post(body) + chunked + post(b"{") + post(body, extra="Connection: close\r\n")
    responses = split_responses(raw(server.port, data, shutdown=False))
    assert [r[0] for r in responses] == [200, 200, 400, 200]
    for status, _headers, payload in responses:
        if status == 200:
            assert json.loads(json.loads(payload)["output"]) == {"echo": {"i": 1}}
    assert responses[-1][1]["connection"] == "close"


def test_http10_and_expect_continue(server: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("pass")}).encode()
    data = (f"POST / HTTP/1.0\r\nX-Amz-Target: {TARGET}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    [resp] = split_responses(raw(server.port, data, shutdown=False))
    assert resp[0] == 200
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall((f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {TARGET}\r\nExpect: 100-continue\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode())
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_body_over_the_configured_limit_is_413() -> None:
    server = ServerThread(max_body_bytes=1000).start()
    try:
        [resp] = split_responses(raw(server.port, post(b"{" + b" " * 2000 + b"}")))
        assert aws_error(resp) == (413, "RequestEntityTooLarge")
    finally:
        server.stop()


def test_slow_request_times_out_with_408() -> None:
    from express.http.protocol import Limits

    server = ServerThread(limits=Limits(request_timeout_s=0.5, keepalive_timeout_s=0.5)).start()
    try:
        t0 = time.monotonic()
        data = raw(server.port, b"POST / HTTP/1.1\r\nHost: x\r\n", shutdown=False)
        assert split_responses(data)[0][0] == 408
        assert time.monotonic() - t0 < 5
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:  # idle keep-alive closes
            assert s.recv(10) == b""
    finally:
        server.stop()


def test_healthz_readyz_metrics(server: ServerThread, sfn: Any) -> None:
    assert server.request("GET", "/healthz")[0] == 200
    assert server.request("HEAD", "/healthz")[0] == 200
    assert server.request("GET", "/readyz")[0] == 200
    sfn.start_sync_execution(stateMachineArn=arn("pass"))
    with pytest.raises(Exception):  # noqa: B017 - any client error
        sfn.start_sync_execution(stateMachineArn=arn("nope"))
    status, headers, body = server.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples = [(s.labels, s.value) for s in families["express_http_requests"].samples if s.name.endswith("_total")]
    assert any(lbl == {"operation": "StartSyncExecution", "status": "200"} and v >= 1 for lbl, v in samples)
    assert any(lbl == {"operation": "StartSyncExecution", "status": "400"} and v >= 1 for lbl, v in samples)
    assert "express_executions" in families and "express_execution_duration_seconds" in families


def test_readyz_is_503_while_draining_and_running_requests_finish() -> None:
    server = ServerThread(max_duration_s=5).start()
    result: dict[str, Any] = {}
    try:
        sfn = server.client()
        t = threading.Thread(target=lambda: result.update(sfn.start_sync_execution(stateMachineArn=arn("sleepy"))))
        t.start()
        time.sleep(0.3)
        stopping = server.stop_async()
        deadline = time.monotonic() + 5
        while server.request("GET", "/readyz")[0] != 503:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert server.request("GET", "/healthz")[0] == 200
        status, _, body = server.request("POST", "/", b"{}", {"X-Amz-Target": TARGET})
        assert status == 503 and json.loads(body)["__type"] == "ServiceUnavailable"
        stopping.result(10)
        t.join(10)
        assert result["status"] == "SUCCEEDED"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    finally:
        server.stop()


def test_start_and_stop_are_idempotent(server: ServerThread) -> None:
    port = server.port
    server.run(server.server.start())  # type: ignore[union-attr]
    assert server.port == port
    server.stop_async().result(10)
    server.stop_async().result(10)


# ---------------------------------------------------------------------- framing, limits and connection handling
def recv_until_closed(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def chunked_head(target: str = TARGET) -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {target}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()


@pytest.mark.parametrize("piece,status,code", [
    # 1-byte chunks with 1 KB extensions: 1,000 times the body on the wire
    (b"1;" + b"e" * 1000 + b"\r\nx\r\n", 413, "RequestEntityTooLarge"),
    # a small body, then trailer lines without end
    (b"T: " + b"v" * 1000 + b"\r\n", 431, "RequestHeaderFieldsTooLarge"),
])
def test_chunk_extension_and_trailer_bombs_are_refused_with_bounded_memory(
        server: ServerThread, piece: bytes, status: int, code: str) -> None:
    import tracemalloc

    burst = piece * 64  # ~64 KB
    tracemalloc.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(chunked_head() + (b"1\r\nx\r\n0\r\n" if piece.startswith(b"T") else b""))
            for _ in range(64):  # 4 MB; the limits allow 1 MB + 16 KB of wire per request
                s.sendall(burst)
            s.shutdown(socket.SHUT_WR)
            data = recv_until_closed(s)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [resp] = split_responses(data)
    assert aws_error(resp) == (status, code)
    assert peak < 3 * 1024 * 1024, f"{peak / 1e6:.1f} MB held for a refused request"


def test_many_small_chunks_are_decoded_reading_each_byte_once(server: ServerThread, monkeypatch: Any) -> None:
    from express.http import protocol

    fed = [0]
    real = protocol._request_parser

    class Counting:
        def __init__(self, callbacks: object) -> None:
            self._parser = real(callbacks)

        def feed_data(self, data: Any) -> None:
            fed[0] += len(data)
            self._parser.feed_data(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._parser, name)

    monkeypatch.setattr(protocol, "_request_parser", Counting)
    payload = json.dumps({"stateMachineArn": arn("pass"), "input": json.dumps({"pad": "p" * 20000})}).encode()
    wire = chunked_head() + b"".join(b"1\r\n" + payload[i:i + 1] + b"\r\n" for i in range(len(payload))) + \
        b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(wire), 1000):  # ~140 reads on the server's side
            s.sendall(wire[i:i + 1000])
        s.shutdown(socket.SHUT_WR)
        [(status, _, body)] = split_responses(recv_until_closed(s))
    assert status == 200 and json.loads(json.loads(body)["output"]) == {"echo": {"pad": "p" * 20000}}
    assert fed[0] == len(wire)  # linear: no byte is parsed twice, however the data was split


@pytest.mark.parametrize("connection,version,kept", [
    ("keep-alive, close", "1.1", False),
    ("close,keep-alive", "1.1", False),
    ("x-close-hint", "1.1", True),  # a token that merely contains "close"
    ("Keep-Alive", "1.0", True),
    ("foo, keep-alive", "1.0", True),
    ("x-keep-alive-hint", "1.0", False),
])
def test_connection_header_is_read_as_tokens(server: ServerThread, connection: str, version: str, kept: bool) -> None:
    first = f"GET /healthz HTTP/{version}\r\nHost: x\r\nConnection: {connection}\r\n\r\n".encode()
    second = b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(first + second)
        responses = split_responses(recv_until_closed(s))
    assert [r[0] for r in responses] == ([200, 200] if kept else [200])
    if kept:
        assert responses[0][1].get("connection") == ("keep-alive" if version == "1.0" else None)
    else:
        assert responses[0][1]["connection"] == "close"


def test_http10_keep_alive_is_echoed_and_the_connection_kept(server: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("pass")}).encode()
    request = (f"POST / HTTP/1.0\r\nConnection: keep-alive\r\nX-Amz-Target: {TARGET}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        for _ in range(3):  # one after the other on the same connection, as an HTTP/1.0 client does
            s.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            assert head.startswith(b"HTTP/1.1 200 OK") and b"\r\nConnection: keep-alive\r\n" in head
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            answer = b""
            while len(answer) < length:
                answer += s.recv(length - len(answer))
            assert json.loads(answer)["status"] == "SUCCEEDED"
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")  # no keep-alive: answered, then closed
        [(status, headers, _)] = split_responses(recv_until_closed(s))
    assert status == 200 and headers["connection"] == "close"


def test_no_100_continue_for_http10(server: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("pass")}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall((f"POST / HTTP/1.0\r\nX-Amz-Target: {TARGET}\r\nExpect: 100-continue\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode())
        time.sleep(0.3)  # the head alone: time for a (wrong) 100 Continue to be sent
        s.sendall(body)
        data = recv_until_closed(s)
    assert data.startswith(b"HTTP/1.1 200 OK") and b"100 Continue" not in data


def test_unknown_expectation_is_417(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall((f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {TARGET}\r\nExpect: something-else\r\n"
                   "Content-Length: 100\r\n\r\n").encode())  # the body is not sent: 417 must come first
        [resp] = split_responses(recv_until_closed(s))
    assert aws_error(resp) == (417, "ExpectationFailed")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_lingering_close_lets_a_client_sending_a_large_body_read_the_413(framing: str) -> None:
    server = ServerThread(max_body_bytes=1000).start()
    try:
        size = 8 * 1024 * 1024
        if framing == "chunked":
            head = chunked_head()
            body = b"".join(b"10000\r\n" + b" " * 0x10000 + b"\r\n" for _ in range(size // 0x10000))
        else:
            head = f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {TARGET}\r\nContent-Length: {size}\r\n\r\n".encode()
            body = b" " * size
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(head + body)  # the server answers long before this is all sent
            data = recv_until_closed(s)
        [resp] = split_responses(data)
        assert aws_error(resp) == (413, "RequestEntityTooLarge")
    finally:
        server.stop()


def test_a_parse_error_is_answered_in_turn_after_the_pipelined_requests_before_it(server: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("counted")}).encode()  # answered after 0.2 s
    data = post(body) + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET / HTTP/1.1\r\nBad Header: 1\r\n\r\n"
    responses = split_responses(raw(server.port, data, shutdown=False))
    assert [r[0] for r in responses] == [200, 200, 400]
    assert json.loads(responses[0][2])["status"] == "SUCCEEDED"
    assert aws_error(responses[2])[1] == "SerializationException"


def test_an_upgrade_request_is_answered_over_http11_with_its_body(server: ServerThread) -> None:
    body = json.dumps({"stateMachineArn": arn("pass"), "input": '{"u": 1}'}).encode()
    data = post(body, extra="Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n")
    responses = split_responses(raw(server.port, data + post(body, extra="Connection: close\r\n"), shutdown=False))
    assert [r[0] for r in responses] == [200, 200]
    for _, _, payload in responses:
        assert json.loads(json.loads(payload)["output"]) == {"echo": {"u": 1}}


def test_request_head_whitespace_counts_against_the_head_limit(server: ServerThread) -> None:
    data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX:" + b" " * 40000 + b"v\r\n\r\n"
    [resp] = split_responses(raw(server.port, data))
    assert aws_error(resp) == (431, "RequestHeaderFieldsTooLarge")


def test_a_long_pipeline_is_answered_in_order(server: ServerThread) -> None:
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
    body = json.dumps({"stateMachineArn": arn("pass"), "input": json.dumps({"pad": "p" * 40000})}).encode()
    data = one * 1000 + post(body) + one * 1000 + b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    responses = split_responses(raw(server.port, data, shutdown=False))
    assert len(responses) == 4002
    expected = [b'{"status":"ok"}', b'{"status":"ready"}'] * 1000
    assert [r[2] for r in responses[:2000]] == expected and [r[2] for r in responses[2001:4001]] == expected
    assert json.loads(json.loads(responses[2000][2])["output"]) == {"echo": {"pad": "p" * 40000}}
    assert responses[-1][0] == 404


def count_tasks(server: ServerThread) -> list[str]:
    """The Tasks the server's loop makes for requests from now on (by their coroutine's name)."""
    made: list[str] = []

    def factory(loop: Any, coro: Any, **kw: Any) -> Any:
        name = getattr(coro, "__qualname__", "")
        if name in ("HttpConnection._run", "_resumed"):
            made.append(name)
        return asyncio.Task(coro, loop=loop, **kw)

    ready = threading.Event()
    server.loop.call_soon_threadsafe(lambda: (server.loop.set_task_factory(factory), ready.set()))
    assert ready.wait(5)
    return made


def test_a_sync_execution_that_never_suspends_is_answered_without_a_task(server: ServerThread) -> None:
    made = count_tasks(server)
    body = json.dumps({"stateMachineArn": arn("pass"), "input": '{"n": 1}'}).encode()
    responses = split_responses(raw(server.port, post(body) * 20 + post(body, extra="Connection: close\r\n")))
    assert [r[0] for r in responses] == [200] * 21
    assert all(json.loads(json.loads(r[2])["output"]) == {"echo": {"n": 1}} for r in responses)
    assert made == []  # the handlers ran inline, in the connection's callback


PARALLEL = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 0, "End": True}}},
    {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "count", "TimeoutSeconds": 5, "End": True}}}]}}}


def test_what_needs_an_asyncio_task_gets_one(server: ServerThread) -> None:
    """Branches (a TaskGroup), a Task's timeout (asyncio.timeout), every other operation and the console
    run inside a Task, taken over from the inline start with what it had done."""
    assert server.registry is not None
    server.registry.put("both", json.dumps(PARALLEL))
    made = count_tasks(server)
    body = json.dumps({"stateMachineArn": arn("both"), "input": '{"n": 2}'}).encode()
    listed = json.dumps({}).encode()
    data = (post(body) + post(listed, target="AWSStepFunctions.ListStateMachines") + post(body)
            + b"GET /console/api/machines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    responses = split_responses(raw(server.port, data))
    assert [r[0] for r in responses[:3]] == [200, 200, 200]
    for r in (responses[0], responses[2]):
        answer = json.loads(r[2])
        assert answer["status"] == "SUCCEEDED", answer
        first, second = json.loads(answer["output"])
        assert first == {"n": 2} and second["event"] == {"n": 2}
    assert "both" in {m["name"] for m in json.loads(responses[1][2])["stateMachines"]}
    assert responses[3][0] in (200, 401, 403)  # the console answered (its token decides which)
    assert made.count("_resumed") == 4
