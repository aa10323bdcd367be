"""The loop that walks compiled states, and the checkpoints that keep it from holding the event loop.

A compiled state exposes ``step(frame, data) -> (next_state, data)`` when it never waits, or
``astep`` (a coroutine) when it may (Task, Wait, and Map/Parallel around such states). Sync states
run back to back without touching the event loop: an execution of a few states finishes inline in
microseconds, and pays nothing for what follows.

A run that goes on reaches checkpoints: after ``FIRST_CHECK`` transitions, then in batches sized
so that one batch lasts about a quarter of a slice (between 1 and ``CHECK_EVERY`` transitions,
fewer the longer the states take). Each checkpoint enforces the execution's deadline and asks
:data:`TURNS` whether the slice of loop time (``SLICE_S``) is used up. Then the synchronous runner
stops (:class:`Suspended`, carrying the next state and its input) and its caller carries on with
:meth:`Block.resume` in the yielding runner, which gives the loop back at its own checkpoints.
Map and Parallel pace their loops over iterations and branches (:class:`Pace`) the same way.
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any

from express.asl.errors import ExecutionTimedOut
from express.engine.frame import Execution, Frame

SLICE_S = 0.002  # the longest stretch of synchronous work between two looks at the loop
CHECK_EVERY = 128  # most transitions (or Map items) between two checkpoints
FIRST_CHECK = 16  # the first checkpoint: most executions end before it
FIRST_RUNS = 64  # Map iterations or Parallel branches run before such a loop's first checkpoint
_BATCH_S = SLICE_S / 4  # what one batch between checkpoints should last


class Suspended(Exception):
    """``run_sync`` used up the slice: the run goes on from ``state`` with ``data`` (not entered
    yet) through :meth:`Block.resume`. Never escapes the caller of ``run_sync``."""

    def __init__(self, state: Any, data: Any, pace: Pace) -> None:
        super().__init__()
        self.state = state
        self.data = data
        self.pace = pace


class Turns(threading.local):
    """Who may run synchronous work on this thread's event loop, and until when.

    A slice ends at ``until``. A run past it may start a new slice only if none was started in
    this iteration of the loop and nobody waits; otherwise it gives the loop back and, if others
    wait, queues (first come, first served). Each loop iteration wakes one waiter, which gets a
    fresh slice: the loop polls I/O between slices however many executions are busy."""

    def __init__(self) -> None:
        self.until = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.granted = False  # a slice was started in this iteration of the loop
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self.calling = False  # a call of _wake_next is scheduled

    def must_wait(self, now: float) -> bool:
        """Past ``until``: True if the caller must give the loop back, False after starting a new
        slice for it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a coroutine driven by hand outside any loop: nobody to give it to
            return False
        if loop is not self.loop:
            self._use(loop)
        if self.granted or self.waiting:
            return True
        self._grant(loop, now)
        return False

    async def wait(self, ex: Execution | None) -> None:
        """Queue for a slice; raises ExecutionTimedOut if ``ex``'s deadline passes meanwhile."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:
            self._use(loop)
        fut: asyncio.Future[None] = loop.create_future()
        self.waiting.append(fut)
        if not self.calling:
            self.calling = True
            loop.call_soon(self._wake_next)
        timer = None if ex is None else loop.call_later(max(0.0, ex.real_deadline - time.monotonic()), _expire, fut)
        try:
            await fut
            await asyncio.sleep(0)  # behind the I/O callbacks of this loop iteration (see give_back)
        finally:
            if timer is not None:
                timer.cancel()
        self._grant(loop, time.monotonic())

    def _use(self, loop: asyncio.AbstractEventLoop) -> None:
        # A new loop on this thread (tests run one loop after another): nothing of the old one counts.
        self.loop = loop
        self.until = 0.0
        self.granted = False
        self.waiting = collections.deque()
        self.calling = False

    def _grant(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        self.until = now + SLICE_S
        if not self.granted:
            self.granted = True
            loop.call_soon(self._new_iteration)  # runs in the next iteration of the loop

    def _new_iteration(self) -> None:
        self.granted = False

    def _wake_next(self) -> None:
        self.calling = False
        waiting = self.waiting
        while waiting:
            fut = waiting.popleft()
            if not fut.done():  # a cancelled or timed-out waiter is skipped
                fut.set_result(None)
                break
        if waiting and self.loop is not None:
            self.calling = True
            self.loop.call_soon(self._wake_next)


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(ExecutionTimedOut())


TURNS = Turns()


class Pace:
    """The checkpoints of one loop of synchronous work units (transitions, Map items, Kafka
    records): ``size`` units per batch, adapted to how long the units take."""

    __slots__ = ("size", "since")

    def __init__(self, size: int = FIRST_CHECK) -> None:
        self.size = size
        self.since = 0.0  # when the current batch began (0: at the start of the slice, or before)

    def checkpoint(self, now: float) -> bool:
        """Between two batches: True if the caller must give the loop back (``give_back``) first."""
        turns = TURNS
        if now >= turns.until and turns.must_wait(now):
            self.since = 0.0
            return True
        spent = now - (self.since or turns.until - SLICE_S)
        size = self.size
        if spent <= 0.0:
            self.size = min(2 * size, CHECK_EVERY)
        else:
            self.size = max(1, min(2 * size, CHECK_EVERY, int(size * _BATCH_S / spent)))
        self.since = now
        return False


async def give_back(ex: Execution | None = None) -> None:
    """The slice is used up: let the loop run, then go on in a new slice, in turn with the other
    runs waiting for one. The first suspension is a bare yield (``asyncio.sleep(0)``): a caller
    driving the coroutine by hand may hand it to a Task there."""
    # One bare yield resumes the run at the head of the next loop iteration, before the callbacks
    # of the I/O that arrived during the slice; a second one puts it behind them.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    now = time.monotonic()
    turns = TURNS
    if now >= turns.until and turns.must_wait(now):
        await turns.wait(ex)


class Block:
    """One ``{StartAt, States}`` scope: the machine itself, a Parallel branch or a Map processor."""

    __slots__ = ("start", "states", "is_async", "assigns")

    def __init__(self) -> None:
        self.start: Any = None
        self.states: dict[str, Any] = {}
        self.is_async = False
        # Does any state of this scope assign variables? If not, its runs may share one Frame.
        self.assigns = True

    def run_sync(self, frame: Frame, data: Any) -> Any:
        """Run to the end without yielding, or raise Suspended when the slice is used up (the
        caller then awaits ``resume``)."""
        state = self.start
        ex = frame.execution
        n = 0
        limit = FIRST_CHECK
        pace = None
        try:
            while state is not None:
                n += 1  # counted on entry: a state that fails was still entered
                state, data = state.step(frame, data)
                if n == limit:
                    ex.transitions += n
                    n = 0
                    now = check_deadline(ex)
                    if pace is None:
                        pace = Pace(limit)
                    if pace.checkpoint(now) and state is not None:
                        raise Suspended(state, data, pace)
                    limit = pace.size
        finally:
            ex.transitions += n
        return data

    async def resume(self, frame: Frame, suspended: Suspended) -> Any:
        """Carry on a run that ``run_sync`` suspended, in the yielding runner."""
        await give_back(frame.execution)
        return await self.run(frame, suspended.data, suspended.state, suspended.pace)

    async def run(self, frame: Frame, data: Any, state: Any = None, pace: Pace | None = None) -> Any:
        """Run to the end, giving the loop back whenever the slice is used up (from ``state``,
        not entered yet, when given: the start state otherwise)."""
        if state is None:
            state = self.start
        ex = frame.execution
        n = 0
        limit = FIRST_CHECK if pace is None else pace.size
        try:
            while state is not None:
                n += 1  # counted on entry: a state that fails was still entered
                if state.is_async:
                    state, data = await state.astep(frame, data)
                else:
                    state, data = state.step(frame, data)
                if n == limit:
                    ex.transitions += n
                    n = 0
                    now = check_deadline(ex)
                    if pace is None:
                        pace = Pace(limit)
                    if pace.checkpoint(now) and state is not None:
                        await give_back(ex)
                    limit = pace.size
        finally:
            ex.transitions += n
        return data


def check_deadline(ex: Execution) -> float:
    """Raise ExecutionTimedOut past the execution's deadline; returns the monotonic time."""
    now = time.monotonic()
    if now >= ex.real_deadline or ex.clock.now() >= ex.deadline:
        raise ExecutionTimedOut()
    return now


async def sleep_within_deadline(ex: Execution, seconds: float) -> None:
    """Sleep on the execution's clock, but never past its deadline (then it times out)."""
    clock = ex.clock
    remaining = ex.deadline - clock.now()
    if seconds >= remaining:
        await clock.sleep(max(0.0, remaining))
        raise ExecutionTimedOut()
    await clock.sleep(seconds)
    if time.monotonic() >= ex.real_deadline:
        raise ExecutionTimedOut()
