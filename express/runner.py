"""The loop that walks compiled states, and the checkpoints that bound it.

A compiled state exposes ``step(frame, data) -> (next_state, data)`` when it never waits, or
``astep`` (a coroutine) when it may (Task, Wait, and Map/Parallel around such states). Sync states
run back to back without touching the event loop; every ``CHECK_EVERY`` transitions the runner
checks the execution deadline and, in async mode, yields so that one busy execution cannot
starve the others.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from express.errors import ExecutionTimedOut
from express.frame import Execution, Frame

CHECK_EVERY = 128


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
        state = self.start
        ex = frame.execution
        n = 0
        try:
            while state is not None:
                n += 1  # counted on entry: a state that fails was still entered
                state, data = state.step(frame, data)
                if n == CHECK_EVERY:
                    ex.transitions += n
                    n = 0
                    check_deadline(ex)
        finally:
            ex.transitions += n
        return data

    async def run(self, frame: Frame, data: Any) -> Any:
        state = self.start
        ex = frame.execution
        n = 0
        try:
            while state is not None:
                n += 1  # counted on entry: a state that fails was still entered
                if state.is_async:
                    state, data = await state.astep(frame, data)
                else:
                    state, data = state.step(frame, data)
                if n == CHECK_EVERY:
                    ex.transitions += n
                    n = 0
                    check_deadline(ex)
                    await asyncio.sleep(0)
        finally:
            ex.transitions += n
        return data


def check_deadline(ex: Execution) -> None:
    if ex.clock.now() >= ex.deadline or time.monotonic() >= ex.real_deadline:
        raise ExecutionTimedOut()


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
