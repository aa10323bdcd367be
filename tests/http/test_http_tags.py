"""TagResource, UntagResource, ListTagsForResource and ``tags`` on CreateStateMachine, with AWS's
shapes, limits (50 tags, key 1-128 characters, value 0-256, ``aws:`` reserved) and errors: first on
one in-process server (machines in memory), then over ``express serve --workers 2`` with the
default SQLite store, where a tag set through one worker is listed by every client and kept
across a restart."""
from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from httpsupport import PASS, ServerThread, TwoWorkers, arn, server_fixture, sfn_fixture  # noqa: F401

pytestmark = pytest.mark.timeout(180)

ROLE = "arn:aws:iam::000000000000:role/r"


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def tags(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs]


def create(sfn: Any, name: str, **kw: Any) -> str:
    return str(sfn.create_state_machine(name=name, definition=json.dumps(PASS), roleArn=ROLE, type="EXPRESS",
                                        **kw)["stateMachineArn"])


# ---------------------------------------------------------------------- one process, in memory
def test_tags_given_at_create_are_listed(sfn: Any) -> None:
    machine = create(sfn, "tagged", tags=tags(("team", "a"), ("cost-center", "")))
    assert sfn.list_tags_for_resource(resourceArn=machine)["tags"] == tags(("team", "a"), ("cost-center", ""))
    assert sfn.list_tags_for_resource(resourceArn=create(sfn, "untagged"))["tags"] == []


def test_tag_overwrites_and_adds_untag_removes(sfn: Any) -> None:
    machine = create(sfn, "retagged", tags=tags(("a", "1"), ("b", "2")))
    assert sfn.tag_resource(resourceArn=machine, tags=tags(("b", "20"), ("c", "3")))["ResponseMetadata"]
    assert sfn.list_tags_for_resource(resourceArn=machine)["tags"] == tags(("a", "1"), ("b", "20"), ("c", "3"))
    sfn.untag_resource(resourceArn=machine, tagKeys=["a", "missing"])  # an absent key is no error
    assert sfn.list_tags_for_resource(resourceArn=machine)["tags"] == tags(("b", "20"), ("c", "3"))
    # config machines (here: registry.put) are taggable without a store
    sfn.tag_resource(resourceArn=arn("pass"), tags=tags(("k", "v")))
    assert sfn.list_tags_for_resource(resourceArn=arn("pass"))["tags"] == tags(("k", "v"))


def test_fifty_tags_per_resource(sfn: Any) -> None:
    fifty = tags(*((f"k{i}", "v") for i in range(50)))
    with pytest.raises(ClientError) as e:
        create(sfn, "crowded", tags=[*fifty, {"key": "one-more", "value": ""}])
    assert code(e) == "TooManyTags"
    assert e.value.response["resourceName"].endswith(":stateMachine:crowded")
    machine = create(sfn, "full", tags=fifty)
    sfn.tag_resource(resourceArn=machine, tags=tags(("k0", "again")))  # an existing key: still 50
    with pytest.raises(ClientError) as e:
        sfn.tag_resource(resourceArn=machine, tags=tags(("k50", "v")))
    assert code(e) == "TooManyTags" and e.value.response["resourceName"] == machine
    listed = sfn.list_tags_for_resource(resourceArn=machine)["tags"]
    assert len(listed) == 50 and listed[0] == {"key": "k0", "value": "again"}  # nothing of the refusal kept


@pytest.mark.parametrize("bad", [
    {"key": "", "value": "v"}, {"key": "k" * 129, "value": "v"}, {"key": "k", "value": "v" * 257},
    {"key": "aws:reserved", "value": "v"}, {"key": "AWS:Reserved", "value": "v"}, {"key": "semi;colon", "value": ""},
])
def test_bad_tags_are_validation_errors(server: ServerThread, bad: dict[str, str]) -> None:
    sfn = server.client(parameter_validation=False)  # boto3 would refuse some of them itself
    machine = create(sfn, "strict")
    with pytest.raises(ClientError) as e:
        sfn.tag_resource(resourceArn=machine, tags=[bad])
    assert code(e) == "ValidationException"
    assert "tags.1.member" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        create(sfn, "never-made", tags=[bad])
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError):
        sfn.describe_state_machine(stateMachineArn=arn("never-made"))
    assert sfn.list_tags_for_resource(resourceArn=machine)["tags"] == []


def test_longest_key_and_value_and_symbols_are_accepted(sfn: Any) -> None:
    machine = create(sfn, "roomy")
    given = tags(("k" * 128, "v" * 256), ("été _.:/=+-@ 7", ""))
    sfn.tag_resource(resourceArn=machine, tags=given)
    assert sfn.list_tags_for_resource(resourceArn=machine)["tags"] == given


