"""State machine versions and aliases over boto3 against a real server: publish on Create/Update and
PublishStateMachineVersion, ListStateMachineVersions, DeleteStateMachineVersion, the alias operations,
and StartExecution/StartSyncExecution by version and alias ARN (a weighted alias splits executions by
its weights). In one process (no store) and over ``express serve --workers 2`` with the default store."""
from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from httpsupport import ServerThread, TwoWorkers, running

ROLE = "arn:aws:iam::000000000000:role/r"
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:"


def result_of(value: Any) -> str:
    return json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": value, "End": True}}})


# the version's number in its output, and the context's view of which machine ran
WHO = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {
    "id.$": "$$.StateMachine.Id", "name.$": "$$.StateMachine.Name"}, "End": True}}})


def body(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


@pytest.fixture(name="sfn", scope="module")
def sfn_fixture() -> Iterator[Any]:
    with running(ServerThread(max_duration_s=5.0)) as server:
        yield server.client()


def test_publish_on_create_and_update_and_describe_a_version(sfn: Any) -> None:
    made = sfn.create_state_machine(name="pub", definition=result_of(1), roleArn=ROLE, type="EXPRESS",
                                    publish=True, versionDescription="first")
    assert made["stateMachineArn"] == ARN + "pub" and made["stateMachineVersionArn"] == ARN + "pub:1"
    updated = sfn.update_state_machine(stateMachineArn=ARN + "pub", definition=result_of(2), publish=True,
                                       versionDescription="second")
    assert updated["stateMachineVersionArn"] == ARN + "pub:2" and updated["revisionId"]
    v1 = sfn.describe_state_machine(stateMachineArn=ARN + "pub:1")
    assert v1["stateMachineArn"] == ARN + "pub:1" and v1["name"] == "pub" and v1["description"] == "first"
    assert json.loads(v1["definition"]) == json.loads(result_of(1)) and "revisionId" not in v1
    v2 = sfn.describe_state_machine(stateMachineArn=ARN + "pub:2")
    assert json.loads(v2["definition"])["States"]["P"]["Result"] == 2
    assert v2["revisionId"] == updated["revisionId"] and v2["description"] == "second"
    assert sfn.describe_state_machine(stateMachineArn=ARN + "pub:2", includedData="METADATA_ONLY")["definition"] == "{}"
    # the machine itself is its latest revision
    assert sfn.describe_state_machine(stateMachineArn=ARN + "pub")["stateMachineArn"] == ARN + "pub"
    with pytest.raises(ClientError) as e:
        sfn.describe_state_machine(stateMachineArn=ARN + "pub:9")
    assert code(e) == "StateMachineDoesNotExist"
    with pytest.raises(ClientError) as e:  # a description only with publish, as on AWS
        sfn.update_state_machine(stateMachineArn=ARN + "pub", definition=result_of(3), versionDescription="x")
    assert code(e) == "ValidationException"


def test_publish_is_idempotent_checks_the_revision_and_lists_newest_first(sfn: Any) -> None:
    sfn.create_state_machine(name="revs", definition=result_of(1), roleArn=ROLE, type="EXPRESS")
    with pytest.raises(ClientError) as e:
        sfn.publish_state_machine_version(stateMachineArn=ARN + "revs", revisionId="not-the-revision")
    assert code(e) == "ConflictException"
    first = sfn.publish_state_machine_version(stateMachineArn=ARN + "revs", revisionId="INITIAL")
    assert first["stateMachineVersionArn"] == ARN + "revs:1"
    again = sfn.publish_state_machine_version(stateMachineArn=ARN + "revs")  # the same revision: the same version
    assert body(again) == body(first)
    revision = sfn.update_state_machine(stateMachineArn=ARN + "revs", definition=result_of(2))["revisionId"]
    with pytest.raises(ClientError) as e:
        sfn.publish_state_machine_version(stateMachineArn=ARN + "revs", revisionId="INITIAL")
    assert code(e) == "ConflictException"
    assert sfn.publish_state_machine_version(stateMachineArn=ARN + "revs", revisionId=revision,
                                             description="two")["stateMachineVersionArn"] == ARN + "revs:2"
    sfn.update_state_machine(stateMachineArn=ARN + "revs", definition=result_of(3), publish=True)
    listed = sfn.list_state_machine_versions(stateMachineArn=ARN + "revs")
    assert [v["stateMachineVersionArn"] for v in listed["stateMachineVersions"]] == [
        ARN + "revs:3", ARN + "revs:2", ARN + "revs:1"] and "nextToken" not in listed
    pages, token = [], None
    while True:
        page = sfn.list_state_machine_versions(stateMachineArn=ARN + "revs", maxResults=2,
                                               **({"nextToken": token} if token else {}))
        pages.append([v["stateMachineVersionArn"].rsplit(":", 1)[1] for v in page["stateMachineVersions"]])
        token = page.get("nextToken")
        if token is None:
            break
    assert pages == [["3", "2"], ["1"]]
    with pytest.raises(ClientError) as e:
        sfn.list_state_machine_versions(stateMachineArn=ARN + "revs", nextToken="%%%")
    assert code(e) == "InvalidToken"
    # numbers are never reused: deleting the newest and publishing again gives 4
    sfn.delete_state_machine_version(stateMachineVersionArn=ARN + "revs:3")
    sfn.delete_state_machine_version(stateMachineVersionArn=ARN + "revs:3")  # idempotent
    sfn.update_state_machine(stateMachineArn=ARN + "revs", definition=result_of(4), publish=True)
    assert [v["stateMachineVersionArn"] for v in
            sfn.list_state_machine_versions(stateMachineArn=ARN + "revs")["stateMachineVersions"]] == [
        ARN + "revs:4", ARN + "revs:2", ARN + "revs:1"]
    with pytest.raises(ClientError) as e:
        sfn.publish_state_machine_version(stateMachineArn=ARN + "nothing-here")
    assert code(e) == "StateMachineDoesNotExist"


def test_start_by_version_arn_runs_that_version_and_says_so(sfn: Any) -> None:
    sfn.create_state_machine(name="runv", definition=result_of("one"), roleArn=ROLE, type="EXPRESS", publish=True)
    sfn.update_state_machine(stateMachineArn=ARN + "runv", definition=WHO, publish=True)
    sfn.update_state_machine(stateMachineArn=ARN + "runv", definition=result_of("latest"))
    one = sfn.start_sync_execution(stateMachineArn=ARN + "runv:1", input="{}")
    assert one["status"] == "SUCCEEDED" and json.loads(one["output"]) == "one"
    assert one["stateMachineArn"] == ARN + "runv:1" and ":express:runv:" in one["executionArn"]
    two = sfn.start_sync_execution(stateMachineArn=ARN + "runv:2", input="{}")
    assert json.loads(two["output"]) == {"id": ARN + "runv:2", "name": "runv"}
    assert two["stateMachineArn"] == ARN + "runv:2"
    latest = sfn.start_sync_execution(stateMachineArn=ARN + "runv", input="{}")
    assert json.loads(latest["output"]) == "latest" and latest["stateMachineArn"] == ARN + "runv"
    started = sfn.start_execution(stateMachineArn=ARN + "runv:2", name="by-version", input="{}")
    assert started["executionArn"].startswith("arn:aws:states:us-east-1:000000000000:express:runv:by-version:")
    # a named execution is the machine's, whichever version runs it
    assert body(sfn.start_execution(stateMachineArn=ARN + "runv:2", name="by-version", input="{}")) == body(started)
    for missing in ("runv:7", "runv:NOALIAS", "nope:1"):
        with pytest.raises(ClientError) as e:
            sfn.start_sync_execution(stateMachineArn=ARN + missing, input="{}")
        assert code(e) == "StateMachineDoesNotExist", missing


def test_aliases_round_trip_with_aws_shapes_and_errors(sfn: Any) -> None:
    sfn.create_state_machine(name="al", definition=result_of(1), roleArn=ROLE, type="EXPRESS", publish=True)
    sfn.update_state_machine(stateMachineArn=ARN + "al", definition=result_of(2), publish=True)
    routing = [{"stateMachineVersionArn": ARN + "al:1", "weight": 100}]
    made = sfn.create_state_machine_alias(name="PROD", description="live", routingConfiguration=routing)
    assert made["stateMachineAliasArn"] == ARN + "al:PROD"
    again = sfn.create_state_machine_alias(name="PROD", description="live", routingConfiguration=routing)
    assert body(again) == body(made)  # the same request: answered
    with pytest.raises(ClientError) as e:
        sfn.create_state_machine_alias(name="PROD", routingConfiguration=[
            {"stateMachineVersionArn": ARN + "al:2", "weight": 100}])
    assert code(e) == "ConflictException"
    described = sfn.describe_state_machine_alias(stateMachineAliasArn=ARN + "al:PROD")
    assert described["name"] == "PROD" and described["description"] == "live"
    assert described["routingConfiguration"] == routing and described["creationDate"] == made["creationDate"]
    run = sfn.start_sync_execution(stateMachineArn=ARN + "al:PROD", input="{}")
    assert json.loads(run["output"]) == 1 and run["stateMachineArn"] == ARN + "al:1"
    sfn.update_state_machine_alias(stateMachineAliasArn=ARN + "al:PROD", routingConfiguration=[
        {"stateMachineVersionArn": ARN + "al:2", "weight": 100}])
    assert json.loads(sfn.start_sync_execution(stateMachineArn=ARN + "al:PROD", input="{}")["output"]) == 2
    assert sfn.describe_state_machine_alias(stateMachineAliasArn=ARN + "al:PROD")["description"] == "live"
    sfn.create_state_machine_alias(name="beta", routingConfiguration=[
        {"stateMachineVersionArn": ARN + "al:1", "weight": 30}, {"stateMachineVersionArn": ARN + "al:2", "weight": 70}])
    listed = sfn.list_state_machine_aliases(stateMachineArn=ARN + "al")["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in listed] == [ARN + "al:PROD", ARN + "al:beta"]
    assert [a["stateMachineAliasArn"] for a in
            sfn.list_state_machine_aliases(stateMachineArn=ARN + "al:1")["stateMachineAliases"]] == [ARN + "al:beta"]
    first = sfn.list_state_machine_aliases(stateMachineArn=ARN + "al", maxResults=1)
    assert len(first["stateMachineAliases"]) == 1 and first["nextToken"]
    rest = sfn.list_state_machine_aliases(stateMachineArn=ARN + "al", maxResults=1, nextToken=first["nextToken"])
    assert [a["stateMachineAliasArn"] for a in rest["stateMachineAliases"]] == [ARN + "al:beta"]
    # a version an alias routes to cannot be deleted
    with pytest.raises(ClientError) as e:
        sfn.delete_state_machine_version(stateMachineVersionArn=ARN + "al:1")
    assert code(e) == "ConflictException" and "beta" in e.value.response["Error"]["Message"]
    bad_routes = (
        [{"stateMachineVersionArn": ARN + "al:1", "weight": 50}],  # weights must add up to 100
        [{"stateMachineVersionArn": ARN + "al:1", "weight": 50}, {"stateMachineVersionArn": ARN + "al:1", "weight": 50}],
        [{"stateMachineVersionArn": ARN + "al:1", "weight": 101}],
        [{"stateMachineVersionArn": ARN + "al:1", "weight": 40}] * 3,
    )
    for bad in bad_routes:
        with pytest.raises(ClientError) as e:
            sfn.create_state_machine_alias(name="bad", routingConfiguration=bad)
        assert code(e) == "ValidationException", bad
    with pytest.raises(ClientError) as e:
        sfn.create_state_machine_alias(name="123", routingConfiguration=routing)  # a name must not be a number
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        sfn.create_state_machine_alias(name="ghost", routingConfiguration=[
            {"stateMachineVersionArn": ARN + "al:9", "weight": 100}])
    assert code(e) == "ResourceNotFound"
    sfn.delete_state_machine_alias(stateMachineAliasArn=ARN + "al:beta")
    with pytest.raises(ClientError) as e:
        sfn.describe_state_machine_alias(stateMachineAliasArn=ARN + "al:beta")
    assert code(e) == "ResourceNotFound"
    with pytest.raises(ClientError) as e:
        sfn.delete_state_machine_alias(stateMachineAliasArn=ARN + "al:beta")
    assert code(e) == "ResourceNotFound"
    sfn.delete_state_machine_version(stateMachineVersionArn=ARN + "al:1")  # no alias routes to it now
    assert [v["stateMachineVersionArn"] for v in
            sfn.list_state_machine_versions(stateMachineArn=ARN + "al")["stateMachineVersions"]] == [ARN + "al:2"]
    # deleting the machine deletes its versions and aliases
    sfn.delete_state_machine(stateMachineArn=ARN + "al")
    with pytest.raises(ClientError) as e:
        sfn.start_sync_execution(stateMachineArn=ARN + "al:PROD", input="{}")
    assert code(e) == "StateMachineDoesNotExist"


def test_a_weighted_alias_splits_1000_executions_by_its_weights(sfn: Any) -> None:
    sfn.create_state_machine(name="split", definition=result_of("a"), roleArn=ROLE, type="EXPRESS", publish=True)
    sfn.update_state_machine(stateMachineArn=ARN + "split", definition=result_of("b"), publish=True)
    sfn.create_state_machine_alias(name="canary", routingConfiguration=[
        {"stateMachineVersionArn": ARN + "split:1", "weight": 90},
        {"stateMachineVersionArn": ARN + "split:2", "weight": 10}])
    ran: collections.Counter[str] = collections.Counter()
    for _ in range(1000):
        answer = sfn.start_sync_execution(stateMachineArn=ARN + "split:canary", input="{}")
        ran[answer["stateMachineArn"]] += 1
        assert json.loads(answer["output"]) == ("a" if answer["stateMachineArn"].endswith(":1") else "b")
    assert sum(ran.values()) == 1000
    assert abs(ran[ARN + "split:1"] - 900) <= 50 and abs(ran[ARN + "split:2"] - 100) <= 50, ran


# ---------------------------------------------------------------------- two workers, the default store
@pytest.fixture(name="workers", scope="module")
def workers_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoWorkers]:
    with TwoWorkers.serving(tmp_path_factory.mktemp("versions"), {}) as server:
        yield server


def every_client(workers: TwoWorkers, check: Any, clients: int = 10) -> None:
    workers.every_client(check, clients)


@pytest.mark.timeout(180)
def test_versions_and_aliases_are_every_workers_and_survive_a_restart(workers: TwoWorkers) -> None:
    sfn = workers.client()
    sfn.create_state_machine(name="shared", definition=result_of(1), roleArn=ROLE, type="EXPRESS", publish=True)
    sfn.update_state_machine(stateMachineArn=ARN + "shared", definition=result_of(2), publish=True)
    sfn.create_state_machine_alias(name="PROD", routingConfiguration=[
        {"stateMachineVersionArn": ARN + "shared:1", "weight": 100}])

    def sees_versions_and_alias(client: Any) -> None:
        listed = client.list_state_machine_versions(stateMachineArn=ARN + "shared")["stateMachineVersions"]
        assert [v["stateMachineVersionArn"] for v in listed] == [ARN + "shared:2", ARN + "shared:1"]
        alias = client.describe_state_machine_alias(stateMachineAliasArn=ARN + "shared:PROD")
        assert alias["routingConfiguration"][0]["stateMachineVersionArn"] == ARN + "shared:1"
        assert json.loads(client.start_sync_execution(stateMachineArn=ARN + "shared:PROD")["output"]) == 1
        assert json.loads(client.start_sync_execution(stateMachineArn=ARN + "shared:2")["output"]) == 2

    every_client(workers, sees_versions_and_alias)
    # a change of the alias through one worker is every worker's, and so is the refusal it implies
    sfn.update_state_machine_alias(stateMachineAliasArn=ARN + "shared:PROD", routingConfiguration=[
        {"stateMachineVersionArn": ARN + "shared:2", "weight": 100}])

    def sees_the_new_routing(client: Any) -> None:
        assert json.loads(client.start_sync_execution(stateMachineArn=ARN + "shared:PROD")["output"]) == 2
        with pytest.raises(ClientError) as e:
            client.delete_state_machine_version(stateMachineVersionArn=ARN + "shared:2")
        assert code(e) == "ConflictException"

    every_client(workers, sees_the_new_routing)
    sfn.delete_state_machine_version(stateMachineVersionArn=ARN + "shared:1")
    workers.stop()
    workers.start()

    def sees_it_after_the_restart(client: Any) -> None:
        listed = client.list_state_machine_versions(stateMachineArn=ARN + "shared")["stateMachineVersions"]
        assert [v["stateMachineVersionArn"] for v in listed] == [ARN + "shared:2"]
        assert json.loads(client.start_sync_execution(stateMachineArn=ARN + "shared:PROD")["output"]) == 2
        with pytest.raises(ClientError) as e:
            client.start_sync_execution(stateMachineArn=ARN + "shared:1")
        assert code(e) == "StateMachineDoesNotExist"

    every_client(workers, sees_it_after_the_restart)
    # the next version is 3: numbers are never reused, across workers and restarts
    # the current revision is published already: its version answers
    assert workers.client().publish_state_machine_version(
        stateMachineArn=ARN + "shared")["stateMachineVersionArn"] == ARN + "shared:2"
    sfn = workers.client()
    sfn.update_state_machine(stateMachineArn=ARN + "shared", definition=result_of(3))
    assert sfn.publish_state_machine_version(stateMachineArn=ARN + "shared")["stateMachineVersionArn"] == \
        ARN + "shared:3"
