"""Two ``express serve`` processes (as two hosts would run them, each on its own port and folder) sharing
one Redis through ``[state] url``: a machine created, updated or deleted on one is seen by the other
within the follower's bound, and outlives both servers."""
from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from express.store.follower import PROPAGATION_BOUND_S
from tests.store.storesupport import Server

ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:"
ROLE = "arn:aws:iam::000000000000:role/r"


def result_of(value: int) -> str:
    return json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": value, "End": True}}})


@pytest.fixture
def servers(tmp_path: pathlib.Path, redis_url: str) -> Iterator[tuple[Server, Server]]:
    a, b = Server(tmp_path / "host-a", redis_url), Server(tmp_path / "host-b", redis_url)
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def within_bound(check: Callable[[], Any]) -> Any:
    """``check()``'s value once it stops raising, within the documented propagation bound."""
    deadline = time.monotonic() + PROPAGATION_BOUND_S
    while True:
        try:
            return check()
        except (AssertionError, ClientError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def output(server: Server, name: str) -> Any:
    answer = server.client().start_sync_execution(stateMachineArn=ARN + name)
    assert answer["status"] == "SUCCEEDED", answer
    return json.loads(answer["output"])


def test_a_change_made_on_one_server_is_served_by_the_other(servers: tuple[Server, Server]) -> None:
    a, b = servers
    a.client().create_state_machine(name="shared", definition=result_of(1), roleArn=ROLE, type="EXPRESS")
    assert within_bound(lambda: output(b, "shared")) == 1
    b.client().update_state_machine(stateMachineArn=ARN + "shared", definition=result_of(2))

    def updated_on_a() -> None:
        assert output(a, "shared") == 2

    within_bound(updated_on_a)
    a.client().delete_state_machine(stateMachineArn=ARN + "shared")

    def gone_from_b() -> None:
        with pytest.raises(ClientError) as e:
            b.client().describe_state_machine(stateMachineArn=ARN + "shared")
        assert e.value.response["Error"]["Code"] == "StateMachineDoesNotExist"

    within_bound(gone_from_b)


def test_one_winner_when_both_servers_create_one_name(servers: tuple[Server, Server]) -> None:
    a, b = servers
    results = []
    for i, server in enumerate([a, b, a, b]):
        try:
            server.client().create_state_machine(name="race", definition=result_of(i), roleArn=ROLE, type="EXPRESS")
            results.append(i)
        except ClientError as e:
            results.append(e.response["Error"]["Code"])
    assert results[0] == 0 and set(results[1:]) == {"StateMachineAlreadyExists"}
    assert within_bound(lambda: output(b, "race")) == 0


def test_machines_outlive_both_servers(servers: tuple[Server, Server]) -> None:
    a, b = servers
    a.client().create_state_machine(name="durable", definition=result_of(7), roleArn=ROLE, type="EXPRESS",
                                    tags=[{"key": "team", "value": "payments"}])
    a.stop()
    b.stop()
    b.start()
    assert output(b, "durable") == 7
    tags = b.client().list_tags_for_resource(resourceArn=ARN + "durable")["tags"]
    assert tags == [{"key": "team", "value": "payments"}]