def test_bad_untag_key_is_a_validation_error(server: ServerThread) -> None:
    sfn = server.client(parameter_validation=False)
    with pytest.raises(ClientError) as e:
        sfn.untag_resource(resourceArn=create(sfn, "u"), tagKeys=["k" * 129])
    assert code(e) == "ValidationException" and "tagKeys.1.member" in e.value.response["Error"]["Message"]


@pytest.mark.parametrize("op", ["tag", "untag", "list"])
def test_unknown_resources_and_bad_arns(sfn: Any, op: str) -> None:
    def call(resource: str) -> Any:
        if op == "tag":
            return sfn.tag_resource(resourceArn=resource, tags=tags(("k", "v")))
        if op == "untag":
            return sfn.untag_resource(resourceArn=resource, tagKeys=["k"])
        return sfn.list_tags_for_resource(resourceArn=resource)

    for missing in (arn("nowhere"), "arn:aws:states:us-east-1:000000000000:activity:act",
                    "arn:aws:states:eu-west-1:000000000000:stateMachine:pass"):
        with pytest.raises(ClientError) as e:
            call(missing)
        assert code(e) == "ResourceNotFound", missing
        assert e.value.response["resourceName"] == missing
    with pytest.raises(ClientError) as e:
        call("not-an-arn")
    assert code(e) == "InvalidArn"


def test_deleted_machine_loses_its_tags(sfn: Any) -> None:
    machine = create(sfn, "gone", tags=tags(("a", "1")))
    sfn.delete_state_machine(stateMachineArn=machine)
    with pytest.raises(ClientError) as e:
        sfn.list_tags_for_resource(resourceArn=machine)
    assert code(e) == "ResourceNotFound"
    create(sfn, "gone")
    assert sfn.list_tags_for_resource(resourceArn=machine)["tags"] == []


# ---------------------------------------------------------------------- two workers, the store
@pytest.fixture(name="workers", scope="module")
def workers_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoWorkers]:
    with TwoWorkers.serving(tmp_path_factory.mktemp("tags"), {"configured": PASS}) as workers:
        yield workers


def test_tags_are_shared_by_every_worker_and_kept_across_a_restart(workers: TwoWorkers) -> None:
    machine = create(workers.client(), "shared", tags=tags(("n", "0")))
    for i in range(1, 11):  # each change through a fresh client, seen at once by the next fresh one
        workers.client().tag_resource(resourceArn=machine, tags=tags((f"k{i}", str(i))))
        assert workers.client().list_tags_for_resource(resourceArn=machine)["tags"][-1] == {"key": f"k{i}",
                                                                                           "value": str(i)}
    workers.client().untag_resource(resourceArn=machine, tagKeys=["n"])
    expected = tags(*((f"k{i}", str(i)) for i in range(1, 11)))
    for _ in range(10):
        assert workers.client().list_tags_for_resource(resourceArn=machine)["tags"] == expected
    # the 50-tag bound counts what every worker added
    for i in range(11, 51):
        workers.client().tag_resource(resourceArn=machine, tags=tags((f"k{i}", "")))
    with pytest.raises(ClientError) as e:
        workers.client().tag_resource(resourceArn=machine, tags=tags(("k51", "")))
    assert code(e) == "TooManyTags"
    # a tagged machine still runs on every worker
    for _ in range(6):
        answer = workers.client().start_sync_execution(stateMachineArn=machine, input='{"x": 1}')
        assert answer["status"] == "SUCCEEDED", answer
    workers.stop()
    workers.start()
    assert len(workers.client().list_tags_for_resource(resourceArn=machine)["tags"]) == 50


def test_a_config_machine_is_not_tagged_over_the_api_with_a_store(workers: TwoWorkers) -> None:
    configured = "arn:aws:states:us-east-1:000000000000:stateMachine:configured"
    with pytest.raises(ClientError) as e:
        workers.client().tag_resource(resourceArn=configured, tags=tags(("k", "v")))
    assert code(e) == "ValidationException" and "configured.asl.json" in e.value.response["Error"]["Message"]
    assert workers.client().list_tags_for_resource(resourceArn=configured)["tags"] == []


def test_concurrent_tagging_through_both_workers_loses_nothing(workers: TwoWorkers) -> None:
    machine = create(workers.client(), "concurrent")
    clients = [workers.client() for _ in range(20)]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda i: clients[i].tag_resource(resourceArn=machine, tags=tags((f"t{i}", str(i)))),
                      range(20)))
    listed = workers.client().list_tags_for_resource(resourceArn=machine)["tags"]
    assert sorted(t["key"] for t in listed) == sorted(f"t{i}" for i in range(20))
