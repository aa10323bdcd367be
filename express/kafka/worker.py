"""The Kafka worker: one execution per record, outcomes to ``T.results`` / ``T.failures`` / ``T.dlq``,
at-least-once.

All on one event loop, nothing blocks it; three tasks, each owned by a part of its own:

* **fetcher** (:mod:`express.kafka.dispatch`): ``consumer.getmany`` while fewer than
  ``kafka.max_in_flight`` records are in flight, dispatched in slices of loop time, one execution
  per record (inline when the machine cannot wait), dead letters for what cannot start.
* **sender** (:mod:`express.kafka.outcomes`): the outcome documents, in producer batches per
  (outcome topic, partition), shipped after ``kafka.linger_ms`` and re-sent until acknowledged.
* **committer** (:mod:`express.kafka.offsets`): a record is in flight from its fetch until its
  outcome is acknowledged; per partition, the end of the longest finished prefix is committed every
  ``kafka.commit_interval_ms``, and on revoke after a grace period.

**stop** (idempotent): stop fetching, drain every in-flight execution and its outcome (at most
``drain_timeout_s``), commit, leave the group, close the producer.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from express.kafka import log
from express.kafka.admin import ensure_topics, partition_counts
from express.kafka.dispatch import MODE, Dispatcher
from express.kafka.offsets import MAX_NAME, InFlight, Listener, Offsets, name_prefix
from express.kafka.outcomes import H_DETAIL, H_REASON, Outcomes
from express.serve.config import Settings
from express.serve.gc_tuning import tune_gc

try:  # prometheus_client is an optional extra
    from express.observe import metrics as _metrics
except ImportError:  # pragma: no cover
    _metrics = None  # type: ignore[assignment]

__all__ = ["H_DETAIL", "H_REASON", "MAX_NAME", "MODE", "KafkaWorker", "log", "name_prefix", "tune_gc"]


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
        self.drain_timeout_s = drain_timeout_s if drain_timeout_s is not None else settings.engine.max_duration_s + 10
        self.ensure_outcome_topics = ensure_outcome_topics
        self.tune_gc = tune_gc
        self.bindings = dict(settings.bindings)
        self.outs = {t: (t + k.results_suffix, t + k.failures_suffix, t + k.dlq_suffix) for t in self.bindings}

        self._flight = InFlight(k.max_in_flight)
        self._offsets = Offsets(self.bindings, self.outs, commit_interval_s=max(0.01, k.commit_interval_ms / 1000.0),
                                revoke_timeout_s=min(revoke_timeout_s, k.session_timeout_ms / 2000.0))
        self._outcomes = Outcomes(self._flight, k.linger_ms / 1000.0)
        self._dispatcher = Dispatcher(registry, self._offsets, self._outcomes, self._flight,
                                      header=k.machine_header, max_payload=settings.engine.max_payload_bytes)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._fetch_task: asyncio.Task[None] | None = None
        self._send_task: asyncio.Task[None] | None = None
        self._commit_task: asyncio.Task[None] | None = None
        self._lifecycle = asyncio.Lock()
        self._started = False
        self._stopped = False

    # ------------------------------------------------------------------ counters

    @property
    def max_in_flight(self) -> int:
        return self._flight.bound

    @property
    def in_flight(self) -> int:
        return self._flight.count

    @property
    def peak_in_flight(self) -> int:
        return self._flight.peak

    @property
    def consumed(self) -> int:
        return self._dispatcher.consumed

    @property
    def pauses(self) -> int:
        return self._dispatcher.pauses

    @property
    def succeeded(self) -> int:
        return self._outcomes.succeeded

    @property
    def failed(self) -> int:
        return self._outcomes.failed

    @property
    def dead_lettered(self) -> int:
        return self._outcomes.dead_lettered

    @property
    def produced(self) -> int:
        return self._outcomes.produced

    @property
    def commits(self) -> int:
        return self._offsets.commits

    def stats(self) -> dict[str, Any]:
        return {"bootstrap": self.bootstrap, "group": self.group_id, "topics": sorted(self.bindings),
                "in_flight": self.in_flight, "peak_in_flight": self.peak_in_flight,
                "max_in_flight": self.max_in_flight, "consumed": self.consumed, "succeeded": self.succeeded,
                "failed": self.failed, "dead_lettered": self.dead_lettered, "produced": self.produced,
                "commits": self.commits, "pauses": self.pauses,
                "partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in self._offsets.parts)}

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
                await self._outcomes.attach(self._producer, self.outs)
                self._consumer = AIOKafkaConsumer(
                    group_id=self.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
                    session_timeout_ms=k.session_timeout_ms, heartbeat_interval_ms=k.heartbeat_interval_ms,
                    rebalance_timeout_ms=max(k.session_timeout_ms * 2, 4_000),
                    max_poll_interval_ms=max(300_000, int(self.settings.engine.max_duration_s * 1000) + 60_000),
                    fetch_max_wait_ms=100, max_partition_fetch_bytes=1_048_576, fetch_max_bytes=16 * 1_048_576,
                    **kw)
                self._offsets.consumer = self._dispatcher.consumer = self._consumer
                self._consumer.subscribe(topics, listener=Listener(self._on_revoked, self._on_assigned))
                await self._consumer.start()
            except BaseException:
                await self._producer.stop()
                if self._consumer is not None:
                    await self._consumer.stop()
                raise
            if self.tune_gc:
                tune_gc()
            self._send_task = asyncio.create_task(self._outcomes.run(), name="express-kafka-sender")
            self._commit_task = asyncio.create_task(self._offsets.run(self._flush_metrics),
                                                    name="express-kafka-committer")
            self._fetch_task = asyncio.create_task(self._dispatcher.run(), name="express-kafka-fetcher")

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
            self._dispatcher.stop()
            if self._fetch_task is not None:
                await self._finish_task(self._fetch_task, 10.0)
            # drain: every in-flight execution finishes and its outcome is acknowledged
            flight = self._flight
            deadline = time.monotonic() + self.drain_timeout_s
            while flight.count > 0 and time.monotonic() < deadline:
                flight.drained.clear()
                self._outcomes.flush_soon()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(flight.drained.wait(), min(0.5, max(0.0, deadline - time.monotonic())))
            if flight.count > 0:
                log(f"stop: {flight.count} record(s) still in flight after {self.drain_timeout_s:g} s: "
                    "not committed, they will be redelivered")
            await self._dispatcher.abandon()
            if self._commit_task is not None:
                await self._finish_task(self._commit_task, 0)
            with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                await asyncio.wait_for(self._offsets.commit(), 10.0)
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

    # ------------------------------------------------------------------ rebalances

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._offsets.revoked(revoked, self._outcomes.flush_soon)

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        self._offsets.assigned(assigned)
        self._dispatcher.assigned(assigned)

    # ------------------------------------------------------------------ metrics

    def _flush_metrics(self) -> None:
        m = _metrics
        if m is None:
            return
        self._dispatcher.flush_metrics(m)
        self._outcomes.flush_metrics(m)
        m.RECORDER.flush()
        consumer = self._consumer
        if consumer is not None:
            for part in list(self._offsets.parts.values()):
                high = consumer.highwater(part.tp)
                if high is not None and part.position >= 0:
                    m.KAFKA_LAG.labels(part.topic, str(part.partition)).set(max(0, high - part.position))
