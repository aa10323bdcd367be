"""``express demo``: produce sample events to every bound topic, let a worker process them, print
what happened.

Samples come from ``<config>/samples/``: ``TOPIC.json``, ``MACHINE.json`` or the topic without its
plural ``s`` (``orders`` -> ``order.json``); ids are varied per event. Every 25th event is an
empty object (most machines reject it: it shows the failures topic) and every 100th is not JSON
(it shows the dead-letter topic). The demo runs the engine on virtual time, so Wait states take no
real time (the outcome records still show the waited time in their dates).
"""
from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import re
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from express.kafka.admin import ensure_topics
from express.kafka.broker import EmbeddedBroker
from express.kafka.worker import KafkaWorker
from express.serve.config import Settings
from express.serve.registry import Registry

DEMO_PARTITIONS = 4
_TRAILING_DIGITS = re.compile(r"(\d+)$")


def say(text: str) -> None:
    print(text, flush=True)


def load_sample(settings: Settings, topic: str, machine: str) -> Any:
    samples = pathlib.Path(settings.config_dir) / "samples"
    for stem in (topic, machine, topic[:-1] if topic.endswith("s") else topic):
        path = samples / f"{stem}.json"
        if path.is_file():
            return orjson.loads(path.read_bytes())
    found = sorted(samples.glob("*.json")) if samples.is_dir() else []
    return orjson.loads(found[0].read_bytes()) if len(found) == 1 else {"id": "event-0", "n": 0}


