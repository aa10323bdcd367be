"""The Kafka worker: one execution per record, outcomes to ``T.results`` / ``T.failures`` / ``T.dlq``,
at-least-once.

Flow (all on one event loop, nothing blocks it):

* **fetch loop** (task): ``consumer.getmany(max_records=room)`` where ``room`` is what is left of
  ``kafka.max_in_flight``; the batch is dispatched in slices, the loop given back between them once
  a slice of loop time is used up (:mod:`express.engine.runner`). Machines whose definition has no
  asynchronous state (no Wait, Task, Parallel/Map with such states) are run inline (the coroutine
  is driven by hand: no Task per record), and go on as a Task only if they give the loop back; the
  others get a Task.
  When the bound is reached, every assigned partition is paused; they are resumed once in-flight
  drops below 3/4 of the bound.
* **outcomes**: each finished execution becomes one JSON record appended to an open
  ``producer.create_batch()`` builder for its (outcome topic, partition); the **sender** task
  ships builders with ``send_batch`` after ``kafka.linger_ms`` (or at once when a builder is
  full) and, when the broker acknowledges a batch, marks its records done. A failed batch is
  re-sent (after a back-off) until it is acknowledged: an outcome is never dropped.
* **completion tracking**: the records of one partition in one dispatched slice form a *chunk*
  with a pending counter; a record counts as in flight from the moment it is fetched until its outcome
  is acknowledged. The **committer** task (every ``kafka.commit_interval_ms``) commits, per owned
  partition, the end offset of the longest prefix of finished chunks: an offset is committed only
  when every record before it has its outcome written, however out of order they finish.
* **rebalance**: on revoke, open builders are flushed, the revoked partitions get a grace period
  (half the session timeout, at most ``revoke_timeout_s``) to finish, what is finished is
  committed, and the partitions are forgotten. Executions still running are abandoned: they
  finish and write their outcome (a duplicate of what the new owner will write) but never
  commit anything.
* **stop** (idempotent): stop fetching, drain every in-flight execution and its outcome (at most
  ``drain_timeout_s``), commit, leave the group, close the producer.

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

Execution names are ``{topic}-{partition}-{offset}`` (a long topic is shortened with a hash so the
name stays within 80 characters): a redelivered record gets the same name.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import hashlib
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError
from aiokafka.partitioner import murmur2

from express.asl.limits import decode_refusal, refusal, suspect
from express.engine.runner import Pace, give_back
from express.kafka.admin import ensure_topics, partition_counts
from express.serve.config import Settings

try:  # prometheus_client is an optional extra
    from express.observe import metrics as _metrics
except ImportError:  # pragma: no cover
    _metrics = None  # type: ignore[assignment]

MODE = "async"  # Express async (at-least-once) executions, as metrics and usage records label them
MAX_NAME = 80
H_REASON = "express-dlq-reason"
H_DETAIL = "express-dlq-detail"
_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
_NO_HEADERS: list[tuple[str, bytes]] = []  # shared, never mutated


def log(message: str) -> None:
    from express.observe.logs import emit_message

    emit_message("kafka", message)


def name_prefix(topic: str, partition: int) -> str:
    prefix = f"{topic}-{partition}-"
    if len(prefix) + 20 > MAX_NAME:  # an offset has at most 19 digits
        digest = hashlib.sha1(topic.encode()).hexdigest()[:12]
        prefix = f"{topic[:MAX_NAME - 20 - 14 - 12]}-{digest}-{partition}-"
    return prefix


def tune_gc(gen0: int = 50_000) -> None:
    """Executions allocate many short-lived dicts and lists, nearly all freed by reference counting;
    the default gen-0 threshold (700) makes the cyclic collector run every few records. Raise it
    (once, only if still at the default) and move what exists at start-up (modules, compiled
    machines) out of the collector's sight: about 14% more records/s on the bench machine."""
    threshold = gc.get_threshold()
    if threshold[0] == 700:
        gc.freeze()
        gc.set_threshold(gen0, threshold[1], threshold[2])


class _Chunk:
    """The records of one partition in one dispatched slice of a fetch."""

    __slots__ = ("pending", "end")

    def __init__(self, pending: int, end: int) -> None:
        self.pending = pending
        self.end = end


