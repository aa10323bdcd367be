"""The Kafka worker against the real (embedded tansu) broker."""
from __future__ import annotations

import asyncio
import time

import orjson
from kafka_helpers import (
    OTHER,
    PARTITIONS,
    PASS_CHAIN,
    SLOW,
    Outcomes,
    committed,
    create_topics,
    make,
    running_worker,
    send,
    send_with_headers,
    source_offsets,
    unique,
    with_kafka,
)

from express.kafka.worker import KafkaWorker


async def stop_within(worker: KafkaWorker, seconds: float = 20.0) -> None:
    await asyncio.wait_for(worker.stop(), seconds)


async def test_end_to_end_outcomes_match_execute(bootstrap, tmp_path):
    topic = unique("e2e")
    settings, registry = make(tmp_path, {"chain": PASS_CHAIN}, {topic: "chain"})
    await create_topics(bootstrap, topic)
    n = 400
    inputs = [{"id": f"order-{i}", "n": (i if i % 7 else -i - 1)} for i in range(n)]
    keys = [f"order-{i}".encode() for i in range(n)]
    async with running_worker(settings, registry, bootstrap) as worker:
        await send(bootstrap, topic, inputs, keys)
        async with Outcomes(bootstrap, topic) as out:
            await out.wait_total(n, 30)
            await out.poll(0.3)  # nothing extra arrives
    assert out.total == n
    assert worker.dead_lettered == 0
    machine = registry.get("chain")
    by_key = {}
    for t in out.topics[:2]:
        for r in out.records[t]:
            by_key[r.key] = orjson.loads(r.value)
    assert len(by_key) == n
    for i, (key, inp) in enumerate(zip(keys, inputs, strict=True)):
        doc = by_key[key]
        expected = await machine.execute(inp, name="x")
        assert doc["status"] == expected.status, i
        assert doc["machine"] == "chain"
        src = doc["source"]
        assert src["topic"] == topic
        assert doc["executionName"] == f"{topic}-{src['partition']}-{src['offset']}"
        assert doc["billingDetails"] == {"billedDurationInMilliseconds": 100, "billedMemoryUsedInMB": 64}
        assert doc["startDate"] <= doc["stopDate"]
        if expected.status == "SUCCEEDED":
            assert doc["output"] == expected.output
            assert "error" not in doc
        else:
            assert (doc["error"], doc["cause"]) == (expected.error, expected.cause) == ("Test.Negative", "n is negative")
            assert "output" not in doc
    # outcome records are keyed like their input and partitioned by key
    for t in out.topics[:2]:
        for r in out.records[t]:
            assert r.key is not None


async def test_poison_records_go_to_the_dlq_and_the_worker_keeps_going(bootstrap, tmp_path):
    topic = unique("poison")
    settings, registry = make(tmp_path, {"chain": PASS_CHAIN, "other": OTHER}, {topic: "chain"})
    await create_topics(bootstrap, topic)
    header = settings.kafka.machine_header
    big = orjson.dumps({"id": "big", "n": 1, "pad": "x" * (256 * 1024)})
    items = [
        (b"a", orjson.dumps({"id": "a", "n": 1}), []),
        (b"bad", b"{this is not json", [("trace", b"t-1")]),
        (b"b", orjson.dumps({"id": "b", "n": 2}), []),
        (b"who", orjson.dumps({"id": "who", "n": 3}), [(header, b"no-such-machine")]),
        (b"big", big, []),
        (b"other", orjson.dumps({"id": "o", "n": 4}), [(header, b"other")]),
        (b"c", orjson.dumps({"id": "c", "n": 5}), []),
    ]
    async with running_worker(settings, registry, bootstrap) as worker:
        await send_with_headers(bootstrap, topic, items)
        async with Outcomes(bootstrap, topic) as out:
            await out.wait_total(len(items), 30)
    dlq = out.records[topic + ".dlq"]
    assert len(dlq) == 3
    by_key = {r.key: r for r in dlq}
    reasons = {k: dict(r.headers)["express-dlq-reason"] for k, r in by_key.items()}
    assert reasons == {b"bad": b"not-json", b"who": b"unknown-machine", b"big": b"too-large"}
    assert by_key[b"bad"].value == b"{this is not json"  # the original bytes, unchanged
    assert by_key[b"big"].value == big
    assert ("trace", b"t-1") in by_key[b"bad"].headers  # original headers are kept
    h = dict(by_key[b"who"].headers)
    assert h["express-source-topic"] == topic.encode()
    assert h["express-source-partition"] == b"0" and h["express-source-offset"] == b"3"
    assert h["express-execution-name"] == f"{topic}-0-3".encode()
    results = {r.key: orjson.loads(r.value) for r in out.records[topic + ".results"]}
    assert set(results) == {b"a", b"b", b"other", b"c"}
    assert results[b"other"]["machine"] == "other" and results[b"other"]["output"]["by"] == "other"
    assert results[b"c"]["source"]["offset"] == 6
    assert worker.dead_lettered == 3
    # everything, poison included, was committed
    assert (await committed(bootstrap, worker.group_id, topic))[0] == len(items)


