"""Usage records and execution logs written to Kafka topics (express.kafka.sink), on the real broker."""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from kafka_helpers import unique

from express import Engine, VirtualClock
from express.kafka.admin import ensure_topics
from express.kafka.sink import KafkaSink

PASS = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "F"},
                                   "F": {"Type": "Fail", "Error": "Boom", "Cause": "on purpose"}}}


async def read(bootstrap: str, topic: str, expected: int, timeout_s: float = 20.0) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=unique("reader"), enable_auto_commit=False)
    await consumer.start()
    out: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(out) < expected and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                out.extend(orjson.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


async def test_usage_records_and_logs_reach_their_topics(bootstrap: str) -> None:
    usage_topic, log_topic = unique("metering"), unique("logs")
    await ensure_topics(bootstrap, {usage_topic: 2, log_topic: 2})
    usage = KafkaSink(bootstrap, usage_topic, name="metering", linger_s=0.01)
    logs = KafkaSink(bootstrap, log_topic, name="log", linger_s=0.01)
    await usage.start()
    await logs.start()
    await usage.start()  # idempotent
    try:
        engine = Engine(clock=VirtualClock(), usage_sink=usage, log_sink=logs)
        machine = engine.compile(PASS, "sinky", logging={"level": "ERROR"})
        for i in range(25):
            await machine.execute({"i": i}, name=f"run-{i}", mode="async")
    finally:
        await usage.stop()
        await logs.stop()
        await usage.stop()  # idempotent
    records = await read(bootstrap, usage_topic, 25)
    assert sorted(r["executionName"] for r in records) == sorted(f"run-{i}" for i in range(25))
    assert {(r["machine"], r["mode"], r["status"], r["billedDurationMs"], r["billedMemoryMB"]) for r in records} == {
        ("sinky", "async", "FAILED", 100, 64)}
    events = await read(bootstrap, log_topic, 50)
    assert sorted({e["type"] for e in events}) == ["ExecutionFailed", "FailStateEntered"]
    assert len(events) == 50
    assert all(e["execution_arn"].startswith("arn:aws:states:us-east-1:000000000000:express:sinky:run-")
               for e in events)
    assert usage.dropped == 0 and logs.dropped == 0


async def test_a_full_queue_drops_and_counts(bootstrap: str) -> None:
    sink = KafkaSink(bootstrap, unique("tiny"), name="metering", max_queued=3)
    sink.emit([b"1", b"2", b"3", b"4", b"5"])  # not started: nothing is sent, the queue is bounded
    assert sink.dropped == 2
