"""What the Kafka worker (:mod:`express.kafka.worker`) knows about its source partitions: which
records are in flight, which are finished, what may be committed, and what a rebalance does.

* **in flight**: a record counts from the moment it is fetched until its outcome is acknowledged
  by the broker; at ``kafka.max_in_flight`` the fetcher stops (:mod:`express.kafka.dispatch`) and
  goes on once the count drops below 3/4 of the bound.
* **watermark**: the records of one partition in one dispatched slice form a *chunk* with a
  pending counter. The **committer** task (every ``kafka.commit_interval_ms``) commits, per owned
  partition, the end offset of the longest prefix of finished chunks: an offset is committed only
  when every record before it has its outcome written, however out of order they finish.
* **rebalance**: on revoke, open outcome batches are flushed, the revoked partitions get a grace
  period (half the session timeout, at most ``revoke_timeout_s``) to finish, what is finished is
  committed, and the partitions are forgotten. Executions still running are abandoned: they
  finish and write their outcome (a duplicate of what the new owner will write) but never
  commit anything.

Execution names are ``{topic}-{partition}-{offset}`` (a long topic is shortened with a hash so the
name stays within 80 characters): a redelivered record gets the same name.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from express.kafka import log

MAX_NAME = 80


def name_prefix(topic: str, partition: int) -> str:
    prefix = f"{topic}-{partition}-"
    if len(prefix) + 20 > MAX_NAME:  # an offset has at most 19 digits
        digest = hashlib.sha1(topic.encode()).hexdigest()[:12]
        prefix = f"{topic[:MAX_NAME - 20 - 14 - 12]}-{digest}-{partition}-"
    return prefix


class InFlight:
    """Records fetched whose outcome is not acknowledged yet, and the bound on them."""

    __slots__ = ("bound", "resume_below", "count", "peak", "room", "drained")

    def __init__(self, bound: int) -> None:
        self.bound = max(1, int(bound))
        self.resume_below = max(0, self.bound - max(1, self.bound // 4))
        self.count = 0
        self.peak = 0
        self.room = asyncio.Event()  # set: the count is at most resume_below (or the worker stops)
        self.room.set()
        self.drained = asyncio.Event()  # set when the count drops to 0

    def add(self, n: int) -> None:
        count = self.count + n
        self.count = count
        if count > self.peak:
            self.peak = count

    def done(self, n: int) -> None:
        count = self.count - n
        self.count = count
        if count <= self.resume_below:
            self.room.set()
        if count == 0:
            self.drained.set()


class Chunk:
    """The records of one partition in one dispatched slice of a fetch."""

    __slots__ = ("pending", "end")

    def __init__(self, pending: int, end: int) -> None:
        self.pending = pending
        self.end = end


class Part:
    """What the worker knows about one assigned source partition."""

    __slots__ = ("tp", "topic", "partition", "machine", "prefix", "chunks", "position", "committed",
                 "done_to", "results", "failures", "dlq", "p_topic", "p_source", "results_out", "results_keyed")

    def __init__(self, tp: TopicPartition, machine: str, outs: tuple[str, str, str]) -> None:
        self.tp = tp
        self.topic = tp.topic
        self.partition = tp.partition
        self.machine = machine
        self.prefix = name_prefix(tp.topic, tp.partition)
        self.chunks: collections.deque[Chunk] = collections.deque()
        self.position = -1  # end offset of the last dispatched chunk
        self.committed = -1
        self.done_to = -1  # end offset of the finished prefix
        self.results, self.failures, self.dlq = outs
        self.p_topic = tp.topic.encode()
        self.p_source = str(tp.partition).encode()
        # The open results batch this partition's outcomes go to (express.kafka.outcomes.Out), and
        # whether that topic's partition depends on the record key; set by the outcomes writer.
        self.results_out: Any = None
        self.results_keyed = True

    def finished_offset(self) -> int:
        """End offset of the longest prefix of finished chunks (-1: none yet)."""
        chunks = self.chunks
        while chunks and chunks[0].pending <= 0:
            self.done_to = chunks.popleft().end
        return self.done_to

    def unfinished(self) -> int:
        """Records dispatched whose outcome is not acknowledged yet."""
        return sum(c.pending for c in self.chunks if c.pending > 0)


class Offsets:
    """The assigned source partitions (``parts``: the same dict for the whole life of the worker)
    and their commits."""

    def __init__(self, bindings: dict[str, str], outs: dict[str, tuple[str, str, str]], *,
                 commit_interval_s: float, revoke_timeout_s: float) -> None:
        self.bindings = bindings
        self.outs = outs
        self.commit_interval_s = commit_interval_s
        self.revoke_timeout_s = revoke_timeout_s
        self.parts: dict[TopicPartition, Part] = {}
        self.consumer: AIOKafkaConsumer | None = None  # set by the worker once it is made
        self.commits = 0
        self._lock = asyncio.Lock()

    def adopt(self, tp: TopicPartition) -> Part:
        """A partition records were fetched for before its assignment callback ran."""
        part = self.parts[tp] = Part(tp, self.bindings.get(tp.topic, ""), self.outs[tp.topic])
        return part

    async def run(self, after: Callable[[], None]) -> None:
        """The committer task; ``after`` runs after every attempt (the worker flushes its metrics)."""
        while True:
            await asyncio.sleep(self.commit_interval_s)
            try:
                await self.commit()
            except KafkaError as e:
                log(f"commit failed ({type(e).__name__}: {e}); will retry")
            after()

    async def commit(self, parts: Iterable[Part] | None = None) -> None:
        """Commit the finished prefix of ``parts`` (default: every owned partition) where it moved."""
        consumer = self.consumer
        if consumer is None:
            return
        async with self._lock:
            offsets: dict[TopicPartition, int] = {}
            chosen = list(self.parts.values()) if parts is None else list(parts)
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

    async def revoked(self, revoked: list[TopicPartition], flush: Callable[[], None]) -> None:
        """``flush``: ship the open outcome batches now (their records may be of these partitions)."""
        parts = [self.parts[tp] for tp in revoked if tp in self.parts]
        if not parts:
            return
        flush()
        deadline = time.monotonic() + self.revoke_timeout_s
        while time.monotonic() < deadline and any(c.pending > 0 for p in parts for c in p.chunks):
            await asyncio.sleep(0.01)
        try:
            await self.commit(parts)
        except KafkaError as e:
            log(f"commit on revoke failed ({type(e).__name__}: {e}); the new owner will redo those records")
        left = sum(p.unfinished() for p in parts)
        if left:
            log(f"rebalance: abandoning {left} unfinished record(s) of revoked partitions (not committed)")
        for part in parts:
            self.parts.pop(part.tp, None)

    def assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            if tp not in self.parts and tp.topic in self.bindings:
                self.parts[tp] = Part(tp, self.bindings[tp.topic], self.outs[tp.topic])


class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """The consumer's rebalance callbacks, handed on as lists."""

    def __init__(self, revoked: Callable[[list[TopicPartition]], Awaitable[None]],
                 assigned: Callable[[list[TopicPartition]], None]) -> None:
        self.revoked = revoked
        self.assigned = assigned

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.assigned(list(assigned))