class _Part:
    """What the worker knows about one assigned source partition."""

    __slots__ = ("tp", "topic", "partition", "machine", "prefix", "chunks", "position", "committed",
                 "done_to", "results", "failures", "dlq", "p_topic", "p_source")

    def __init__(self, tp: TopicPartition, machine: str, outs: tuple[str, str, str]) -> None:
        self.tp = tp
        self.topic = tp.topic
        self.partition = tp.partition
        self.machine = machine
        self.prefix = name_prefix(tp.topic, tp.partition)
        self.chunks: collections.deque[_Chunk] = collections.deque()
        self.position = -1  # end offset of the last dispatched chunk
        self.committed = -1
        self.done_to = -1  # end offset of the finished prefix
        self.results, self.failures, self.dlq = outs
        self.p_topic = tp.topic.encode()
        self.p_source = str(tp.partition).encode()

    def finished_offset(self) -> int:
        """End offset of the longest prefix of finished chunks (-1: none yet)."""
        chunks = self.chunks
        while chunks and chunks[0].pending <= 0:
            self.done_to = chunks.popleft().end
        return self.done_to


class _Out:
    """One open producer batch for one (topic, partition) and the chunks of its records."""

    __slots__ = ("topic", "partition", "builder", "refs", "kind", "attempts")

    def __init__(self, topic: str, partition: int, builder: Any, kind: str) -> None:
        self.topic = topic
        self.partition = partition
        self.builder = builder
        self.refs: list[_Chunk] = []
        self.kind = kind
        self.attempts = 0


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: KafkaWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.worker._on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.worker._on_assigned(list(assigned))


