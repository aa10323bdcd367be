"""One source of truth for machines: ``express serve --workers 2`` (one port, SO_REUSEPORT) with the
default SQLite store. After Create, Update or Delete through one worker, 20 fresh boto3 clients
(new connections, landing on either worker) see the change within the documented bound; API-made
machines are listed, described and run after a full restart; config machines stay the files'."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from httpsupport import TwoWorkers

pytestmark = pytest.mark.timeout(180)

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"echo.$": "$"}, "End": True}}}
ROLE = "arn:aws:iam::000000000000:role/r"
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:"
CLIENTS = 20


def result_of(value: int) -> dict[str, Any]:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": value, "End": True}}}


@pytest.fixture(name="server", scope="module")
def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoWorkers]:
    with TwoWorkers.serving(tmp_path_factory.mktemp("shared-machines"), {"configured": PASS}) as server:
        yield server


def every_client_sees(server: TwoWorkers, check: Callable[[Any], None]) -> None:
    server.every_client(check, CLIENTS)


def code(e: ClientError) -> str:
    return str(e.response["Error"]["Code"])


def runs(sfn: Any, name: str) -> Any:
    answer = sfn.start_sync_execution(stateMachineArn=ARN + name, input="{}")
    assert answer["status"] == "SUCCEEDED", answer
    return json.loads(answer["output"])


def test_a_created_machine_is_listed_described_and_run_by_every_client(server: TwoWorkers) -> None:
    arn = server.client().create_state_machine(name="made", definition=json.dumps(result_of(1)), roleArn=ROLE,
                                               type="EXPRESS", tags=[{"key": "team", "value": "a"}])
    assert arn["stateMachineArn"] == ARN + "made"

    def check(sfn: Any) -> None:
        assert "made" in [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
        d = sfn.describe_state_machine(stateMachineArn=ARN + "made")
        assert d["type"] == "EXPRESS" and json.loads(d["definition"]) == result_of(1)
        assert runs(sfn, "made") == 1

    every_client_sees(server, check)
    # the same Create again, through any worker, is answered; another one is refused
    for _ in range(4):
        sfn = server.client()
        again = sfn.create_state_machine(name="made", definition=json.dumps(result_of(1)), roleArn=ROLE,
                                         type="EXPRESS")
        assert again["stateMachineArn"] == ARN + "made"
        with pytest.raises(ClientError) as e:
            sfn.create_state_machine(name="made", definition=json.dumps(result_of(2)), roleArn=ROLE, type="EXPRESS")
        assert code(e.value) == "StateMachineAlreadyExists"


def test_an_update_is_seen_by_every_client(server: TwoWorkers) -> None:
    server.client().create_state_machine(name="updated", definition=json.dumps(result_of(1)), roleArn=ROLE,
                                         type="EXPRESS")
    revision = server.client().update_state_machine(stateMachineArn=ARN + "updated",
                                                    definition=json.dumps(result_of(2)))["revisionId"]

    def check(sfn: Any) -> None:
        d = sfn.describe_state_machine(stateMachineArn=ARN + "updated")
        assert d["revisionId"] == revision and json.loads(d["definition"]) == result_of(2)
        assert runs(sfn, "updated") == 2

    every_client_sees(server, check)


def test_a_deletion_is_seen_by_every_client(server: TwoWorkers) -> None:
    server.client().create_state_machine(name="deleted", definition=json.dumps(PASS), roleArn=ROLE,
                                         type="EXPRESS")
    every_client_sees(server, lambda sfn: runs(sfn, "deleted"))
    server.client().delete_state_machine(stateMachineArn=ARN + "deleted")

    def check(sfn: Any) -> None:
        assert "deleted" not in [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
        for call in (lambda: sfn.describe_state_machine(stateMachineArn=ARN + "deleted"),
                     lambda: sfn.start_sync_execution(stateMachineArn=ARN + "deleted", input="{}")):
            with pytest.raises(ClientError) as e:
                call()
            assert code(e.value) == "StateMachineDoesNotExist"

    every_client_sees(server, check)


def test_config_machines_stay_the_files_and_cannot_be_changed_over_the_api(server: TwoWorkers) -> None:
    sfn = server.client()
    for call in (lambda: sfn.update_state_machine(stateMachineArn=ARN + "configured", roleArn=ROLE + "2"),
                 lambda: sfn.delete_state_machine(stateMachineArn=ARN + "configured")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e.value) == "ValidationException" and "configured.asl.json" in str(e.value)
    with pytest.raises(ClientError) as e:
        sfn.create_state_machine(name="configured", definition=json.dumps(result_of(3)), roleArn=ROLE)
    assert code(e.value) == "StateMachineAlreadyExists"
    every_client_sees(server, lambda c: runs(c, "configured") == {"echo": {}})


def test_api_machines_survive_a_full_restart(server: TwoWorkers) -> None:
    server.client().create_state_machine(name="durable", definition=json.dumps(result_of(7)), roleArn=ROLE,
                                         type="EXPRESS")
    before = server.client().describe_state_machine(stateMachineArn=ARN + "durable")
    server.stop()
    assert (server.root / "state" / "express.db").is_file()
    server.start()
    sfn = server.client()
    names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert {"configured", "made", "updated", "durable"} <= set(names) and "deleted" not in names
    for _ in range(CLIENTS):  # at once: restarted workers load the store before they serve
        sfn = server.client()
        after = sfn.describe_state_machine(stateMachineArn=ARN + "durable")
        assert {k: v for k, v in after.items() if k != "ResponseMetadata"} == \
            {k: v for k, v in before.items() if k != "ResponseMetadata"}
        assert runs(sfn, "durable") == 7 and runs(sfn, "updated") == 2
