"""The Map state: inline and Distributed Map iterations, ItemSelector, MaxConcurrency and tolerated
failures, and a Distributed Map's Map Run (items an ItemReader reads, ItemBatcher, ResultWriter)."""
from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, ExecutionTimedOut
from express.asl.timestamps import format_timestamp
from express.asl.uuids import uuid4
from express.engine.branches import (
    _size,
    inner_frame,
    list_size,
    paced,
    run_concurrently,
)
from express.engine.dataflow import (
    Dataflow,
    payload_size,
    too_large,
)
from express.engine.frame import Frame
from express.engine.runner import (
    FIRST_RUNS,
    TURNS,
    Block,
    Pace,
    Suspended,
    check_deadline,
    give_back,
)
from express.engine.states import (
    Catcher,
    RecoverableState,
    Retrier,
)
from express.engine.tasks import ResultSink

# A Map Run's child executions in flight at once when MaxConcurrency is 0 (AWS allows 10,000;
# here each is a coroutine of this process, and the reader is paced by their completion).
MAP_RUN_CONCURRENCY = 1000
MAX_ITEMS_PER_RUN = 100_000_000  # AWS's bound on the items of one Map Run (ReaderConfig.MaxItems)
MAX_BATCH_BYTES = 256 * 1024  # AWS's bound on ItemBatcher's MaxInputBytesPerBatch: a child's input


@dataclass(frozen=True, slots=True)
class Batching:
    """ItemBatcher, evaluated for one Map Run: limits per batch (None: none) and BatchInput."""

    max_items: int | None
    max_bytes: int | None
    batch_input: Any
    has_batch_input: bool


@dataclass(frozen=True, slots=True)
class MapRun:
    """What makes a Distributed Map a Map Run here, compiled: ``reader(eff, frame, states)`` the
    items of its ItemReader (else the state's own items), ``batcher`` its ItemBatcher,
    ``writer(eff, frame, states, map_run_arn)`` its ResultWriter's sink, ``transformation`` its
    WriterConfig's (COMPACT, the default, FLATTEN or NONE)."""

    reader: Callable[[Any, Frame, Any], AsyncIterator[Any]] | None
    batcher: Callable[[Any, Frame, Any], Batching] | None
    writer: Callable[[Any, Frame, Any, str], ResultSink] | None
    transformation: str
    label: str | None
    express_children: bool


class _Stop(Exception):
    """A child's failure ended the Map Run: cancels the other children (carries the ASL error)."""

    def __init__(self, error: ASLError) -> None:
        super().__init__(error)
        self.error = error


