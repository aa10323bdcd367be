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
