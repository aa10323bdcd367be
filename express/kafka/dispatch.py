"""The Kafka worker's fetch loop (:mod:`express.kafka.worker`): records in, one execution each.

``consumer.getmany(max_records=room)`` where ``room`` is what is left of ``kafka.max_in_flight``;
the batch is dispatched in slices, the loop given back between them once a slice of loop time is
used up (:mod:`express.engine.runner`). Machines that cannot wait (no Wait, Task, Parallel or Map
state: :attr:`express.engine.machine.Machine.may_wait`) are run inline (the coroutine is driven by
hand: no Task per record), and go on as a Task only if they give the loop back; the others get a Task.
When the bound is reached, every assigned partition is paused; they are resumed once in-flight
drops below 3/4 of the bound. A record that cannot start an execution is dead-lettered
(:mod:`express.kafka.outcomes`).
"""
from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError

from express.asl.limits import decode_refusal, refusal, suspect
from express.engine.runner import Pace, give_back
from express.kafka import log
from express.kafka.offsets import Chunk, InFlight, Offsets, Part
from express.kafka.outcomes import Outcomes

MODE = "async"  # Express async (at-least-once) executions, as metrics and usage records label them
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_UNSET: Any = object()


# The header of a start event written by StartExecution (express.kafka.starts): the execution ARN the
# API answered, so the execution runs under it (its name is the ARN's).
EXECUTION_HEADER = "express-execution-arn"


def execution_name(arn: str) -> str:
    """The name in an Express execution ARN ``arn:aws:states:R:A:express:MACHINE:NAME:UUID``."""
    parts = arn.split(":")
    return parts[7] if len(parts) > 8 else parts[-1]


