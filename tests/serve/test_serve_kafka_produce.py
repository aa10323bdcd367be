"""``express serve`` runs machines whose Tasks produce to Kafka (arn:express:::kafka:produce): started
over the HTTP API, and bound to a topic (the Kafka worker); a real server process, a real broker."""
from __future__ import annotations

import asyncio
import json
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from botocore.config import Config

from tests.support import read_record, serve, stop, wait_log

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCE = "arn:express:::kafka:produce"
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:"
SUFFIX = uuid.uuid4().hex[:8]
SOURCE, RELAYED = f"orders-in-{SUFFIX}", f"orders-out-{SUFFIX}"
PUBLISH = {"StartAt": "Publish", "States": {"Publish": {
    "Type": "Task", "Resource": PRODUCE, "End": True,
    "Parameters": {"Topic.$": "$.topic", "Key.$": "$.id", "Value.$": "$.body", "Headers": {"via": "http"}}}}}
RELAY = {"StartAt": "Relay", "States": {"Relay": {
    "Type": "Task", "Resource": PRODUCE, "End": True,
    "Parameters": {"Topic": RELAYED, "Key.$": "$.id", "Value": {"relayed.$": "$"}}}}}


@pytest.fixture(scope="module")
def server(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, pathlib.Path]]:
    config = tmp_path_factory.mktemp("produce") / "config"
    (config / "machines").mkdir(parents=True)
    (config / "machines" / "publish.asl.json").write_text(json.dumps(PUBLISH))
    (config / "machines" / "relay.asl.json").write_text(json.dumps(RELAY))
    (config / "express.toml").write_text(
        "[kafka]\nsession_timeout_ms = 2000\nheartbeat_interval_ms = 300\nlinger_ms = 2\n"
        f"[bindings]\n\"{SOURCE}\" = \"relay\"\n")
    log = config.parent / "serve.log"
    proc = serve(config, log, "--workers", "1", "--bootstrap", bootstrap, "--http", "127.0.0.1:0", cwd=ROOT)
    try:
        port = wait_log(log, r"StepFunctions API\) on http://127\.0\.0\.1:(\d+)/", proc).group(1)
        sfn = boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing",
                           config=Config(inject_host_prefix=False, retries={"max_attempts": 0}))
        yield sfn, log
    finally:
        stop(proc)
        assert proc.returncode == 0, log.read_text()[-3000:]


async def first_record(bootstrap: str, topic: str) -> Any:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=f"check-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    try:
        return await asyncio.wait_for(consumer.getone(), 60)
    finally:
        await consumer.stop()


def test_a_machine_started_over_http_writes_to_its_topic(server: tuple[Any, pathlib.Path], bootstrap: str) -> None:
    sfn, _ = server
    topic = f"published-{uuid.uuid4().hex[:8]}"
    answer = sfn.start_sync_execution(stateMachineArn=ARN + "publish", input=json.dumps(
        {"topic": topic, "id": "o-9", "body": {"total": 12}}))
    assert answer["status"] == "SUCCEEDED", answer
    where = json.loads(answer["output"])
    assert where["Topic"] == topic
    record = asyncio.run(read_record(bootstrap, topic, where["Partition"], where["Offset"]))
    assert (record.key, orjson.loads(record.value), list(record.headers)) == (b"o-9", {"total": 12},
                                                                             [("via", b"http")])


def test_a_machine_bound_to_a_topic_relays_each_record(server: tuple[Any, pathlib.Path], bootstrap: str) -> None:
    _, log = server
    wait_log(log, "Kafka worker consuming")

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(SOURCE, b'{"id": "r-1", "n": 3}', key=b"r-1")
        finally:
            await producer.stop()

    asyncio.run(send())
    record = asyncio.run(first_record(bootstrap, RELAYED))
    assert record.key == b"r-1"
    assert orjson.loads(record.value) == {"relayed": {"id": "r-1", "n": 3}}
    # and the relay's own outcome records where its record went
    outcome = asyncio.run(first_record(bootstrap, SOURCE + ".results"))
    assert orjson.loads(outcome.value)["output"]["Topic"] == RELAYED


def test_start_execution_of_a_bound_machine_goes_through_its_topic(server: tuple[Any, pathlib.Path],
                                                                    bootstrap: str) -> None:
    sfn, log = server
    wait_log(log, "Kafka worker consuming")
    started = sfn.start_execution(stateMachineArn=ARN + "relay", name="via-kafka", input='{"id": "k-1", "n": 4}')
    arn = started["executionArn"]
    assert arn.startswith("arn:aws:states:us-east-1:000000000000:express:relay:via-kafka:")

    async def outcome_of(topic: str) -> Any:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=f"check-{uuid.uuid4().hex[:8]}")
        await consumer.start()
        try:
            while True:  # the results topic holds other tests' outcomes too
                record = await asyncio.wait_for(consumer.getone(), 60)
                doc = orjson.loads(record.value)
                if doc.get("executionName") == "via-kafka":
                    return record, doc
        finally:
            await consumer.stop()

    # the start event is on the machine's topic, naming the machine and the answered ARN ...
    event, _ = asyncio.run(outcome_of_event(bootstrap, SOURCE, arn))
    assert orjson.loads(event.value) == {"id": "k-1", "n": 4} and event.key == b"via-kafka"
    # ... and the Kafka worker ran it under that ARN (its name is the outcome's), its Task relayed the record
    _, doc = asyncio.run(outcome_of(SOURCE + ".results"))
    assert doc["output"]["Topic"] == RELAYED, doc
    assert sfn.start_execution(stateMachineArn=ARN + "relay", name="via-kafka",
                               input='{"id": "k-1", "n": 4}')["executionArn"] == arn  # a retry starts nothing


async def outcome_of_event(bootstrap: str, topic: str, arn: str) -> Any:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=f"check-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    try:
        while True:
            record = await asyncio.wait_for(consumer.getone(), 60)
            if ("express-execution-arn", arn.encode()) in list(record.headers):
                return record, None
    finally:
        await consumer.stop()