async def test_backpressure_in_flight_never_exceeds_the_bound(bootstrap, tmp_path):
    topic = unique("bp")
    settings, registry = make(tmp_path, {"slow": SLOW}, {topic: "slow"}, kafka={"max_in_flight": 25})
    await create_topics(bootstrap, topic)
    n = 300
    await send(bootstrap, topic, [{"id": i} for i in range(n)])
    async with running_worker(settings, registry, bootstrap) as worker:
        async with Outcomes(bootstrap, topic) as out:
            await out.wait_total(n, 40)
    assert worker.peak_in_flight == 25  # it reached the bound ...
    assert worker.pauses > 0  # ... paused its partitions there ...
    assert len(out.records[topic + ".results"]) == n  # ... and lost nothing


async def test_graceful_stop_drains_commits_and_a_new_member_gets_nothing_old(bootstrap, tmp_path):
    topic = unique("stop")
    settings, registry = make(tmp_path, {"slow": SLOW}, {topic: "slow"})
    await create_topics(bootstrap, topic)
    group = unique("g")
    n = 200
    worker = KafkaWorker(settings, registry, bootstrap, group_id=group)
    await worker.start()
    await send(bootstrap, topic, [{"id": i, "sleep": 0.5} for i in range(n)])
    deadline = time.monotonic() + 20
    while worker.in_flight < n and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert worker.in_flight == n  # all are waiting in their Wait state
    await stop_within(worker)  # SIGTERM path: drain, write, commit, leave
    assert worker.in_flight == 0 and worker.succeeded == n
    offsets = await source_offsets(bootstrap, topic)
    ends = {p: 0 for p in range(PARTITIONS)}
    for p, o in offsets:
        ends[p] = max(ends[p], o + 1)
    assert await committed(bootstrap, group, topic) == {p: (e if e else None) for p, e in ends.items()}
    async with Outcomes(bootstrap, topic) as out:
        await out.wait_total(n, 10)
    # a new member of the same group starts where the old one stopped
    async with running_worker(settings, registry, bootstrap, group_id=group) as again:
        await send(bootstrap, topic, [{"id": "new"}])
        async with Outcomes(bootstrap, topic) as out:
            await out.wait_total(n + 1, 20)
    assert again.consumed == 1


async def test_rebalance_between_two_workers_loses_nothing(bootstrap, tmp_path):
    topic = unique("reb")
    settings, registry = make(tmp_path, {"slow": SLOW}, {topic: "slow"})
    await create_topics(bootstrap, topic)
    group = unique("g")
    n = 1200
    w1 = KafkaWorker(settings, registry, bootstrap, group_id=group)
    w2 = KafkaWorker(settings, registry, bootstrap, group_id=group)
    await w1.start()
    try:
        async with Outcomes(bootstrap, topic) as out:
            await send(bootstrap, topic, [{"id": i, "sleep": 0.02} for i in range(n // 3)])
            await w2.start()  # joins mid-stream: both rebalance
            await send(bootstrap, topic, [{"id": i, "sleep": 0.02} for i in range(n // 3, 2 * n // 3)])
            deadline = time.monotonic() + 20
            while not (w1.stats()["partitions"] and w2.stats()["partitions"]) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert w1.stats()["partitions"] and w2.stats()["partitions"], "the partitions were not shared"
            await send(bootstrap, topic, [{"id": i, "sleep": 0.02} for i in range(2 * n // 3, n)])
            await stop_within(w1)  # leaves: w2 takes everything over
            ok = await out.until(lambda o: len(o.sources()) >= n, 40)
            assert ok, f"{len(out.sources())} of {n} events have an outcome"
    finally:
        await stop_within(w1)
        await stop_within(w2)
    assert w1.consumed > 0 and w2.consumed > 0
    assert out.sources() == await source_offsets(bootstrap, topic)


async def test_start_and_stop_are_idempotent(bootstrap, tmp_path):
    topic = unique("idem")
    settings, registry = make(tmp_path, {"chain": PASS_CHAIN}, {topic: "chain"})
    await create_topics(bootstrap, topic)
    worker = KafkaWorker(settings, registry, bootstrap, group_id=unique("g"))
    await stop_within(worker)  # never started: nothing to do
    await worker.start()
    await worker.start()
    await stop_within(worker)
    await stop_within(worker)
    assert worker.in_flight == 0


async def test_embedded_broker_start_stop_idempotent():
    from express.kafka.broker import EmbeddedBroker

    broker = EmbeddedBroker()
    first = await asyncio.wait_for(broker.start(), 30)
    assert await broker.start() == first and first.startswith("127.0.0.1:")
    pid = broker.pid
    await broker.stop()
    await broker.stop()
    assert broker.pid is None and pid is not None


def test_execution_names_stay_within_80_characters():
    from express.kafka.worker import name_prefix

    assert name_prefix("orders", 3) + "17" == "orders-3-17"
    long = name_prefix("t" * 200, 12) + str(2**63 - 1)
    assert len(long) <= 80 and long != name_prefix("t" * 199 + "u", 12) + str(2**63 - 1)


async def test_demo_runs_against_the_broker(bootstrap, capsys):
    import pathlib

    from express.kafka.demo import run_demo
    from express.serve.config import load_settings

    config = pathlib.Path(__file__).resolve().parents[2] / "config"
    settings = with_kafka(load_settings(config, env={}), session_timeout_ms=2000, heartbeat_interval_ms=300)
    assert await asyncio.wait_for(run_demo(settings, events=200, bootstrap=bootstrap), 60) == 0
    out = capsys.readouterr().out
    assert "outcomes read        200" in out
    assert "succeeded          192" in out and "failed/timed out   6" in out and "dead-lettered      2" in out
