"""The Kafka worker's outcomes (:mod:`express.kafka.worker`): the document of each finished execution,
dead letters, and the sender that ships them in batches and retries until the broker has them.

Each finished execution becomes one JSON record appended to an open ``producer.create_batch()``
builder for its (outcome topic, partition); the **sender** task ships builders with ``send_batch``
after ``kafka.linger_ms`` (or at once when a builder is full) and, when the broker acknowledges a
batch, marks its records done (:class:`express.kafka.offsets.Chunk`, :class:`~express.kafka.offsets.InFlight`).
A failed batch is re-sent (after a back-off) until it is acknowledged: an outcome is never dropped.

Dead letters: a record that cannot start an execution (value over
``engine.max_payload_bytes``, not JSON, unknown machine, nested too deeply or holding an integer
out of range, see :mod:`express.asl.limits`) is copied to ``T.dlq`` unchanged — same key, same value
bytes, original headers — plus headers ``express-dlq-reason`` (``too-large`` | ``not-json`` |
``unknown-machine`` | ``too-deep`` | ``number-out-of-range``), ``express-dlq-detail``
(human-readable), ``express-source-topic``, ``express-source-partition``,
``express-source-offset`` and ``express-execution-name``.

Outcome records carry the input record's key. Their partition: when the outcome topic has as
many partitions as the source topic (or the key is null), the source record's partition (for keys
partitioned by the default partitioner this is exactly murmur2(key), without hashing again);
otherwise murmur2(key) modulo the outcome topic's partition count, as the Java client does.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from express.kafka import log
from express.kafka.offsets import Chunk, InFlight, Part

H_REASON = "express-dlq-reason"
H_DETAIL = "express-dlq-detail"
_dumps = orjson.dumps
_NO_HEADERS: list[tuple[str, bytes]] = []  # shared, never mutated


class Out:
    """One open producer batch for one (topic, partition) and the chunks of its records.

    Records go straight into the batch's record builder (``BatchBuilder._builder``, aiokafka's C
    ``DefaultRecordBatchBuilder``) when there is one: ``BatchBuilder.append`` adds two Python calls
    per record (about 1 µs) around that same call. ``seal()`` hands the count back to the
    ``BatchBuilder`` before it ships."""

    __slots__ = ("topic", "partition", "builder", "refs", "kind", "attempts", "_raw", "_n", "shipped")

    def __init__(self, topic: str, partition: int, builder: Any, kind: str) -> None:
        self.topic = topic
        self.partition = partition
        self.builder = builder
        self.refs: list[Chunk] = []
        self.kind = kind
        self.attempts = 0
        raw = getattr(builder, "_builder", None)
        self._raw = raw if raw is not None and hasattr(builder, "_relative_offset") else None
        self._n = 0
        self.shipped = False  # handed to the sender: appends go to a new Out

    def append(self, key: bytes | None, value: bytes | None, headers: Any) -> bool:
        """False when the batch is full (the record was not added)."""
        raw = self._raw
        if raw is None:
            return self.builder.append(timestamp=None, key=key, value=value, headers=headers) is not None
        if raw.append(self._n, None, key=key, value=value, headers=headers) is None:
            return False
        self._n += 1
        return True

    def seal(self) -> None:
        self.shipped = True
        if self._raw is not None:
            self.builder._relative_offset = self._n  # what record_count() reports


class Outcomes:
    """Writes outcomes and dead letters; ``await attach(producer, outs)`` before the first, then
    ``run()`` is the sender task."""

    def __init__(self, flight: InFlight, linger_s: float) -> None:
        self.flight = flight
        self.linger_s = linger_s
        self.producer: AIOKafkaProducer | None = None
        self.succeeded = 0
        self.failed = 0
        self.dead_lettered = 0
        self.produced = 0
        # Set by the fetcher while it dispatches a fetch in slices: only full builders go then, as
        # when a fetch was dispatched at once; shipping the open ones at every slice makes small
        # batches (CPU in worker and broker).
        self.dispatching = False
        self.wakeup = asyncio.Event()  # something to ship, or soon
        self._flush_now = False
        self._partitions: dict[str, int] = {}  # outcome topic -> partition count
        self._source_counts: dict[str, int] = {}  # outcome topic -> partition count of its source topic
        self._open: dict[tuple[str, int], Out] = {}
        self._ready: collections.deque[Out] = collections.deque()
        # metrics, aggregated between flushes (the hot path touches only plain dicts)
        self._m_produced: collections.Counter[tuple[str, str]] = collections.Counter()
        self._m_dlq: collections.Counter[tuple[str, str]] = collections.Counter()

    async def attach(self, producer: AIOKafkaProducer, outs: dict[str, tuple[str, str, str]]) -> None:
        """Use ``producer`` (started) and learn the partition counts of the source and outcome topics."""
        self.producer = producer
        for source, topics in outs.items():
            n_source = len(await asyncio.wait_for(producer.partitions_for(source), 30.0))
            for topic in topics:
                self._partitions[topic] = len(await asyncio.wait_for(producer.partitions_for(topic), 30.0))
                self._source_counts[topic] = n_source

    def flush_soon(self) -> None:
        """Ship every open builder at the sender's next turn, without lingering."""
        self._flush_now = True
        self.wakeup.set()

    # ------------------------------------------------------------------ documents

    def outcome(self, part: Part, offset: int, key: bytes | None, machine: Any, result: Any, size: int,
                chunk: Chunk) -> None:
        status = result.status
        billing = {"billedDurationInMilliseconds": result.billed_duration_ms,  # billed by the engine
                   "billedMemoryUsedInMB": result.billed_memory_mb}
        if status == "SUCCEEDED":
            self.succeeded += 1
            doc = {"executionName": result.name, "machine": machine.name, "status": status, "output": result.output,
                   "startDate": result.start_time, "stopDate": result.stop_time, "billingDetails": billing,
                   "source": {"topic": part.topic, "partition": part.partition, "offset": offset}}
            try:
                value = _dumps(doc)
            except (TypeError, orjson.JSONEncodeError) as e:  # cannot happen for engine output; never lose it
                value = self._unwritable(doc, e)
            # The results batch of this partition, when its partition does not depend on the key
            out = part.results_out
            if out is not None and not out.shipped and (key is None or not part.results_keyed) \
                    and out.append(key, value, _NO_HEADERS):
                out.refs.append(chunk)
                return
            self._emit(part, part.results, key, value, None, chunk, "result")
            return
        self.failed += 1
        doc = {"executionName": result.name, "machine": machine.name, "status": status, "error": result.error,
               "cause": result.cause, "startDate": result.start_time, "stopDate": result.stop_time,
               "billingDetails": billing,
               "source": {"topic": part.topic, "partition": part.partition, "offset": offset}}
        try:
            value = _dumps(doc)
        except (TypeError, orjson.JSONEncodeError) as e:
            value = self._unwritable(doc, e)
        self._emit(part, part.failures, key, value, None, chunk, "failure")

    @staticmethod
    def _unwritable(doc: dict[str, Any], e: Exception) -> bytes:
        return _dumps({**{k: v for k, v in doc.items() if k != "output"}, "status": "FAILED",
                       "error": "States.Runtime", "cause": f"output is not serialisable: {e}"})

    def dead_letter(self, part: Part, rec: Any, chunk: Chunk, reason: str, detail: str) -> None:
        self.dead_lettered += 1
        self._m_dlq[(part.topic, reason)] += 1
        headers = list(rec.headers or ())
        headers += [(H_REASON, reason.encode()), (H_DETAIL, detail.encode("utf-8", "replace")),
                    ("express-source-topic", part.p_topic), ("express-source-partition", part.p_source),
                    ("express-source-offset", str(rec.offset).encode()),
                    ("express-execution-name", (part.prefix + str(rec.offset)).encode())]
        value = rec.value
        if value is None and rec.key is None:
            value = b""
        self._emit(part, part.dlq, rec.key, value, headers, chunk, "dlq")

    def _emit(self, part: Part, topic: str, key: bytes | None, value: bytes | None, headers: Any,
              chunk: Chunk, kind: str) -> None:
        n = self._partitions.get(topic) or 1
        keyed = n != self._source_counts.get(topic)
        if key is None or not keyed:
            p = part.partition % n
        else:
            p = (murmur2(key) & 0x7FFFFFFF) % n
        slot = (topic, p)
        out = self._open.get(slot)
        if out is None:
            out = self._open[slot] = Out(topic, p, self.producer.create_batch(), kind)  # type: ignore[union-attr]
        headers = headers or _NO_HEADERS
        if not out.append(key, value, headers):
            out.seal()
            self._ready.append(out)  # full: ship it now
            out = self._open[slot] = Out(topic, p, self.producer.create_batch(), kind)  # type: ignore[union-attr]
            out.append(key, value, headers)
            self.wakeup.set()
        out.refs.append(chunk)
        if topic is part.results and (key is None or not keyed):
            part.results_out = out
            part.results_keyed = keyed

    # ------------------------------------------------------------------ the sender

    async def run(self) -> None:
        producer = self.producer
        assert producer is not None
        wakeup = self.wakeup
        while True:
            await wakeup.wait()
            wakeup.clear()
            if self.linger_s > 0 and not self._flush_now and not self._ready:
                await asyncio.sleep(self.linger_s)
            flush, self._flush_now = self._flush_now, False
            if self._open and (flush or not self.dispatching):
                for out in self._open.values():
                    out.seal()
                self._ready.extend(self._open.values())
                self._open.clear()
            ready = self._ready
            while ready:
                out = ready.popleft()
                try:
                    fut = await producer.send_batch(out.builder, out.topic, partition=out.partition)
                except asyncio.CancelledError:
                    ready.appendleft(out)
                    raise
                except Exception as e:  # KafkaError, timeouts, a closed producer: try again later
                    self._retry(out, e)
                    continue
                fut.add_done_callback(lambda f, out=out: self._acked(out, f))

    def _retry(self, out: Out, error: BaseException) -> None:
        out.attempts += 1
        delay = min(5.0, 0.1 * 2 ** min(out.attempts, 6))
        if out.attempts == 1 or out.attempts % 10 == 0:
            log(f"writing {out.builder.record_count()} outcome(s) to {out.topic}[{out.partition}] failed "
                f"({type(error).__name__}: {error}); retrying in {delay:g} s")

        def again() -> None:
            self._ready.append(out)
            self.wakeup.set()

        asyncio.get_running_loop().call_later(delay, again)

    def _acked(self, out: Out, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self._retry(out, asyncio.CancelledError())
            return
        exc = fut.exception()
        if exc is not None:
            self._retry(out, exc)
            return
        refs = out.refs
        for chunk in refs:
            chunk.pending -= 1
        n = len(refs)
        self.produced += n
        self._m_produced[(out.topic, out.kind)] += n
        self.flight.done(n)

    def flush_metrics(self, m: Any) -> None:
        """Add what was counted since the last flush to ``m`` (:mod:`express.observe.metrics`)."""
        for (topic, kind), n in self._m_produced.items():
            m.KAFKA_PRODUCED.labels(topic, kind).inc(n)
        for (topic, reason), n in self._m_dlq.items():
            m.KAFKA_DLQ.labels(topic, reason).inc(n)
        self._m_produced.clear()
        self._m_dlq.clear()
