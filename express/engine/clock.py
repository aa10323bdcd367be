"""Clocks: the real one, and a virtual one on which Wait states and retry delays take no time.

The engine reads time and sleeps only through a clock, so a five-minute workflow runs in
milliseconds under :class:`VirtualClock` while its context-object timestamps still advance.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class RealClock:
    """Wall-clock time; sleeping yields to the event loop."""

    virtual = False

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """Discrete-event time: a sleeper parks until every runnable coroutine has had its turn, then
    time jumps to the earliest wake-up. Concurrent sleepers (Parallel branches, Map iterations)
    wake in order of their deadlines, as they would on a real clock."""

    virtual = True

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._advance_scheduled = False
        # Task functions awaiting real I/O: time jumps only after they had a real grace period,
        # so a short real call never loses to a (virtual) TimeoutSeconds it would have met.
        self._real_work = 0
        self._grace_since: float | None = None

    real_work_grace_s = 0.1

    def real_work(self) -> _RealWork:
        """Context manager around real work (an async task function) racing a virtual timer."""
        return _RealWork(self)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (tests), waking whoever is due."""
        self._now += max(0.0, seconds)
        self._wake_due()

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), fut))
        if not self._advance_scheduled:
            self._advance_scheduled = True
            loop.call_soon(self._settle, loop, 8)
        try:
            await fut
        except asyncio.CancelledError:
            fut.cancel()
            raise

    def _settle(self, loop: asyncio.AbstractEventLoop, rounds: int) -> None:
        # Let other ready coroutines run a few loop iterations (they may register earlier sleeps)
        # before jumping time forward.
        if rounds > 0:
            loop.call_soon(self._settle, loop, rounds - 1)
            return
        if self._real_work:
            t = time.monotonic()
            if self._grace_since is None:
                self._grace_since = t
            if t - self._grace_since < self.real_work_grace_s:
                loop.call_later(self.real_work_grace_s - (t - self._grace_since), self._settle, loop, 0)
                return
        self._grace_since = None
        self._advance_scheduled = False
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return
        self._now = max(self._now, self._sleepers[0][0])
        self._wake_due()
        if self._sleepers and not self._advance_scheduled:
            self._advance_scheduled = True
            loop.call_soon(self._settle, loop, 8)

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)



class _RealWork:
    __slots__ = ("clock",)

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    def __enter__(self) -> None:
        self.clock._real_work += 1

    def __exit__(self, *exc: object) -> None:
        self.clock._real_work -= 1
