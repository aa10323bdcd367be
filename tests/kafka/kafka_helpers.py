"""Helpers for the Kafka tests, which run against a real broker: the embedded tansu binary, started once per session.

Every test uses its own topics and consumer group, and short group timeouts (session 2000 ms,
heartbeat 300 ms) so that joins, leaves and dead members are noticed quickly."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import pathlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from express.engine.clock import RealClock
from express.engine.machine import Engine
from express.kafka.admin import ensure_topics
from express.kafka.demo import produce
from express.kafka.worker import KafkaWorker
from express.serve.config import load_settings
from express.serve.registry import Registry

PARTITIONS = 4
SHORT_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300, "commit_interval_ms": 100,
               "linger_ms": 2}

PASS_CHAIN = {"StartAt": "P1", "States": {
    "P1": {"Type": "Pass", "Parameters": {"id.$": "$.id", "n.$": "$.n"}, "ResultPath": "$.p1", "Next": "Check"},
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 0, "Next": "P2"}],
              "Default": "Negative"},
    "P2": {"Type": "Pass", "Parameters": {"double.$": "States.MathAdd($.n, $.n)"}, "ResultPath": "$.p2",
           "End": True},
    "Negative": {"Type": "Fail", "Error": "Test.Negative", "Cause": "n is negative"}}}

OTHER = {"StartAt": "O", "States": {"O": {"Type": "Pass", "Result": "other", "ResultPath": "$.by", "End": True}}}


async def sleepy(event: Any) -> Any:
    """A Lambda stand-in that takes ``event["sleep"]`` seconds (default 0.05)."""
    await asyncio.sleep(event.get("sleep", 0.05) if isinstance(event, dict) else 0.05)
    return {"id": event.get("id") if isinstance(event, dict) else None, "slept": True}


SLOW = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:sleepy",
                                         "End": True}}}


def waiting(seconds: int) -> dict[str, Any]:
    return {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": seconds, "Next": "P"},
        "P": {"Type": "Pass", "Parameters": {"id.$": "$.id", "waited": True}, "End": True}}}


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_config(root: pathlib.Path, machines: dict[str, Any], bindings: dict[str, str], *,
                 kafka: dict[str, Any] | None = None, engine: dict[str, Any] | None = None) -> pathlib.Path:
    (root / "machines").mkdir(parents=True, exist_ok=True)
    for name, definition in machines.items():
        (root / "machines" / f"{name}.asl.json").write_text(json.dumps(definition))
    lines = ["[kafka]"]
    for k, v in {**SHORT_GROUP, **(kafka or {})}.items():
        lines.append(f"{k} = {json.dumps(v)}")
    lines.append("[engine]")
    for k, v in (engine or {}).items():
        lines.append(f"{k} = {json.dumps(v)}")
    lines.append("[http]\nenabled = false")
    lines.append("[bindings]")
    for topic, machine in bindings.items():
        lines.append(f"{json.dumps(topic)} = {json.dumps(machine)}")
    (root / "express.toml").write_text("\n".join(lines) + "\n")
    return root


def make(root: pathlib.Path, machines: dict[str, Any], bindings: dict[str, str], **kw: Any) -> tuple[Any, Registry]:
    """Settings from a config folder written under ``root``; the registry also knows ``sleepy``."""
    settings = load_settings(write_config(root, machines, bindings, **kw), env={})
    registry = Registry(Engine(functions={"sleepy": sleepy}, clock=RealClock(),
                               max_duration_s=settings.engine.max_duration_s))
    for name, definition in machines.items():
        registry.put(name, definition)
    return settings, registry


@contextlib.asynccontextmanager
async def running_worker(settings: Any, registry: Registry, bootstrap: str, group_id: str | None = None,
                         stop_timeout_s: float = 20.0) -> AsyncIterator[KafkaWorker]:
    """A started KafkaWorker (in a consumer group of its own unless given), stopped on the way out."""
    worker = KafkaWorker(settings, registry, bootstrap, group_id=group_id or unique("g"))
    await worker.start()
    try:
        yield worker
    finally:
        await asyncio.wait_for(worker.stop(), stop_timeout_s)


def with_kafka(settings: Any, **changes: Any) -> Any:
    return dataclasses.replace(settings, kafka=dataclasses.replace(settings.kafka, **changes))


async def create_topics(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    await ensure_topics(bootstrap, {t: partitions for t in
                                    (topic, topic + ".results", topic + ".failures", topic + ".dlq")})


async def send(bootstrap: str, topic: str, values: list[Any], keys: list[bytes | None] | None = None,
               partitions: int = PARTITIONS) -> None:
    raw = [v if isinstance(v, bytes) else orjson.dumps(v) for v in values]
    keyed = keys if keys is not None else [f"k{i}".encode() for i in range(len(raw))]
    await produce(bootstrap, topic, list(zip(keyed, raw, strict=True)), partitions)


async def send_with_headers(bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes, list[Any]]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for key, value, headers in items:
            await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
    finally:
        await producer.stop()


class Outcomes:
    """Reads the outcome topics of ``topic`` from the beginning."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topics = [topic + ".results", topic + ".failures", topic + ".dlq"]
        self.records: dict[str, list[Any]] = {t: [] for t in self.topics}
        self.consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Outcomes:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         auto_offset_reset="earliest", fetch_max_wait_ms=50)
        await self.consumer.start()
        tps = [TopicPartition(t, p) for t in self.topics for p in range(PARTITIONS)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.consumer is not None
        await self.consumer.stop()

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.records.values())

    async def poll(self, seconds: float = 0.1) -> None:
        assert self.consumer is not None
        data = await self.consumer.getmany(timeout_ms=int(seconds * 1000))
        for tp, recs in data.items():
            self.records[tp.topic].extend(recs)

    async def until(self, predicate: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            await self.poll()
        return bool(predicate(self))

    async def wait_total(self, n: int, timeout_s: float = 30.0) -> None:
        ok = await self.until(lambda o: o.total >= n, timeout_s)
        assert ok, f"only {self.total} of {n} outcomes after {timeout_s} s"

    def docs(self, kind: str) -> list[dict[str, Any]]:
        suffix = {"results": 0, "failures": 1, "dlq": 2}[kind]
        return [orjson.loads(r.value) for r in self.records[self.topics[suffix]]]

    def sources(self) -> set[tuple[int, int]]:
        out = set()
        for t in self.topics[:2]:
            for r in self.records[t]:
                s = orjson.loads(r.value)["source"]
                out.add((s["partition"], s["offset"]))
        for r in self.records[self.topics[2]]:
            h = dict(r.headers)
            out.add((int(h["express-source-partition"]), int(h["express-source-offset"])))
        return out


async def source_offsets(bootstrap: str, topic: str) -> set[tuple[int, int]]:
    """(partition, offset) of every record in ``topic``: read until nothing more comes (tansu's end
    offsets point at the start of the last batch, so they are not used as the stop condition)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: set[tuple[int, int]] = set()
        deadline = time.monotonic() + 30
        quiet = 0
        while quiet < 3 and time.monotonic() < deadline:
            data = await consumer.getmany(timeout_ms=150)
            quiet = 0 if data else quiet + 1
            for tp, recs in data.items():
                out.update((tp.partition, r.offset) for r in recs)
        return out
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()
