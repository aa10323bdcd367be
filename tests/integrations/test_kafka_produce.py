"""arn:express:::kafka:produce against a real broker (the embedded tansu binary), through the engine and
the service's producer handle (express.kafka.producer.TaskProducer)."""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import murmur2

from express import Engine, VirtualClock
from express.integrations import KAFKA_PRODUCE, Integrations
from express.integrations.kafka_produce import build
from express.kafka.admin import ensure_topics
from express.kafka.producer import TaskProducer
from tests.support import read_record


@pytest.fixture
async def producer(bootstrap: str) -> AsyncIterator[TaskProducer]:
    handle = TaskProducer(bootstrap, linger_ms=0)
    try:
        yield handle
    finally:
        await handle.aclose()


def topic_name() -> str:
    return f"produced-{uuid.uuid4().hex[:10]}"


def produce_machine(parameters: dict[str, Any], **task: Any) -> dict[str, Any]:
    return {"StartAt": "Produce", "States": {"Produce": {
        "Type": "Task", "Resource": KAFKA_PRODUCE, "Parameters": parameters, "End": True, **task}}}


async def test_a_task_writes_one_record_and_answers_where_it_is(bootstrap: str, producer: TaskProducer) -> None:
    topic = topic_name()
    engine = Engine(clock=VirtualClock(), integrations=Integrations(kafka=producer))
    machine = engine.compile(produce_machine({
        "Topic": topic, "Key.$": "$.order.id", "Value.$": "$.order",
        "Headers": {"source": "express", "kind.$": "$.kind"}}))
    order = {"id": "o-1", "lines": [1, 2], "note": "é"}
    result = await machine.execute({"order": order, "kind": "created"})
    assert result.status == "SUCCEEDED", result.cause
    assert set(result.output) == {"Topic", "Partition", "Offset"}
    assert result.output["Topic"] == topic
    record = await read_record(bootstrap, topic, result.output["Partition"], result.output["Offset"])
    assert record.key == b"o-1"
    assert orjson.loads(record.value) == order
    assert list(record.headers) == [("source", b"express"), ("kind", b"created")]


async def test_values_are_json_text_and_no_value_is_a_tombstone(bootstrap: str, producer: TaskProducer) -> None:
    topic = topic_name()
    await ensure_topics(bootstrap, {topic: 1})
    engine = Engine(clock=VirtualClock(), integrations=Integrations(kafka=producer))
    text = await engine.compile(produce_machine({"Topic": topic, "Value": "plain"})).execute({})
    number = await engine.compile(produce_machine({"Topic": topic, "Value": 12.5})).execute({})
    tombstone = await engine.compile(produce_machine({"Topic": topic, "Key": "k"})).execute({})
    records = [await read_record(bootstrap, topic, r.output["Partition"], r.output["Offset"])
               for r in (text, number, tombstone)]
    assert [r.value for r in records] == [b'"plain"', b"12.5", None]
    assert records[0].key is None and records[2].key == b"k"
    # one partition: the records are there in the order the Tasks ran
    offsets = [r.output["Offset"] for r in (text, number, tombstone)]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3


async def test_one_key_goes_to_one_partition_as_the_java_client_partitions(bootstrap: str,
                                                                          producer: TaskProducer) -> None:
    topic = topic_name()
    await ensure_topics(bootstrap, {topic: 4})
    engine = Engine(clock=VirtualClock(), integrations=Integrations(kafka=producer))
    machine = engine.compile({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.keys", "End": True,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {
            "Type": "Task", "Resource": KAFKA_PRODUCE, "End": True,
            "Parameters": {"Topic": topic, "Key.$": "$", "Value.$": "$"}}}}}}})
    keys = [f"customer-{i % 5}" for i in range(20)]
    result = await machine.execute({"keys": keys})
    assert result.status == "SUCCEEDED", result.cause
    for key, out in zip(keys, result.output, strict=True):
        assert out["Partition"] == (murmur2(key.encode()) & 0x7FFFFFFF) % 4
    assert len({(o["Partition"], o["Offset"]) for o in result.output}) == 20


