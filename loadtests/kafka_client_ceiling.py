#!/usr/bin/env python3
"""Which Kafka client a worker could sit on: the raw pipeline of ../shared/bench/kafka_ceiling.py on
aiokafka (what express uses) and the same pipeline on confluent-kafka (librdkafka), side by side on
one embedded broker in one run, with ``express serve`` beside them.

    .venv/bin/pip install confluent-kafka      # not a dependency of express: this bench only
    .venv/bin/python loadtests/kafka_client_ceiling.py --events 150000 --repeat 2 \
        [--variants raw-hand,raw-confluent,serve] [--procs 1 2]

Variants: kafka_ceiling's own (``serve``, ``raw-hand``, ``raw-express``) plus ``raw-confluent``:
a confluent-kafka consumer (``consume()`` in batches of up to 10,000) -> the same hand-written m1
and outcome document as ``raw-hand`` -> ``Producer.produce`` to T.results on the source partition
(acks=all, linger 5 ms, 1 MiB batches), offsets committed once the broker acknowledged every outcome
of a fetched batch and of all batches before it (at-least-once, like express). Printed per run, by
kafka_ceiling's orchestrator: steady events/s and CPU µs per event of the workers (librdkafka's
threads included), the broker and the reader.
"""
from __future__ import annotations

import collections
import pathlib
import signal
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT.parent / "shared" / "bench"))

import kafka_ceiling as kc  # noqa: E402

# kafka_ceiling starts a raw variant as ``python <its __file__> --worker ... <fn>``: this file, so
# that ``raw-confluent`` (fn "confluent") runs the worker below and the others kafka_ceiling's own
kc.__file__ = __file__  # type: ignore[attr-defined]
DEFAULT_VARIANTS = "raw-hand,raw-confluent,serve"


def confluent_worker(bootstrap: str, topic: str, group: str) -> None:
    import gc

    import orjson
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from engine_bench import handwritten_m1 as hand

    loads, dumps = orjson.loads, orjson.dumps
    results = topic + ".results"
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "session.timeout.ms": 10_000, "heartbeat.interval.ms": 3_000,
        "fetch.wait.max.ms": 100, "max.partition.fetch.bytes": 1_048_576, "fetch.max.bytes": 16 * 1_048_576})
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False, "linger.ms": 5,
        "batch.size": 1_048_576, "message.max.bytes": 4 * 1_048_576})
    consumer.subscribe([topic])
    gc.freeze()  # the same gc tuning as express's worker and kafka_ceiling's raw worker
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    billing = {"billedDurationInMilliseconds": 100, "billedMemoryUsedInMB": 64}
    # fetched batches in order: [outcomes not yet acknowledged, {partition: next offset}]
    batches: collections.deque[list[object]] = collections.deque()

    def acknowledged(batch: list[object]) -> object:
        def done(err: object, _msg: object) -> None:
            if err is not None:
                raise KafkaException(err)
            batch[0] -= 1  # type: ignore[operator]
        return done

    def commit_ready() -> None:
        offsets: dict[int, int] = {}
        while batches and batches[0][0] == 0:
            offsets.update(batches.popleft()[1])  # type: ignore[arg-type]
        if offsets:
            consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=True)

    try:
        while not stopping:
            msgs = consumer.consume(num_messages=10_000, timeout=0.1)
            producer.poll(0)
            commit_ready()
            if not msgs:
                continue
            batch: list[object] = [0, {}]
            on_delivery = acknowledged(batch)
            offsets: dict[int, int] = batch[1]  # type: ignore[assignment]
            for msg in msgs:
                if msg.error() is not None:
                    continue
                value = msg.value()
                inp = loads(value)
                p = msg.partition()
                offset = msg.offset()
                t = time.time()
                doc = {"executionName": f"{topic}-{p}-{offset}", "machine": "bench", "status": "SUCCEEDED",
                       "output": hand(inp), "startDate": t, "stopDate": t, "billingDetails": billing,
                       "source": {"topic": topic, "partition": p, "offset": offset}}
                while True:
                    try:
                        producer.produce(results, dumps(doc), msg.key(), p, on_delivery)
                        break
                    except BufferError:  # the client's queue is full: let it send
                        producer.poll(0.01)
                batch[0] += 1  # type: ignore[operator]
                offsets[p] = offset + 1
            batches.append(batch)
    finally:
        producer.flush(30)
        commit_ready()
        consumer.close()


if __name__ == "__main__":
    import uvloop

    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, bootstrap, topic, group, fn, partitions = sys.argv
        if fn == "confluent":
            confluent_worker(bootstrap, topic, group)
        else:
            uvloop.run(kc.raw_worker(bootstrap, topic, group, fn, int(partitions)))
        sys.exit(0)
    if not any(a == "--variants" or a.startswith("--variants=") for a in sys.argv):
        sys.argv += ["--variants", DEFAULT_VARIANTS]
    sys.exit(uvloop.run(kc.main()))