class KafkaWorker:
    """Consumes the topics bound in ``settings.bindings`` (topic -> machine) as one member of the
    consumer group ``settings.kafka.group_id``. ``await start()`` / ``await stop()``, both idempotent."""

    def __init__(self, settings: Settings, registry: Any, bootstrap: str, *, group_id: str | None = None,
                 revoke_timeout_s: float = 10.0, drain_timeout_s: float | None = None,
                 ensure_outcome_topics: bool = True, tune_gc: bool = True) -> None:
        self.settings = settings
        self.registry = registry
        self.bootstrap = bootstrap
        k = settings.kafka
        self.group_id = group_id or k.group_id
        self.max_in_flight = max(1, int(k.max_in_flight))
        self.resume_below = max(0, self.max_in_flight - max(1, self.max_in_flight // 4))
        self.max_payload = settings.engine.max_payload_bytes
        self.linger_s = k.linger_ms / 1000.0
        self.commit_interval_s = max(0.01, k.commit_interval_ms / 1000.0)
        self.revoke_timeout_s = min(revoke_timeout_s, k.session_timeout_ms / 2000.0)
        self.drain_timeout_s = drain_timeout_s if drain_timeout_s is not None else settings.engine.max_duration_s + 10
        self.ensure_outcome_topics = ensure_outcome_topics
        self.tune_gc = tune_gc
        self.bindings = dict(settings.bindings)
        self.outs = {t: (t + k.results_suffix, t + k.failures_suffix, t + k.dlq_suffix) for t in self.bindings}
        self.header = k.machine_header

        self.in_flight = 0
        self.peak_in_flight = 0
        self.consumed = 0
        self.succeeded = 0
        self.failed = 0
        self.dead_lettered = 0
        self.produced = 0
        self.commits = 0
        self.pauses = 0

        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._parts: dict[TopicPartition, _Part] = {}
        self._partitions: dict[str, int] = {}  # outcome topic -> partition count
        self._source_counts: dict[str, int] = {}  # outcome topic -> partition count of its source topic
        self._open: dict[tuple[str, int], _Out] = {}
        self._ready: collections.deque[_Out] = collections.deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fetch_task: asyncio.Task[None] | None = None
        self._send_task: asyncio.Task[None] | None = None
        self._commit_task: asyncio.Task[None] | None = None
        self._send_wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._drained = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._lifecycle = asyncio.Lock()
        self._paused = False
        self._stopping = False
        self._flush_now = False
        self._dispatching = False  # a fetch is being dispatched, in slices (_fetch_loop)
        self._started = False
        self._stopped = False
        # metrics, aggregated between flushes (the hot path touches only plain dicts)
        self._m_consumed: collections.Counter[str] = collections.Counter()
        self._m_produced: collections.Counter[tuple[str, str]] = collections.Counter()
        self._m_dlq: collections.Counter[tuple[str, str]] = collections.Counter()

    # ------------------------------------------------------------------ lifecycle

    def _client_kw(self) -> dict[str, Any]:
        k = self.settings.kafka
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "client_id": k.client_id,
                              "security_protocol": k.security_protocol}
        if k.sasl_mechanism:
            kw.update(sasl_mechanism=k.sasl_mechanism, sasl_plain_username=k.sasl_username or None,
                      sasl_plain_password=k.sasl_password or None)
        if k.ssl_cafile or k.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kw["ssl_context"] = create_ssl_context(cafile=k.ssl_cafile or None)
        return kw

    async def start(self) -> None:
        async with self._lifecycle:
            if self._started:
                return
            self._started = True
            k = self.settings.kafka
            kw = self._client_kw()
            topics = sorted(self.bindings)
            if self.ensure_outcome_topics:
                await self._ensure_topics(kw)
            self._producer = AIOKafkaProducer(
                acks="all", enable_idempotence=False, linger_ms=k.linger_ms,
                max_batch_size=k.max_batch_bytes, max_request_size=max(k.max_batch_bytes, 1_048_576) * 4,
                request_timeout_ms=30_000, **kw)
            await self._producer.start()
            try:
                for source, outs in self.outs.items():
                    n_source = len(await asyncio.wait_for(self._producer.partitions_for(source), 30.0))
                    for topic in outs:
                        self._partitions[topic] = len(await asyncio.wait_for(
                            self._producer.partitions_for(topic), 30.0))
                        self._source_counts[topic] = n_source
                self._consumer = AIOKafkaConsumer(
                    group_id=self.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
                    session_timeout_ms=k.session_timeout_ms, heartbeat_interval_ms=k.heartbeat_interval_ms,
                    rebalance_timeout_ms=max(k.session_timeout_ms * 2, 4_000),
                    max_poll_interval_ms=max(300_000, int(self.settings.engine.max_duration_s * 1000) + 60_000),
                    fetch_max_wait_ms=100, max_partition_fetch_bytes=1_048_576, fetch_max_bytes=16 * 1_048_576,
                    **kw)
                self._consumer.subscribe(topics, listener=_Listener(self))
                await self._consumer.start()
            except BaseException:
                await self._producer.stop()
                if self._consumer is not None:
                    await self._consumer.stop()
                raise
            if self.tune_gc:
                tune_gc()
            self._send_task = asyncio.create_task(self._send_loop(), name="express-kafka-sender")
            self._commit_task = asyncio.create_task(self._commit_loop(), name="express-kafka-committer")
            self._fetch_task = asyncio.create_task(self._fetch_loop(), name="express-kafka-fetcher")

    async def _ensure_topics(self, kw: dict[str, Any]) -> None:
        """Best effort: create missing outcome topics with as many partitions as their source topic."""
        extra = {key: v for key, v in kw.items() if key != "bootstrap_servers"}
        try:
            counts = await partition_counts(self.bootstrap, self.bindings, **extra)
            want = {out: counts[t] for t, outs in self.outs.items() if counts.get(t) for out in outs}
            if want:
                await ensure_topics(self.bootstrap, want, **extra)
        except (TimeoutError, KafkaError, OSError) as e:
            log(f"could not create outcome topics ({type(e).__name__}: {e}); relying on auto-creation")

    async def stop(self) -> None:
        async with self._lifecycle:
            if not self._started or self._stopped:
                return
            self._stopped = True
            self._stopping = True
            self._room.set()
            if self._fetch_task is not None:
                await self._finish_task(self._fetch_task, 10.0)
            # drain: every in-flight execution finishes and its outcome is acknowledged
            deadline = time.monotonic() + self.drain_timeout_s
            while self.in_flight > 0 and time.monotonic() < deadline:
                self._drained.clear()
                self._flush_now = True
                self._send_wakeup.set()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._drained.wait(), min(0.5, max(0.0, deadline - time.monotonic())))
            if self.in_flight > 0:
                log(f"stop: {self.in_flight} record(s) still in flight after {self.drain_timeout_s:g} s: "
                    "not committed, they will be redelivered")
            for t in list(self._tasks):
                t.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._commit_task is not None:
                await self._finish_task(self._commit_task, 0)
            with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                await asyncio.wait_for(self._commit(), 10.0)
            if self._send_task is not None:
                await self._finish_task(self._send_task, 0)
            self._flush_metrics()
            if self._consumer is not None:
                with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._consumer.stop(), 15.0)  # leaves the group
            if self._producer is not None:
                with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._producer.stop(), 15.0)
            if _metrics is not None:
                _metrics.RECORDER.flush()

    @staticmethod
    async def _finish_task(task: asyncio.Task[Any], grace: float) -> None:
        if grace > 0:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), grace)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await task
            except Exception as e:  # already logged by the task; do not fail the shutdown
                log(f"{task.get_name()} ended with {type(e).__name__}: {e}")

    def stats(self) -> dict[str, Any]:
        return {"bootstrap": self.bootstrap, "group": self.group_id, "topics": sorted(self.bindings),
                "in_flight": self.in_flight, "peak_in_flight": self.peak_in_flight,
                "max_in_flight": self.max_in_flight, "consumed": self.consumed, "succeeded": self.succeeded,
                "failed": self.failed, "dead_lettered": self.dead_lettered, "produced": self.produced,
                "commits": self.commits, "pauses": self.pauses,
                "partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in self._parts)}

    # ------------------------------------------------------------------ fetching

    async def _fetch_loop(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self._stopping:
            room = self.max_in_flight - self.in_flight
            if room <= 0:
                await self._wait_for_room()
                continue
            try:
                data = await consumer.getmany(timeout_ms=200, max_records=room)
            except ConsumerStoppedError:
                return
            except KafkaError as e:
                log(f"fetch failed: {type(e).__name__}: {e}; retrying")
                await asyncio.sleep(0.5)
                continue
            if not data:
                continue
            if self._stopping:  # stop() began while we waited: hand the records back
                for tp, records in data.items():
                    consumer.seek(tp, records[0].offset)
                return
            # In slices (one chunk each, in offset order, so commits stay ordered), giving the loop
            # back between them once the slice of loop time is used up (express.engine.runner).
            pace = Pace()
            self._dispatching = True
            try:
                for tp, records in data.items():
                    part = None
                    lo, n = 0, len(records)
                    while lo < n:
                        hi = lo + pace.size
                        self._dispatch(tp, records if lo == 0 and hi >= n else records[lo:hi])
                        lo = hi
                        part = part or self._parts.get(tp)
                        if pace.checkpoint(time.monotonic()):
                            await give_back()
                            if self._stopping:  # the rest stays undispatched: never committed, redelivered
                                return
                            if self._parts.get(tp) is not part:  # revoked meanwhile: the new owner has the rest
                                break
            finally:
                self._dispatching = False
            self._send_wakeup.set()

    async def _wait_for_room(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        self._paused = True
        self.pauses += 1
        self._room.clear()
        assignment = list(consumer.assignment())
        if assignment:
            consumer.pause(*assignment)
        self._flush_now = True
        self._send_wakeup.set()
        try:
            while not self._stopping and self.in_flight > self.resume_below:
                try:
                    await asyncio.wait_for(self._room.wait(), 1.0)
                except TimeoutError:
                    # keep the poll timer alive; paused partitions return nothing
                    data = await consumer.getmany(timeout_ms=0)
                    for tp, records in data.items():  # a partition assigned while paused: give them back
                        consumer.seek(tp, records[0].offset)
                        consumer.pause(tp)
        finally:
            self._paused = False
            assignment = list(consumer.assignment())
            if assignment:
                consumer.resume(*assignment)

    def _dispatch(self, tp: TopicPartition, records: list[Any]) -> None:
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Part(tp, self.bindings.get(tp.topic, ""), self.outs[tp.topic])
        n = len(records)
        chunk = _Chunk(n, records[-1].offset + 1)
        part.chunks.append(chunk)
        part.position = chunk.end
        in_flight = self.in_flight + n
        self.in_flight = in_flight
        if in_flight > self.peak_in_flight:
            self.peak_in_flight = in_flight
        self.consumed += n
        self._m_consumed[part.topic] += n
        get_machine = self.registry.get
        header = self.header
        bound = part.machine
        max_payload = self.max_payload
        prefix = part.prefix
        outcome = self._outcome
        for rec in records:
            value = rec.value
            machine_name = bound
            if rec.headers:
                for hk, hv in rec.headers:
                    if hk == header:
                        machine_name = hv.decode("utf-8", "replace") if hv is not None else ""
                        break
            machine = get_machine(machine_name)
            if machine is None:
                self._dead_letter(part, rec, chunk, "unknown-machine",
                                  f"no state machine named {machine_name!r}")
                continue
            if value is None or len(value) > max_payload:
                self._dead_letter(part, rec, chunk, "too-large" if value is not None else "not-json",
                                  f"the record value is {len(value)} bytes, over the {max_payload}-byte limit"
                                  if value is not None else "the record has no value")
                continue
            try:
                inp = _loads(value)
            except _JSONDecodeError as e:
                self._dead_letter(part, rec, chunk, *(decode_refusal(e, "the record value")
                                                      or ("not-json", f"the record value is not JSON: {e}")))
                continue
            if suspect(value):  # nested deeper than can be written, or an integer orjson made a float
                refused = refusal(value, inp, "the record value")
                if refused is not None:
                    self._dead_letter(part, rec, chunk, *refused)
                    continue
            offset = rec.offset
            name = prefix + str(offset)
            if machine.block.is_async:
                self._start_task(machine, inp, name, part, offset, rec.key, len(value), chunk)
                continue
            coro = machine.execute(inp, name, input_size=len(value), mode=MODE)
            try:
                yielded = coro.send(None)
            except StopIteration as done:
                outcome(part, offset, rec.key, machine, done.value, len(value), chunk)
            else:  # it gave the loop back (its slice was used up, see express.engine.runner): a task goes on
                if yielded is not None:  # suspended on a future, not at the engine's bare yield: start over
                    coro.close()
                    coro = None
                self._start_task(machine, inp, name, part, offset, rec.key, len(value), chunk, coro)

    def _start_task(self, machine: Any, inp: Any, name: str, part: _Part, offset: int, key: bytes | None,
                    size: int, chunk: _Chunk, started: Any = None) -> None:
        """Run the execution as a task; ``started``: its coroutine, already driven by hand up to a bare
        yield, where the task resumes it."""
        coro = started if started is not None else machine.execute(inp, name, input_size=size, mode=MODE)
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return  # abandoned at shutdown: not written, not committed
            exc = t.exception()
            if exc is not None:  # the engine promises not to raise; never lose the record if it does
                from express.engine.machine import ExecutionResult

                now = time.time()
                result = ExecutionResult("FAILED", None, "States.Runtime",
                                         f"Internal error while executing: {type(exc).__name__}: {exc}",
                                         name, now, now, 0)
            else:
                result = t.result()
            self._outcome(part, offset, key, machine, result, size, chunk)
            self._send_wakeup.set()

        task.add_done_callback(done)

    # ------------------------------------------------------------------ outcomes

    def _outcome(self, part: _Part, offset: int, key: bytes | None, machine: Any, result: Any, size: int,
                 chunk: _Chunk) -> None:
        start = result.start_time
        stop = result.stop_time
        status = result.status
        billing = {"billedDurationInMilliseconds": result.billed_duration_ms,  # billed by the engine
                   "billedMemoryUsedInMB": result.billed_memory_mb}
        mname = machine.name
        if status == "SUCCEEDED":
            self.succeeded += 1
            doc = {"executionName": result.name, "machine": mname, "status": status, "output": result.output,
                   "startDate": start, "stopDate": stop,
                   "billingDetails": billing,
                   "source": {"topic": part.topic, "partition": part.partition, "offset": offset}}
            topic = part.results
            kind = "result"
        else:
            self.failed += 1
            doc = {"executionName": result.name, "machine": mname, "status": status, "error": result.error,
                   "cause": result.cause, "startDate": start, "stopDate": stop,
                   "billingDetails": billing,
                   "source": {"topic": part.topic, "partition": part.partition, "offset": offset}}
            topic = part.failures
            kind = "failure"
        try:
            value = _dumps(doc)
        except (TypeError, orjson.JSONEncodeError) as e:  # cannot happen for engine output; never lose it
            value = _dumps({**{k: v for k, v in doc.items() if k != "output"}, "status": "FAILED",
                            "error": "States.Runtime", "cause": f"output is not serialisable: {e}"})
        self._emit(topic, key, value, None, part.partition, chunk, kind)

    def _dead_letter(self, part: _Part, rec: Any, chunk: _Chunk, reason: str, detail: str) -> None:
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
        self._emit(part.dlq, rec.key, value, headers, part.partition, chunk, "dlq")

    def _emit(self, topic: str, key: bytes | None, value: bytes | None, headers: Any, source_partition: int,
              chunk: _Chunk, kind: str) -> None:
        n = self._partitions.get(topic) or 1
        if key is None or n == self._source_counts.get(topic):
            p = source_partition % n
        else:
            p = (murmur2(key) & 0x7FFFFFFF) % n
        slot = (topic, p)
        out = self._open.get(slot)
        if out is None:
            out = self._open[slot] = _Out(topic, p, self._producer.create_batch(), kind)  # type: ignore[union-attr]
        if out.builder.append(timestamp=None, key=key, value=value, headers=headers or _NO_HEADERS) is None:
            self._ready.append(out)  # full: ship it now
            out = self._open[slot] = _Out(topic, p, self._producer.create_batch(), kind)  # type: ignore[union-attr]
            out.builder.append(timestamp=None, key=key, value=value, headers=headers or _NO_HEADERS)
            self._send_wakeup.set()
        out.refs.append(chunk)

    async def _send_loop(self) -> None:
        producer = self._producer
        assert producer is not None
        wakeup = self._send_wakeup
        while True:
            await wakeup.wait()
            wakeup.clear()
            if self.linger_s > 0 and not self._flush_now and not self._ready:
                await asyncio.sleep(self.linger_s)
            flush, self._flush_now = self._flush_now, False
            # In the middle of a fetch only full builders go, as when a fetch was dispatched at once:
            # shipping the open ones at every slice makes small batches (CPU in worker and broker).
            if self._open and (flush or not self._dispatching):
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

    def _retry(self, out: _Out, error: BaseException) -> None:
        out.attempts += 1
        delay = min(5.0, 0.1 * 2 ** min(out.attempts, 6))
        if out.attempts == 1 or out.attempts % 10 == 0:
            log(f"writing {out.builder.record_count()} outcome(s) to {out.topic}[{out.partition}] failed "
                f"({type(error).__name__}: {error}); retrying in {delay:g} s")

        def again() -> None:
            self._ready.append(out)
            self._send_wakeup.set()

        asyncio.get_running_loop().call_later(delay, again)

    def _acked(self, out: _Out, fut: asyncio.Future[Any]) -> None:
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
        in_flight = self.in_flight - n
        self.in_flight = in_flight
        if in_flight <= self.resume_below:
            self._room.set()
        if in_flight == 0:
            self._drained.set()

    # ------------------------------------------------------------------ commits and rebalances

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval_s)
            try:
                await self._commit()
            except KafkaError as e:
                log(f"commit failed ({type(e).__name__}: {e}); will retry")
            self._flush_metrics()

    async def _commit(self, parts: Iterable[_Part] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        async with self._commit_lock:
            offsets: dict[TopicPartition, int] = {}
            chosen = list(self._parts.values()) if parts is None else list(parts)
            for part in chosen:
                end = part.finished_offset()
                if end > part.committed:
                    offsets[part.tp] = end
            if not offsets:
                return
            await consumer.commit(offsets)
            self.commits += 1
            for part in chosen:
                if part.tp in offsets:
                    part.committed = max(part.committed, offsets[part.tp])

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        parts = [self._parts[tp] for tp in revoked if tp in self._parts]
        if not parts:
            return
        self._flush_now = True
        self._send_wakeup.set()
        deadline = time.monotonic() + self.revoke_timeout_s
        while time.monotonic() < deadline and any(c.pending > 0 for p in parts for c in p.chunks):
            await asyncio.sleep(0.01)
        try:
            await self._commit(parts)
        except KafkaError as e:
            log(f"commit on revoke failed ({type(e).__name__}: {e}); the new owner will redo those records")
        left = sum(c.pending for p in parts for c in p.chunks if c.pending > 0)
        if left:
            log(f"rebalance: abandoning {left} unfinished record(s) of revoked partitions (not committed)")
        for part in parts:
            self._parts.pop(part.tp, None)

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            if tp not in self._parts and tp.topic in self.bindings:
                self._parts[tp] = _Part(tp, self.bindings[tp.topic], self.outs[tp.topic])
        if self._paused and assigned and self._consumer is not None:
            self._consumer.pause(*assigned)

    # ------------------------------------------------------------------ metrics

    def _flush_metrics(self) -> None:
        m = _metrics
        if m is None:
            return
        for topic, n in self._m_consumed.items():
            m.KAFKA_CONSUMED.labels(topic).inc(n)
        for (topic, kind), n in self._m_produced.items():
            m.KAFKA_PRODUCED.labels(topic, kind).inc(n)
        for (topic, reason), n in self._m_dlq.items():
            m.KAFKA_DLQ.labels(topic, reason).inc(n)
        self._m_consumed.clear()
        self._m_produced.clear()
        self._m_dlq.clear()
        m.RECORDER.flush()
        consumer = self._consumer
        if consumer is not None:
            for part in list(self._parts.values()):
                high = consumer.highwater(part.tp)
                if high is not None and part.position >= 0:
                    m.KAFKA_LAG.labels(part.topic, str(part.partition)).set(max(0, high - part.position))