class MapState(RecoverableState):
    attempt_events = 0

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 retriers: list[Retrier], catchers: list[Catcher], processor: Block,
                 items: Callable[[Any, Frame, Any], Any],
                 item_selector: Callable[[Any, Frame, Any], Any] | None,
                 max_concurrency: Callable[[Any, Frame, Any], int],
                 tolerated: Callable[[Any, Frame, Any], tuple[float | None, int | None]],
                 run: MapRun | None = None,
                 ) -> None:
        super().__init__(name, spec, flow, retriers, catchers)
        self.processor = processor
        self.items = items
        self.item_selector = item_selector
        self.max_concurrency = max_concurrency
        self.tolerated = tolerated
        self.run = run
        proc = spec.get("ItemProcessor") or {}
        self.distributed = isinstance(proc, dict) and (proc.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"

    async def attempt(self, frame: Frame, raw: Any, entered: int) -> Any:
        if self.run is not None:
            return await self._map_run(frame, raw)
        flow = self.flow
        ex = frame.execution
        ex.event_id += 1  # MapStateStarted
        ex.parallel_steps += 1
        states = None
        if flow.jsonata:
            states = flow.states_binding(raw, frame)
            eff = raw
        else:
            eff = raw if flow.input_path is None else flow.input_path(raw, frame)
        items = self.items(eff, frame, states)
        limit = self.max_concurrency(eff, frame, states)
        pct, count = self.tolerated(eff, frame, states)
        # Items are parts of the state's input, so its size bounds theirs; selected items are new data.
        selector = self.item_selector
        item_size = frame.size if selector is None else -1
        left, pace = FIRST_RUNS, None
        if selector is None:
            inputs = list(items)
        else:
            inputs = []
            for i, item in enumerate(items):
                sel_frame = Frame(ex, frame.vars, {"Index": i, "Value": item})
                sel_frame.state_name = frame.state_name
                sel_frame.entered_at = frame.entered_at
                sel_frame.retry_count = frame.retry_count
                inputs.append(selector(eff, sel_frame, states))
                left -= 1
                if not left:
                    pace = pace or Pace(FIRST_RUNS)
                    left = await paced(ex, pace)
        processor = self.processor
        known = -1  # a bound of the results' size, when the iterations' bounds give one
        if ex.log is not None:
            ex.log.add("MapStateStarted", {"length": len(inputs)})
            results = await self._logged_iterations(frame, inputs, limit, pct, count, item_size)
        elif pct is None and count is None:
            if not processor.is_async:
                results = []
                # nothing in the iterations writes variables: they can share one scope
                shared = None if processor.assigns else inner_frame(frame, 0, self.distributed)
                lo, n, batch = 0, len(inputs), left
                total = biggest = 0  # the iterations' size bounds: what bounds the results' size
                while lo < n:
                    for v in inputs if lo == 0 and batch >= n else inputs[lo:lo + batch]:
                        ex.event_id += 1  # MapIterationStarted
                        if shared is None:
                            scope = inner_frame(frame, _size(v, item_size), self.distributed)
                        else:
                            scope = shared
                            shared.size = item_size if item_size >= 0 else payload_size(v)
                        try:
                            results.append(processor.run_sync(scope, v))
                        except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                            results.append(await processor.resume(scope, s))
                        ex.event_id += 1  # MapIterationSucceeded
                        total += scope.size
                        if scope.size > biggest:
                            biggest = scope.size
                    lo += batch
                    if lo < n:
                        pace = pace or Pace(batch)
                        batch = await paced(ex, pace)
                if flow.result_selector is None:
                    known = list_size(results, total, biggest, self.result_depth)
            else:
                jobs: list[Callable[[], Any]] = [functools.partial(self._iteration, frame, v, item_size) for v in inputs]
                results = await run_concurrently(jobs, min(limit, 40) if limit else 40)
        else:
            results = await self._tolerant(frame, inputs, limit, pct, count, item_size)
        ex.event_id += 1  # MapStateSucceeded
        if ex.log is not None:
            ex.log.add("MapStateSucceeded", {})
        if not flow.jsonata and flow.result_selector is not None:
            results = flow.result_selector(results, frame)
        return self.finish(frame, raw, results, results, known)

    async def _logged_iterations(self, frame: Frame, inputs: list[Any], limit: int, pct: float | None,
                                 count: int | None, item_size: int) -> list[Any]:
        log = frame.execution.log

        async def one(index: int, value: Any) -> Any:
            log.add("MapIterationStarted", {"index": index, "name": self.name})
            try:
                out = await self._iteration(frame, value, item_size)
            except ASLError as e:
                log.add("MapIterationFailed", {"index": index, "name": self.name, "error": e.error,
                                               "cause": e.cause})
                raise
            log.add("MapIterationSucceeded", {"index": index, "name": self.name})
            return out

        if pct is not None or count is not None:
            return await self._tolerant(frame, inputs, limit, pct, count, item_size)
        jobs: list[Callable[[], Any]] = [functools.partial(one, i, v) for i, v in enumerate(inputs)]
        return await run_concurrently(jobs, min(limit, 40) if limit else 40)

    async def _iteration(self, frame: Frame, value: Any, size: int) -> Any:
        ex = frame.execution
        # Iterations run as tasks, many ready at once: each starts within the slice or waits its turn.
        now = check_deadline(ex)
        if now >= TURNS.until and TURNS.must_wait(now):
            await give_back(ex)
        ex.event_id += 1
        processor = self.processor
        scope = inner_frame(frame, _size(value, size), self.distributed)
        if processor.is_async:
            out = await processor.run(scope, value)
        else:
            try:
                out = processor.run_sync(scope, value)
            except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                out = await processor.resume(scope, s)
        ex.event_id += 1
        return out

    async def _tolerant(self, frame: Frame, inputs: list[Any], limit: int,
                        pct: float | None, count: int | None, item_size: int) -> list[Any]:
        failures = 0
        results: list[Any] = [None] * len(inputs)
        last: ASLError | None = None

        def exceeded() -> bool:
            if count is not None and failures > count:
                return True
            if pct is not None and inputs and failures * 100.0 / len(inputs) > pct:
                return True
            return False

        for i, v in enumerate(inputs):
            try:
                results[i] = await self._iteration(frame, v, item_size)
            except ASLError as e:
                failures += 1
                last = e
                results[i] = None
                if exceeded():
                    break
        if failures and exceeded():
            raise ASLError(
                errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                "The specified tolerated failure threshold was exceeded",
                located=True,
            )
        del last
        return results

    # ------------------------------------------------------------------ Map Run
    async def _map_run(self, frame: Frame, raw: Any) -> Any:
        """A Distributed Map that reads its items with an ItemReader, batches them or writes its
        results: its child executions run (at most MaxConcurrency at once) while the items are read."""
        run = self.run
        assert run is not None
        flow = self.flow
        ex = frame.execution
        ex.event_id += 1  # MapStateStarted
        ex.parallel_steps += 1
        if flow.jsonata:
            states = flow.states_binding(raw, frame)
            eff = raw
        else:
            states = None
            eff = raw if flow.input_path is None else flow.input_path(raw, frame)
        limit = self.max_concurrency(eff, frame, states)
        pct, count = self.tolerated(eff, frame, states)
        batching = run.batcher(eff, frame, states) if run.batcher is not None else None
        r = _Run(self, frame, run, pct, count)
        r.sink = run.writer(eff, frame, states, r.arn) if run.writer is not None else None
        if ex.log is not None:
            ex.log.add("MapStateStarted", {"length": 0})
            ex.log.add("MapRunStarted", {"mapRunArn": r.arn})
        ex.event_id += 1  # MapRunStarted
        error: ASLError | None = None
        try:
            source = (run.reader(eff, frame, states) if run.reader is not None
                      else _iterate(self.items(eff, frame, states)))
            await self._feed(r, frame, eff, states, source, batching,
                             min(limit, MAP_RUN_CONCURRENCY) if limit else MAP_RUN_CONCURRENCY)
        except ASLError as e:
            error = e
        details = None
        if r.sink is not None:
            try:
                details = await r.sink.finish()
            except ASLError as e:
                error = error or e
        ex.event_id += 2  # MapRunSucceeded/Failed, MapStateSucceeded/Failed
        if error is not None:
            if ex.log is not None:
                ex.log.add("MapRunFailed", {"error": error.error, "cause": error.cause})
            raise error
        if ex.log is not None:
            ex.log.add("MapRunSucceeded", {})
            ex.log.add("MapStateSucceeded", {})
        result: Any
        if details is not None:
            result = {"MapRunArn": r.arn, "ResultWriterDetails": details}
        else:
            result = r.results()
        if not flow.jsonata and flow.result_selector is not None:
            result = flow.result_selector(result, frame)
        return self.finish(frame, raw, result, result)

    async def _feed(self, r: _Run, frame: Frame, eff: Any, states: Any, source: AsyncIterator[Any],
                    batching: Batching | None, concurrency: int) -> None:
        """Read the child inputs and start a child execution for each, never more than
        ``concurrency`` in flight (reading waits for a free slot)."""
        ex = frame.execution
        slots = asyncio.Semaphore(concurrency)
        left, pace = FIRST_RUNS, None
        try:
            async with asyncio.TaskGroup() as tg:
                index = 0
                async with _closing(self._child_inputs(frame, eff, states, source, batching)) as inputs:
                    async for value in inputs:
                        await slots.acquire()
                        tg.create_task(self._child(r, index, value, slots))
                        index += 1
                        left -= 1
                        if not left:
                            pace = pace or Pace(FIRST_RUNS)
                            left = await paced(ex, pace)
                r.total = index
                if r.failures and r.exceeded():
                    raise _Stop(r.threshold_error(None))
        except BaseExceptionGroup as group:
            for exc in group.exceptions:
                if isinstance(exc, ExecutionTimedOut):
                    raise exc from None
            for exc in group.exceptions:
                if isinstance(exc, _Stop):
                    raise exc.error from None
                if isinstance(exc, ASLError):
                    raise exc from None
            raise group.exceptions[0] from None

    async def _child_inputs(self, frame: Frame, eff: Any, states: Any, source: AsyncIterator[Any],
                            batching: Batching | None) -> AsyncIterator[Any]:
        """The items, through ItemSelector, grouped by ItemBatcher: the child executions' inputs."""
        ex = frame.execution
        selector = self.item_selector
        batch: list[Any] = []
        # the bytes of the batch's child input: {"BatchInput": ..., "Items": [...]} (MaxInputBytesPerBatch)
        empty = payload_size(_batch([], batching)) if batching is not None else 0
        batch_bytes = empty
        index = 0
        async with _closing(source) as items:
            async for item in items:
                if selector is not None:
                    sel_frame = Frame(ex, frame.vars, {"Index": index, "Value": item})
                    sel_frame.state_name = frame.state_name
                    sel_frame.entered_at = frame.entered_at
                    sel_frame.retry_count = frame.retry_count
                    item = selector(eff, sel_frame, states)
                index += 1
                if batching is None:
                    yield item
                    continue
                size = payload_size(item)
                grown = batch_bytes + size + (1 if batch else 0)
                if batch and ((batching.max_items is not None and len(batch) >= batching.max_items)
                              or (batching.max_bytes is not None and grown > batching.max_bytes)):
                    yield _batch(batch, batching)
                    batch, grown = [], empty + size
                batch.append(item)
                batch_bytes = grown
        if batch:
            assert batching is not None  # only batching gathers items
            yield _batch(batch, batching)

    async def _child(self, r: _Run, index: int, value: Any, slots: asyncio.Semaphore) -> None:
        try:
            ex = r.frame.execution
            started = ex.clock.now()
            size = payload_size(value)
            try:
                if size > ex.limit:
                    raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                                   f"The input of the child workflow execution of item {index} is {size} bytes, "
                                   f"more than the {ex.limit} bytes an execution's input may be", located=True)
                out = await self._iteration(r.frame, value, size)
            except ASLError as e:
                await r.failed(index, value, e, started)
            else:
                await r.succeeded(index, value, out, started)
        finally:
            slots.release()