class Dispatcher:
    """Fetches while there is room and starts the executions; ``run()`` is the fetcher task, once
    ``consumer`` is set. ``stop()`` ends it; ``await abandon()`` cancels the executions still running."""

    def __init__(self, registry: Any, offsets: Offsets, outcomes: Outcomes, flight: InFlight, *,
                 header: str, max_payload: int) -> None:
        self.registry = registry
        self.offsets = offsets
        self.parts = offsets.parts
        self.outcomes = outcomes
        self.flight = flight
        self.header = header  # the record header naming another machine than the topic's
        self.max_payload = max_payload
        self.consumer: AIOKafkaConsumer | None = None
        self.consumed = 0
        self.pauses = 0
        self.paused = False
        self.stopping = False
        # running executions -> what their outcome needs (machine, name, part, offset, key, size, chunk)
        self._tasks: dict[asyncio.Task[Any], tuple[Any, ...]] = {}
        self._m_consumed: collections.Counter[str] = collections.Counter()  # flushed with the metrics

    def stop(self) -> None:
        self.stopping = True
        self.flight.room.set()

    async def abandon(self) -> None:
        """Cancel the executions still running: not written, not committed (they are redelivered)."""
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def assigned(self, assigned: list[TopicPartition]) -> None:
        """Partitions assigned while the fetcher is paused are paused too."""
        if self.paused and assigned and self.consumer is not None:
            self.consumer.pause(*assigned)

    async def run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        flight = self.flight
        outcomes = self.outcomes
        parts = self.parts
        while not self.stopping:
            room = flight.bound - flight.count
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
            if self.stopping:  # stop() began while we waited: hand the records back
                for tp, records in data.items():
                    consumer.seek(tp, records[0].offset)
                return
            # In slices (one chunk each, in offset order, so commits stay ordered), giving the loop
            # back between them once the slice of loop time is used up (express.engine.runner).
            pace = Pace()
            outcomes.dispatching = True
            try:
                for tp, records in data.items():
                    part = None
                    lo, n = 0, len(records)
                    while lo < n:
                        hi = lo + pace.size
                        self.dispatch(tp, records if lo == 0 and hi >= n else records[lo:hi])
                        lo = hi
                        part = part or parts.get(tp)
                        if pace.checkpoint(time.monotonic()):
                            await give_back()
                            if self.stopping:  # the rest stays undispatched: never committed, redelivered
                                return
                            if parts.get(tp) is not part:  # revoked meanwhile: the new owner has the rest
                                break
            finally:
                outcomes.dispatching = False
            outcomes.wakeup.set()

    async def _wait_for_room(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        flight = self.flight
        self.paused = True
        self.pauses += 1
        flight.room.clear()
        assignment = list(consumer.assignment())
        if assignment:
            consumer.pause(*assignment)
        self.outcomes.flush_soon()
        try:
            while not self.stopping and flight.count > flight.resume_below:
                try:
                    await asyncio.wait_for(flight.room.wait(), 1.0)
                except TimeoutError:
                    # keep the poll timer alive; paused partitions return nothing
                    data = await consumer.getmany(timeout_ms=0)
                    for tp, records in data.items():  # a partition assigned while paused: give them back
                        consumer.seek(tp, records[0].offset)
                        consumer.pause(tp)
        finally:
            self.paused = False
            assignment = list(consumer.assignment())
            if assignment:
                consumer.resume(*assignment)

    def dispatch(self, tp: TopicPartition, records: list[Any]) -> None:
        """Start (or dead-letter) every record of one slice: all of one partition, in offset order."""
        part = self.parts.get(tp)
        if part is None:
            part = self.offsets.adopt(tp)
        n = len(records)
        chunk = Chunk(n, records[-1].offset + 1)
        part.chunks.append(chunk)
        part.position = chunk.end
        self.flight.add(n)
        self.consumed += n
        self._m_consumed[part.topic] += n
        get_machine = self.registry.get
        header = self.header
        bound = part.machine
        bound_machine: Any = _UNSET  # the partition's machine, looked up once per slice
        max_payload = self.max_payload
        prefix = part.prefix
        outcome = self.outcomes.outcome
        dead_letter = self.outcomes.dead_letter
        last_machine: Any = None  # may_wait is a property: asked once per machine of the slice
        waits = False
        for rec in records:
            value = rec.value
            arn = None
            if rec.headers:
                machine_name = bound
                for hk, hv in rec.headers:
                    if hk == header:
                        machine_name = hv.decode("utf-8", "replace") if hv is not None else ""
                    elif hk == EXECUTION_HEADER and hv:  # StartExecution through Kafka: its name and ARN
                        arn = hv.decode("utf-8", "replace")
                machine = get_machine(machine_name)
            else:
                if bound_machine is _UNSET:
                    bound_machine = get_machine(bound)
                machine = bound_machine
                machine_name = bound
            if machine is None:
                dead_letter(part, rec, chunk, "unknown-machine", f"no state machine named {machine_name!r}")
                continue
            if value is None:
                dead_letter(part, rec, chunk, "not-json", "the record has no value")
                continue
            size = len(value)
            if size > max_payload:
                dead_letter(part, rec, chunk, "too-large",
                            f"the record value is {size} bytes, over the {max_payload}-byte limit")
                continue
            try:
                inp = _loads(value)
            except _JSONDecodeError as e:
                dead_letter(part, rec, chunk, *(decode_refusal(e, "the record value")
                                                or ("not-json", f"the record value is not JSON: {e}")))
                continue
            if suspect(value):  # nested deeper than can be written, or an integer orjson made a float
                refused = refusal(value, inp, "the record value")
                if refused is not None:
                    dead_letter(part, rec, chunk, *refused)
                    continue
            offset = rec.offset
            name = prefix + str(offset) if arn is None else execution_name(arn)
            if machine is not last_machine:
                last_machine = machine
                waits = machine.may_wait
            if waits:
                self._start_task(machine, inp, name, part, offset, rec.key, size, chunk, arn=arn)
                continue
            coro = machine.execute(inp, name, input_size=size, mode=MODE, arn=arn)
            try:
                yielded = coro.send(None)
            except StopIteration as done:
                outcome(part, offset, rec.key, machine, done.value, size, chunk)
            else:  # it gave the loop back (its slice was used up, see express.engine.runner): a task goes on
                if yielded is not None:  # suspended on a future, not at the engine's bare yield: start over
                    coro.close()
                    coro = None
                self._start_task(machine, inp, name, part, offset, rec.key, size, chunk, coro, arn)

    def _start_task(self, machine: Any, inp: Any, name: str, part: Part, offset: int, key: bytes | None,
                    size: int, chunk: Chunk, started: Any = None, arn: str | None = None) -> None:
        """Run the execution as a task; ``started``: its coroutine, already driven by hand up to a bare
        yield, where the task resumes it. What its outcome needs waits in ``_tasks`` (no closure per task)."""
        coro = started if started is not None else machine.execute(inp, name, input_size=size, mode=MODE, arn=arn)
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks[task] = (machine, name, part, offset, key, size, chunk)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        machine, name, part, offset, key, size, chunk = self._tasks.pop(task)
        if task.cancelled():
            return  # abandoned at shutdown: not written, not committed
        exc = task.exception()
        if exc is not None:  # the engine promises not to raise; never lose the record if it does
            from express.engine.machine import ExecutionResult

            now = time.time()
            result = ExecutionResult("FAILED", None, "States.Runtime",
                                     f"Internal error while executing: {type(exc).__name__}: {exc}",
                                     name, now, now, 0)
        else:
            result = task.result()
        outcomes = self.outcomes
        outcomes.outcome(part, offset, key, machine, result, size, chunk)
        outcomes.wakeup.set()

    def flush_metrics(self, m: Any) -> None:
        """Add what was counted since the last flush to ``m`` (:mod:`express.observe.metrics`)."""
        for topic, n in self._m_consumed.items():
            m.KAFKA_CONSUMED.labels(topic).inc(n)
        self._m_consumed.clear()