def vary(value: Any, i: int) -> Any:
    """A copy of ``value`` with every string under an ``id`` key made unique for event ``i``."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "id" and isinstance(v, str):
                m = _TRAILING_DIGITS.search(v)
                out[k] = f"{v[:m.start()]}{i:0{len(m.group(1))}d}" if m else f"{v}-{i}"
            else:
                out[k] = vary(v, i)
        return out
    if isinstance(value, list):
        return [vary(v, i) for v in value]
    return value


def first_id(value: Any) -> str | None:
    if isinstance(value, dict):
        if isinstance(value.get("id"), str):
            return str(value["id"])
        for v in value.values():
            found = first_id(v)
            if found:
                return found
    return None


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()


async def _start_group_at_end(bootstrap: str, group: str, ends: dict[TopicPartition, int]) -> None:
    """Commit the current end offsets for the demo group: it processes only the demo's events."""
    if not ends:
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str, events: list[tuple[bytes | None, bytes]], partitions: int) -> None:
    """Pre-produce with the batch API, keyed records partitioned as the Java client does."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                max_batch_size=1_048_576)
    await producer.start()
    try:
        batches: dict[int, Any] = {}
        futures = []
        for i, (key, value) in enumerate(events):
            p = (murmur2(key) & 0x7FFFFFFF) % partitions if key is not None else i % partitions
            b = batches.get(p)
            if b is None:
                b = batches[p] = producer.create_batch()
            if b.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(b, topic, partition=p))
                b = batches[p] = producer.create_batch()
                b.append(key=key, value=value, timestamp=None)
        for p, b in batches.items():
            futures.append(await producer.send_batch(b, topic, partition=p))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def run_demo(settings: Settings, events: int, bootstrap: str | None) -> int:
    if not settings.engine.virtual_time:
        settings = dataclasses.replace(settings, engine=dataclasses.replace(settings.engine, virtual_time=True))
    say("express demo: the engine runs on virtual time: Wait states and retry delays take no real time")
    if not settings.bindings:
        say("express demo: no [bindings] in the configuration: nothing to do")
        return 1
    registry = Registry.from_settings(settings)
    k = settings.kafka
    broker: EmbeddedBroker | None = None
    bootstrap = bootstrap or k.bootstrap or None
    worker: KafkaWorker | None = None
    try:
        if bootstrap is None:
            broker = EmbeddedBroker()
            bootstrap = await broker.start()
            say(f"express demo: started the embedded Kafka-protocol broker (tansu, in memory) at {bootstrap}")
        else:
            say(f"express demo: using the Kafka cluster at {bootstrap}")
        topics = sorted(settings.bindings)
        outs = {t: (t + k.results_suffix, t + k.failures_suffix, t + k.dlq_suffix) for t in topics}
        wanted = {t: DEMO_PARTITIONS for t in topics}
        wanted.update({o: DEMO_PARTITIONS for t in topics for o in outs[t]})
        counts = await ensure_topics(bootstrap, wanted)
        out_topics = [o for t in topics for o in outs[t]]
        group = f"{k.group_id}-demo-{uuid.uuid4().hex[:8]}"
        await _start_group_at_end(bootstrap, group, await _end_offsets(bootstrap, topics))
        out_start = await _end_offsets(bootstrap, out_topics)

        worker = KafkaWorker(settings, registry, bootstrap, group_id=group)
        await worker.start()
        say(f"express demo: worker joined group {group!r}, consuming {', '.join(topics)} "
            f"(max {worker.max_in_flight} executions in flight)")

        planned = {"events": 0, "empty": 0, "not_json": 0}
        t0 = time.perf_counter()
        for topic in topics:
            machine = settings.bindings[topic]
            sample = load_sample(settings, topic, machine)
            batch: list[tuple[bytes | None, bytes]] = []
            for i in range(events):
                doc = vary(sample, i + 1)
                key = first_id(doc) or f"{topic}-{i + 1}"
                if (i + 1) % 100 == 0:
                    value = b"{not json: " + key.encode() + b"}"
                    planned["not_json"] += 1
                elif (i + 1) % 25 == 0:
                    value = b"{}"
                    planned["empty"] += 1
                else:
                    value = orjson.dumps(doc)
                batch.append((key.encode(), value))
            await produce(bootstrap, topic, batch, counts.get(topic, DEMO_PARTITIONS))
            planned["events"] += len(batch)
        t_produced = time.perf_counter()
        say(f"express demo: produced {planned['events']} events to {', '.join(topics)} in "
            f"{t_produced - t0:.2f} s ({planned['empty']} empty objects, {planned['not_json']} not JSON)")

        seen = await _collect(bootstrap, out_start, planned["events"], timeout_s=60.0 + events / 500)
        elapsed = time.perf_counter() - t0
        total = sum(len(v) for v in seen.values())
        succeeded = sum(len(seen[outs[t][0]]) for t in topics)
        failed = sum(len(seen[outs[t][1]]) for t in topics)
        dead = sum(len(seen[outs[t][2]]) for t in topics)
        say("")
        say(f"  events produced      {planned['events']}")
        say(f"  outcomes read        {total}" + ("" if total >= planned["events"] else "  (TIMED OUT waiting)"))
        say(f"    succeeded          {succeeded}   -> {', '.join(outs[t][0] for t in topics)}")
        say(f"    failed/timed out   {failed}   -> {', '.join(outs[t][1] for t in topics)}")
        say(f"    dead-lettered      {dead}   -> {', '.join(outs[t][2] for t in topics)}")
        say(f"  end-to-end           {elapsed:.2f} s, {planned['events'] / elapsed:,.0f} events/s "
            f"(produce + execute + write outcomes; peak {worker.peak_in_flight} in flight)")
        for kind, idx in (("result", 0), ("failure", 1)):
            sample_records = [r for t in topics for r in seen[outs[t][idx]] if r is not None]
            if sample_records:
                say(f"\n  a {kind} record (key {sample_records[0][0]!r}):")
                say("  " + orjson.dumps(orjson.loads(sample_records[0][1]), option=orjson.OPT_INDENT_2)
                    .decode().replace("\n", "\n  "))
        dlq_records = [r for t in topics for r in seen[outs[t][2]] if r is not None]
        if dlq_records:
            key, value, headers = dlq_records[0]
            reasons = {h: v.decode(errors="replace") for h, v in headers if h.startswith("express-")}
            say(f"\n  a dead letter (key {key!r}): value {value!r}, headers {reasons}")
        say("")
        return 0 if total >= planned["events"] else 1
    finally:
        if worker is not None:
            await worker.stop()
        if broker is not None:
            await broker.stop()


async def _collect(bootstrap: str, start: dict[TopicPartition, int], expected: int,
                   timeout_s: float) -> dict[str, list[tuple[Any, bytes, Any]]]:
    seen: dict[str, list[tuple[Any, bytes, Any]]] = {tp.topic: [] for tp in start}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        total = 0
        while total < expected and time.monotonic() < deadline:
            data = await consumer.getmany(timeout_ms=200)
            for tp, records in data.items():
                kept = seen[tp.topic]
                for r in records:  # keep 3 samples per topic, count the rest
                    kept.append((r.key, r.value, r.headers) if len(kept) < 3 else None)  # type: ignore[arg-type]
                total += len(records)
    finally:
        await consumer.stop()
    return seen