async def test_without_kafka_the_task_fails_with_a_catchable_error() -> None:
    engine = Engine(clock=VirtualClock(), integrations=Integrations())
    definition = {"StartAt": "Produce", "States": {
        "Produce": {"Type": "Task", "Resource": KAFKA_PRODUCE, "Parameters": {"Topic": "t", "Value": 1},
                    "Catch": [{"ErrorEquals": ["Kafka.NotConfigured"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}}
    result = await engine.compile(definition).execute({})
    assert result.status == "SUCCEEDED"
    assert result.output["Error"] == "Kafka.NotConfigured"
    assert "[kafka] bootstrap" in result.output["Cause"]


@pytest.mark.parametrize(("parameters", "message"), [
    ({"Value": 1}, "The field 'Topic' is required and must be a string"),
    ({"Topic": 7}, "The field 'Topic' must be a string, not a number"),
    ({"Topic": "no spaces"}, "The field 'Topic' is not a valid Kafka topic name"),
    ({"Topic": "t", "Key": 5}, "The field 'Key' must be a string or null, not a number"),
    ({"Topic": "t", "Headers": ["a"]}, "The field 'Headers' must be an object of strings, not an array"),
    ({"Topic": "t", "Headers": {"n": 1}}, "The field 'Headers.n' must be a string, not a number"),
])
async def test_bad_parameters_name_the_field(producer: TaskProducer, parameters: dict[str, Any],
                                             message: str) -> None:
    engine = Engine(clock=VirtualClock(), integrations=Integrations(kafka=producer))
    result = await engine.compile(produce_machine(parameters)).execute({})
    assert (result.status, result.error) == ("FAILED", "States.TaskFailed")
    assert message in (result.cause or "")
    assert producer.sent == 0


async def test_a_record_over_the_payload_limit_is_refused(producer: TaskProducer) -> None:
    engine = Engine(clock=VirtualClock(), integrations=Integrations(kafka=producer))
    big = "x" * 100_000
    result = await engine.compile(produce_machine(
        {"Topic": "t", "Value.$": "$.big", "Key.$": "$.big", "Headers": {"h.$": "$.big"}})).execute({"big": big})
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert producer.sent == 0


async def test_client_errors_become_kafka_errors_a_retry_can_name(bootstrap: str) -> None:
    small = TaskProducer(bootstrap, max_request_bytes=1_000)  # aiokafka refuses larger records itself
    try:
        engine = Engine(clock=VirtualClock(), integrations=Integrations(kafka=small))
        result = await engine.compile(produce_machine(
            {"Topic": topic_name(), "Value.$": "$.text"},
            Retry=[{"ErrorEquals": ["Kafka.MessageSizeTooLargeError"], "MaxAttempts": 2, "IntervalSeconds": 1}],
        )).execute({"text": "y" * 5_000})
    finally:
        await small.aclose()
    assert (result.status, result.error) == ("FAILED", "Kafka.MessageSizeTooLargeError")
    assert result.state_transitions >= 1


async def test_an_unreachable_broker_is_a_kafka_error() -> None:
    with socket_closed_port() as port:
        unreachable = TaskProducer(f"127.0.0.1:{port}", request_timeout_ms=2_000)
        try:
            engine = Engine(integrations=Integrations(kafka=unreachable))
            result = await engine.compile(produce_machine({"Topic": "t", "Value": 1})).execute({})
        finally:
            await unreachable.aclose()
    assert result.status == "FAILED"
    assert result.error is not None and result.error.startswith("Kafka.")
    assert result.error == "Kafka.KafkaConnectionError", result.cause


async def test_timeout_seconds_bounds_a_broker_that_never_answers() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stuck = TaskProducer(f"127.0.0.1:{port}")
    try:
        engine = Engine(integrations=Integrations(kafka=stuck))
        result = await engine.compile(produce_machine({"Topic": "t", "Value": 1}, TimeoutSeconds=1)).execute({})
    finally:
        await stuck.aclose()
        server.close()
        for writer in accepted:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await server.wait_closed()
    assert accepted, "the producer never connected"
    assert (result.status, result.error) == ("FAILED", "States.Timeout")


async def test_after_close_a_send_is_refused(producer: TaskProducer) -> None:
    await producer.aclose()
    await producer.aclose()  # idempotent
    engine = Engine(clock=VirtualClock(), integrations=Integrations(kafka=producer))
    result = await engine.compile(produce_machine({"Topic": "t", "Value": 1})).execute({})
    assert (result.status, result.error) == ("FAILED", "Kafka.ProducerClosed")


def test_build_answers_only_for_its_resource() -> None:
    assert build("arn:aws:states:::sqs:sendMessage", Integrations()) is None
    assert build(KAFKA_PRODUCE, Integrations()) is not None
    assert Integrations().invoker(KAFKA_PRODUCE) is not None


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port
