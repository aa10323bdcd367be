"""The Parallel state and what it shares with Map: the scope of a branch or iteration, pacing batches
of synchronous runs between loop slices, and running coroutines concurrently under a bound."""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from express.asl.errors import ASLError, ExecutionTimedOut
from express.asl.limits import MAX_DEPTH
from express.engine.dataflow import (
    Dataflow,
    payload_size,
)
from express.engine.frame import Frame
from express.engine.runner import (
    FIRST_RUNS,
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


class ParallelState(RecoverableState):
    attempt_events = 0

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 retriers: list[Retrier], catchers: list[Catcher], branches: list[Block]) -> None:
        super().__init__(name, spec, flow, retriers, catchers)
        self.branches = branches
        self.inner_async = any(b.is_async for b in branches)

    async def attempt(self, frame: Frame, raw: Any, entered: int) -> Any:
        flow = self.flow
        ex = frame.execution
        ex.event_id += 1  # ParallelStateStarted
        ex.parallel_steps += 1
        if ex.log is not None:
            ex.log.add("ParallelStateStarted", {})
        if flow.jsonata:
            states = flow.states_binding(raw, frame)
            eff = flow.arguments(states, frame) if flow.arguments is not None else raw
        else:
            eff = flow.effective_input(raw, frame)
        size = frame.size if eff is raw else payload_size(eff)
        known = -1  # a bound of the results' size, when the branches' bounds give one
        if not self.inner_async:
            results = []
            left, pace = FIRST_RUNS, None
            total = biggest = 0
            for b in self.branches:
                scope = inner_frame(frame, size)
                try:
                    results.append(b.run_sync(scope, eff))
                except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                    results.append(await b.resume(scope, s))
                total += scope.size
                if scope.size > biggest:
                    biggest = scope.size
                left -= 1
                if not left:
                    pace = pace or Pace(FIRST_RUNS)
                    left = await paced(ex, pace)
            if flow.result_selector is None:
                known = list_size(results, total, biggest, self.result_depth)
        else:
            jobs: list[Callable[[], Any]] = [
                functools.partial(b.run, inner_frame(frame, size), eff) for b in self.branches]
            results = await run_concurrently(jobs, 0)
        ex.event_id += 1  # ParallelStateSucceeded
        if ex.log is not None:
            ex.log.add("ParallelStateSucceeded", {})
        if not flow.jsonata and flow.result_selector is not None:
            results = flow.result_selector(results, frame)
        return self.finish(frame, raw, results, results, known)


async def paced(ex: Any, pace: Pace) -> int:
    """A checkpoint between two batches of synchronous runs (branches, iterations): enforces the
    deadline, gives the loop back if the slice is used up; returns the next batch's size."""
    if pace.checkpoint(check_deadline(ex)):
        await give_back(ex)
    return pace.size


def inner_frame(frame: Frame, size: int, isolated: bool = False) -> Frame:
    """A Parallel branch's or Map iteration's scope: it reads the outer variables (a copy, so its
    own assignments stay inside), unless ``isolated`` (Distributed Map)."""
    if isolated:
        return Frame(frame.execution, {}, None, size)
    inner = Frame(frame.execution, dict(frame.vars), None, size)
    inner.var_bytes = frame.var_bytes
    return inner


def list_size(results: list[Any], total: int, biggest: int, depth: int) -> int:
    """A bound of the JSON size of ``results`` from their own bounds (``total``, the largest
    ``biggest``), if it also shows they nest shallowly enough to be written ``depth`` levels down
    in a list (a value nested d levels deep takes at least 2*d bytes); -1 otherwise."""
    if biggest >= 2 * (MAX_DEPTH - depth - 1):
        return -1
    return total + max(len(results), 1) + 1  # brackets and commas


def _size(value: Any, known: int) -> int:
    """The size bound of an iteration's input: the parent's (``known``), or measured (-1)."""
    return known if known >= 0 else payload_size(value)


async def run_concurrently(jobs: list[Callable[[], Any]], limit: int) -> list[Any]:
    """Run coroutine factories concurrently (at most ``limit`` at once, 0 = all); results in
    order. The first failure cancels the rest and is raised as itself."""
    if limit == 1:
        return [await job() for job in jobs]
    results: list[Any] = [None] * len(jobs)
    sem = asyncio.Semaphore(limit) if 0 < limit < len(jobs) else None

    async def one(i: int, job: Callable[[], Any]) -> None:
        if sem is None:
            results[i] = await job()
        else:
            async with sem:
                results[i] = await job()

    try:
        async with asyncio.TaskGroup() as tg:
            for i, job in enumerate(jobs):
                tg.create_task(one(i, job))
    except BaseExceptionGroup as group:
        for exc in group.exceptions:
            if isinstance(exc, ExecutionTimedOut):
                raise exc from None
        for exc in group.exceptions:
            if isinstance(exc, ASLError):
                raise exc from None
        raise group.exceptions[0] from None
    return results
