"""A sink (see :mod:`express.observe.sinks`) that writes JSON-lines records to a Kafka topic: usage records
to the metering topic, execution logs to a log topic.

``emit`` only enqueues (bounded; overflow is dropped and counted); one owned sender task packs
records into ``create_batch`` builders and ships them with ``send_batch``. Best effort, like
AWS's log delivery: a batch that fails is retried a few times, then dropped and counted.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterable
from typing import Any

from express.observe.metrics import LOG_RECORDS_DROPPED


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, *, name: str = "metering", max_queued: int = 100_000,
                 linger_s: float = 0.05, producer_options: dict[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.name = name
        self.max_queued = max_queued
        self.linger_s = linger_s
        self.producer_options = producer_options or {}
        self._queue: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._producer: Any = None
        self._partition = 0
        self.dropped = 0
        self.sent = 0

    async def start(self) -> None:
        if self._task is not None:
            return
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=0,
                                          enable_idempotence=False, **self.producer_options)
        await self._producer.start()
        self._task = asyncio.get_running_loop().create_task(self._send_loop(), name=f"express-{self.name}-sink")

    def emit(self, lines: Iterable[bytes]) -> None:
        q = self._queue
        for line in lines:
            if len(q) >= self.max_queued:
                self.dropped += 1
                LOG_RECORDS_DROPPED.labels(self.name).inc()
                continue
            q.append(line)
        self._wakeup.set()

    def close(self) -> None:
        """Synchronous close is not possible for Kafka; use ``await stop()``."""

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._wakeup.set()
            await self._flush_all()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 10.0)
            self._producer = None

    async def _send_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(self.linger_s)
            await self._flush_all()

    async def _flush_all(self) -> None:
        producer = self._producer
        if producer is None:
            return
        partitions = sorted(await producer.partitions_for(self.topic) or {0})
        while self._queue:
            builder = producer.create_batch()
            taken = 0
            while self._queue:
                if builder.append(key=None, value=self._queue[0], timestamp=None) is None:
                    break
                self._queue.popleft()
                taken += 1
            if taken == 0:  # a record larger than a batch: drop it rather than stall the sink
                self._queue.popleft()
                self.dropped += 1
                LOG_RECORDS_DROPPED.labels(self.name).inc()
                continue
            self._partition = (self._partition + 1) % len(partitions)
            for attempt in range(3):
                try:
                    fut = await producer.send_batch(builder, self.topic, partition=partitions[self._partition])
                    await fut
                    self.sent += taken
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # KafkaError or a timeout: retry, then give the batch up
                    if attempt == 2:
                        self.dropped += taken
                        LOG_RECORDS_DROPPED.labels(self.name).inc(taken)
                    else:
                        await asyncio.sleep(0.2 * (attempt + 1))
