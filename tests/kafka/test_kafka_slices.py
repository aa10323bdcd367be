"""The worker never holds the loop for a whole fetch: a big fetch is dispatched in slices with the
loop running between them, and a spinning record goes on as a task while the records after it are
done; commits stay ordered throughout (real embedded broker)."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from kafka_helpers import PASS_CHAIN, Outcomes, committed, create_topics, make, send, send_with_headers, unique

from express.kafka.worker import KafkaWorker

SPIN = {"StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": -1, "Next": "D"}], "Default": "P"},
    "P": {"Type": "Pass", "Next": "C"},
    "D": {"Type": "Succeed"}}}


class Recording(KafkaWorker):
    """Records, in order: each fetch ("fetch", records), each dispatched slice ("slice", records)
    and each turn of a probe coroutine on the same loop ("probe",)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.events: list[tuple[Any, ...]] = []

    async def start(self) -> None:
        await super().start()
        consumer = self._consumer
        assert consumer is not None
        fetch = consumer.getmany

        async def counted(*a: Any, **kw: Any) -> Any:
            data = await fetch(*a, **kw)
            if data:
                self.events.append(("fetch", sum(len(v) for v in data.values())))
            return data

        consumer.getmany = counted  # the fetch loop has not run yet: it sees this from its first fetch
        dispatcher = self._dispatcher
        dispatch = dispatcher.dispatch

        def recorded(tp: Any, records: list[Any]) -> None:
            self.events.append(("slice", len(records)))
            dispatch(tp, records)

        dispatcher.dispatch = recorded  # type: ignore[method-assign]  # the fetch loop looks it up per slice


async def probe(worker: Recording, stop: asyncio.Event) -> None:
    while not stop.is_set():
        worker.events.append(("probe",))
        await asyncio.sleep(0.001)


def interrupted_fetches(events: list[tuple[Any, ...]]) -> list[int]:
    """Sizes of the fetches during whose dispatch the probe ran."""
    out = []
    left = 0  # records of the current fetch not dispatched yet
    size = 0
    for e in events:
        if e[0] == "fetch":
            left = size = e[1]
        elif e[0] == "slice":
            left -= e[1]
        elif e[0] == "probe" and left > 0 and (not out or out[-1] != size):
            out.append(size)
    return out


async def test_a_big_fetch_is_dispatched_in_slices(bootstrap, tmp_path):
    topic = unique("slices")
    settings, registry = make(tmp_path, {"chain": PASS_CHAIN}, {topic: "chain"})
    await create_topics(bootstrap, topic)
    n = 6000
    await send(bootstrap, topic, [{"id": f"o-{i}", "n": i} for i in range(n)])  # before the worker starts
    worker = Recording(settings, registry, bootstrap, group_id=unique("g"))
    stop = asyncio.Event()
    await worker.start()
    watcher = asyncio.ensure_future(probe(worker, stop))
    try:
        async with Outcomes(bootstrap, topic) as out:
            await out.wait_total(n, 60)
    finally:
        stop.set()
        await watcher
        await asyncio.wait_for(worker.stop(), 20)
    assert out.total == n and worker.consumed == n
    fetches = [e[1] for e in worker.events if e[0] == "fetch"]
    slices = [e[1] for e in worker.events if e[0] == "slice"]
    assert max(fetches) >= 500  # the test is about big fetches: it got some
    assert len(slices) > len(fetches) * 2 and max(slices) < max(fetches)
    # the loop ran in the middle of dispatching a fetch (before: each fetch was dispatched at once)
    assert interrupted_fetches(worker.events)
    # every record's outcome was written before its offset was committed, and all were
    assert sum(v for v in (await committed(bootstrap, worker.group_id, topic)).values() if v) == n


async def test_a_spinning_record_goes_on_as_a_task_and_holds_back_only_its_commit(bootstrap, tmp_path):
    topic = unique("spin")
    settings, registry = make(tmp_path, {"chain": PASS_CHAIN, "spin": SPIN}, {topic: "chain"},
                              engine={"max_duration_s": 6})
    await create_topics(bootstrap, topic)
    header = settings.kafka.machine_header
    items: list[tuple[bytes | None, bytes, list[Any]]] = [
        (f"a{i}".encode(), orjson.dumps({"id": f"a{i}", "n": i}), []) for i in range(50)]
    items.append((b"spin", orjson.dumps({"x": 1}), [(header, b"spin")]))
    items += [(f"b{i}".encode(), orjson.dumps({"id": f"b{i}", "n": i}), []) for i in range(50)]
    await send_with_headers(bootstrap, topic, items)  # all on partition 0, the spinner at offset 50
    worker = KafkaWorker(settings, registry, bootstrap, group_id=unique("g"))
    await worker.start()
    try:
        async with Outcomes(bootstrap, topic) as out:
            # the 100 records around the spinner are done while it still runs ...
            assert await out.until(lambda o: len(o.records[topic + ".results"]) >= 100, 30)
            assert not out.records[topic + ".failures"]
            # ... and the commit stops before it (at the end of a slice), however many after it are done
            deadline = time.monotonic() + 30
            while not (await committed(bootstrap, worker.group_id, topic))[0] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            held = (await committed(bootstrap, worker.group_id, topic))[0]
            assert not out.records[topic + ".failures"]
            assert held is not None and 0 < held <= 50
            await out.wait_total(101, 30)
        deadline = time.monotonic() + 30
        while (await committed(bootstrap, worker.group_id, topic))[0] != 101 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await asyncio.wait_for(worker.stop(), 20)
    failures = out.docs("failures")
    assert [(d["executionName"], d["status"], d["error"]) for d in failures] == [
        (f"{topic}-0-50", "TIMED_OUT", "States.Timeout")]
    assert worker.succeeded == 100 and worker.failed == 1  # one outcome each: not run twice
    assert (await committed(bootstrap, worker.group_id, topic))[0] == 101
