"""Group commit for the store's execution-name calls: every call made while the previous batch is being
written joins the next one, so N concurrent named executions cost one transaction (SQLite: one fsync)
or one script's round trip (Redis), not N. A lone call is written at once (no added latency)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Call = tuple[str, tuple[Any, ...]]  # (operation name, arguments)
MAX_BATCH = 512  # calls per batch: bounds one transaction's size and the latency of its last call


class Batcher:
    """``await batcher.call(op, *args)``: queued, then ``flush(calls)`` (one at a time) answers each call
    with its result or the exception to raise in its caller."""

    def __init__(self, flush: Callable[[list[Call]], Awaitable[list[Any]]]) -> None:
        self._flush = flush
        self._pending: list[tuple[Call, asyncio.Future[Any]]] = []
        self._running: asyncio.Task[None] | None = None

    async def call(self, op: str, *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(((op, args), future))
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    results = await self._flush([call for call, _ in batch])
                except BaseException as e:  # the whole batch failed: each caller gets the error
                    results = [e] * len(batch)
                    if isinstance(e, asyncio.CancelledError):
                        for _, future in batch + self._pending:
                            if not future.done():
                                future.cancel()
                        self._pending = []
                        raise
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._running = None

    async def aclose(self) -> None:
        """Wait for the batch being written (the store closes after it)."""
        task = self._running
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