def _batch(items: list[Any], batching: Batching) -> dict[str, Any]:
    """A child input of ItemBatcher: ``{"BatchInput": ..., "Items": [...]}``."""
    if batching.has_batch_input:
        return {"BatchInput": batching.batch_input, "Items": items}
    return {"Items": items}


async def _iterate(items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


@contextlib.asynccontextmanager
async def _closing(it: AsyncIterator[Any]) -> AsyncIterator[AsyncIterator[Any]]:
    """Close an async generator when the Map Run is done with it (its S3 stream with it)."""
    try:
        yield it
    finally:
        close = getattr(it, "aclose", None)
        if close is not None:
            await close()


class _Run:
    """One Map Run in progress: its ARN, its children's outcomes, its tolerated failures."""

    __slots__ = ("state", "frame", "run", "pct", "count", "arn", "sink", "total", "failures",
                 "slots", "out_bytes", "records", "child_prefix", "machine")

    def __init__(self, state: MapState, frame: Frame, run: MapRun, pct: float | None, count: int | None) -> None:
        self.state = state
        self.frame = frame
        self.run = run
        self.pct = pct
        self.count = count
        run_id = uuid4()
        label = run.label or state.name
        machine_arn = frame.execution.machine_arn
        self.arn = f"{machine_arn.replace(':stateMachine:', ':mapRun:', 1)}/{label}:{run_id}"
        self.machine = f"{machine_arn}/{label}"
        if run.express_children:
            self.child_prefix = f"{machine_arn.replace(':stateMachine:', ':express:', 1)}/{label}:{run_id}"
        else:
            self.child_prefix = f"{machine_arn.replace(':stateMachine:', ':execution:', 1)}/{label}"
        self.sink: ResultSink | None = None
        self.total: int | None = None  # known once every item is read
        self.failures = 0
        self.slots: dict[int, Any] = {}  # index -> result, for the state's output
        self.out_bytes = 2
        self.records = run.transformation == "NONE"

    def results(self) -> list[Any]:
        values = [self.slots[i] for i in range(len(self.slots))]
        if self.run.transformation != "FLATTEN":
            return values
        flat: list[Any] = []
        for v in values:
            if isinstance(v, list):
                flat.extend(v)
            else:
                flat.append(v)
        return flat

    def exceeded(self) -> bool:
        if self.pct is None and self.count is None:
            return True  # no failure is tolerated
        if self.count is not None and self.failures > self.count:
            return True
        total = self.total  # the percentage is of all the items: known once they are all read
        return self.pct is not None and total is not None and total > 0 and self.failures * 100.0 / total > self.pct

    def threshold_error(self, error: ASLError | None) -> ASLError:
        if self.pct is None and self.count is None and error is not None:
            return error  # as an inline Map's: the child's own failure
        return ASLError(errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                        "The specified tolerated failure threshold was exceeded", located=True)

    def record(self, status: str, value: Any, out: Any, error: ASLError | None, started: float) -> dict[str, Any]:
        """The child execution as ResultWriter writes it (Transformation NONE), as AWS does."""
        name = uuid4()
        rec: dict[str, Any] = {
            "ExecutionArn": f"{self.child_prefix}:{name}",
            "Input": orjson.dumps(value).decode(),
            "InputDetails": {"Included": True},
            "Name": name,
            "RedriveCount": 0,
            "StartDate": format_timestamp(started),
            "StateMachineArn": self.machine,
            "Status": status,
            "StopDate": format_timestamp(self.frame.execution.clock.now()),
        }
        if error is None:
            rec["Output"] = orjson.dumps(out).decode()
            rec["OutputDetails"] = {"Included": True}
            rec["RedriveStatus"] = "NOT_REDRIVABLE"
            rec["RedriveStatusReason"] = f"Execution is {status} and cannot be redriven"
        else:
            rec["Error"] = error.error
            rec["Cause"] = error.cause or ""
            rec["RedriveStatus"] = "REDRIVABLE_BY_MAP_RUN"
        return dict(sorted(rec.items()))

    def keep(self, index: int, value: Any) -> None:
        """A result of the state's own output: bounded by the payload limit as it grows."""
        self.out_bytes += payload_size(value) + 1
        if self.out_bytes > self.frame.execution.limit:
            raise _Stop(too_large(self.state.name))
        self.slots[index] = value

    async def succeeded(self, index: int, value: Any, out: Any, started: float) -> None:
        transformation = self.run.transformation
        sink = self.sink
        if sink is None:
            self.keep(index, self.record("SUCCEEDED", value, out, None, started) if self.records else out)
        elif self.records:
            await sink.add("SUCCEEDED", self.record("SUCCEEDED", value, out, None, started))
        elif transformation == "FLATTEN" and isinstance(out, list):
            for v in out:
                await sink.add("SUCCEEDED", v)
        else:
            await sink.add("SUCCEEDED", out)

    async def failed(self, index: int, value: Any, error: ASLError, started: float) -> None:
        self.failures += 1
        sink = self.sink
        if sink is not None:
            await sink.add("FAILED", self.record("FAILED", value, None, error, started))
        else:
            self.keep(index, self.record("FAILED", value, None, error, started) if self.records else None)
        if self.exceeded():
            raise _Stop(self.threshold_error(error))
