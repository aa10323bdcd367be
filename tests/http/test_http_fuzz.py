"""Hypothesis throws malformed bodies, headers and field values at the server: every answer is a
4xx with an AWS error body (or a 200 when the request happens to be valid), nothing runs for a
refused request, the server never crashes or hangs, and a valid request afterwards still works."""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from httpsupport import ServerThread, arn, running
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

OPS = ["StartSyncExecution", "StartExecution", "CreateStateMachine", "UpdateStateMachine", "DeleteStateMachine",
       "DescribeStateMachine", "ListStateMachines", "ValidateStateMachineDefinition", "TestState"]
FIELDS = ["stateMachineArn", "name", "input", "definition", "roleArn", "type", "includedData", "maxResults",
          "nextToken", "traceHeader", "loggingConfiguration", "tracingConfiguration", "tags", "severity",
          "inspectionLevel", "variables", "stateName", "mock", "stateConfiguration"]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
field_values = st.one_of(
    json_values,
    st.sampled_from([arn("counted"), arn("nope"), "arn:aws:states:us-east-1:000000000000:express:x:y:z",
                     "arn:", "arn:aws:states:::stateMachine:", "\u0000", "a" * 300, "{}", "[]", "{\"a\": 1}",
                     "ALL_DATA", "EXPRESS", '{"StartAt": "A", "States": {"A": {"Type": "Fail"}}}',
                     '{"Type": "Pass", "End": true}']))


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ServerThread]:
    with running(ServerThread(), task_delay_s=0) as s:
        yield s


def exchange(port: int, data: bytes) -> list[tuple[int, bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(65536)  # a hang would raise TimeoutError and fail the test
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data[:200]
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        out.append((status, rest[:length]))
        data = rest[length:]
    return out


def check_answers(answers: list[tuple[int, bytes]]) -> None:
    assert answers, "no answer"
    for status, body in answers:
        assert status < 500, (status, body)
        if status >= 400:
            parsed = json.loads(body)
            assert isinstance(parsed.get("__type"), str) and isinstance(parsed.get("message"), str)


def request(op: str, body: bytes, extra_headers: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    head = f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AWSStepFunctions.{op}\r\nContent-Length: {len(body)}\r\n"
    for name, value in extra_headers:
        head += f"{name}: {value}\r\n"
    return head.encode("latin-1", "replace") + b"\r\n" + body


def still_works(server: ServerThread) -> None:
    status, answer = server.api("StartSyncExecution", {"stateMachineArn": arn("pass"), "input": '{"ok": 1}'})
    assert status == 200 and answer["status"] == "SUCCEEDED"


@FUZZ
@given(op=st.sampled_from(OPS), fields=st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=6))
def test_fuzz_field_values(fuzz_server: ServerThread, op: str, fields: dict[str, Any]) -> None:
    before = fuzz_server.counter.calls
    answers = exchange(fuzz_server.port, request(op, json.dumps(fields).encode()))
    check_answers(answers)
    if answers[0][0] != 200:
        assert fuzz_server.counter.calls == before, "a refused request ran something"


@FUZZ
@given(op=st.sampled_from(OPS + ["Nope", ""]), body=st.binary(max_size=300))
def test_fuzz_bodies(fuzz_server: ServerThread, op: str, body: bytes) -> None:
    before = fuzz_server.counter.calls
    answers = exchange(fuzz_server.port, request(op, body))
    check_answers(answers)
    if answers[0][0] != 200:
        assert fuzz_server.counter.calls == before


@FUZZ
@given(headers=st.lists(st.tuples(st.text(min_size=1, max_size=20), st.text(max_size=40)), max_size=5))
def test_fuzz_headers(fuzz_server: ServerThread, headers: list[tuple[str, str]]) -> None:
    body = json.dumps({"stateMachineArn": arn("pass")}).encode()
    check_answers(exchange(fuzz_server.port, request("StartSyncExecution", body, headers)))


@FUZZ
@given(data=st.binary(max_size=400) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_fuzz_raw_bytes(fuzz_server: ServerThread, data: bytes) -> None:
    try:
        answers = exchange(fuzz_server.port, data)
    except ConnectionResetError:
        return
    if data.strip():
        check_answers(answers)


def test_still_works_after_fuzzing(fuzz_server: ServerThread) -> None:
    still_works(fuzz_server)
    assert fuzz_server.request("GET", "/healthz")[0] == 200
