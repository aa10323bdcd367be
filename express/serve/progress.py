"""``express serve``'s progress line: every ``[logging] progress_s`` seconds, executions/s by status
since the last line, in flight, Kafka consumer lag and dead-lettered records, from counters the
service keeps anyway (:data:`express.observe.metrics.RECORDER`, the Kafka worker's and the HTTP API's).

Nothing is computed between lines, and a line is written only when something happened since the
last one (or, idle, once a minute), so an idle service does not fill its log.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from express.serve.background import cancel_and_wait

IDLE_EVERY_S = 60.0
STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT")


class Snapshot:
    __slots__ = ("finished", "in_flight", "lag", "dlq")

    def __init__(self, finished: dict[str, int], in_flight: int, lag: int | None, dlq: int | None) -> None:
        self.finished = finished  # status -> executions finished so far (cumulative)
        self.in_flight = in_flight
        self.lag = lag  # records in assigned partitions not yet fetched; None without Kafka
        self.dlq = dlq  # records dead-lettered so far; None without Kafka


def _recorder() -> Any:
    try:
        from express.observe.metrics import RECORDER
    except ImportError:  # prometheus-client is optional
        return None
    return RECORDER


class ProgressReporter:
    """The service's progress task: ``start()`` / ``stop()`` (idempotent), owned by the service."""

    def __init__(self, interval_s: float, *, worker: Any = None, http: Any = None, metrics: bool = True,
                 log: Callable[..., None] | None = None) -> None:
        self.interval_s = interval_s
        self.worker = worker  # express.kafka.worker.KafkaWorker or None
        self.http = http  # express.http.server.HttpServer or None
        self.recorder = _recorder() if metrics else None
        if log is None:
            from express.observe.logs import emit

            log = emit
        self._log = log
        self._task: asyncio.Task[None] | None = None
        self._last: Snapshot | None = None
        self._last_at = 0.0
        self._written_at = 0.0

    def start(self) -> None:
        if self._task is None and self.interval_s > 0:
            self._last, self._last_at = None, time.monotonic()
            self._written_at = self._last_at
            self._task = asyncio.get_running_loop().create_task(self._run(), name="express-progress")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        self._last = await self.snapshot()
        while True:
            await asyncio.sleep(self.interval_s)
            await self.tick()

    async def tick(self) -> None:
        now = time.monotonic()
        snap = await self.snapshot()
        last = self._last if self._last is not None else Snapshot({}, 0, None, None)
        elapsed = max(now - self._last_at, 1e-9)
        self._last, self._last_at = snap, now
        delta = {s: snap.finished.get(s, 0) - last.finished.get(s, 0) for s in STATUSES}
        dlq_delta = (snap.dlq or 0) - (last.dlq or 0)
        busy = any(delta.values()) or snap.in_flight or dlq_delta or (snap.lag or 0) != (last.lag or 0)
        if not busy and now - self._written_at < IDLE_EVERY_S:
            return
        self._written_at = now
        self._log("progress", format_line(delta, elapsed, snap), event="progress",
                  interval_s=round(elapsed, 3),
                  per_s={s: round(n / elapsed, 1) for s, n in delta.items()},
                  finished=delta, in_flight=snap.in_flight, lag=snap.lag, dlq=snap.dlq, dlq_new=dlq_delta)

    async def snapshot(self) -> Snapshot:
        finished = dict.fromkeys(STATUSES, 0)
        in_flight = 0
        stats = self.worker.stats() if self.worker is not None else None
        series = getattr(self.recorder, "_series", None) if self.recorder is not None else None
        if series is not None:  # every execution of this process, whichever way it came
            for s in list(series.values()):
                finished["SUCCEEDED"] += s.succeeded
                finished["FAILED"] += s.failed
                finished["TIMED_OUT"] += s.timed_out
                in_flight += s.in_flight
        else:  # [metrics] enabled = false: what the Kafka worker and the HTTP API count themselves
            if stats is not None:
                finished["SUCCEEDED"] += stats["succeeded"]
                finished["FAILED"] += stats["failed"]
                in_flight += stats["in_flight"]
            api = getattr(self.http, "api", None)
            if api is not None:
                in_flight += api.sync_running + api.background
        return Snapshot(finished, in_flight, await self.lag(), None if stats is None else stats["dead_lettered"])

    async def lag(self) -> int | None:
        """Sum over this worker's partitions of high watermark minus position: cheap, both are known
        locally once a partition has been fetched (a partition not fetched yet does not count)."""
        consumer = getattr(self.worker, "_consumer", None)
        if consumer is None:
            return None
        total = 0
        for tp in list(consumer.assignment()):
            with contextlib.suppress(Exception):  # a partition revoked meanwhile: it is not ours to count
                high = consumer.highwater(tp)
                if high is not None:
                    total += max(0, high - await asyncio.wait_for(consumer.position(tp), 1.0))
        return total


def format_line(delta: dict[str, int], elapsed: float, snap: Snapshot) -> str:
    total = sum(delta.values())
    by_status = ", ".join(f"{s} {n / elapsed:.1f}/s" for s, n in delta.items() if n) or "none finished"
    parts = [f"{total / elapsed:.1f} executions/s ({by_status})", f"in flight {snap.in_flight}"]
    if snap.lag is not None:
        parts.append(f"Kafka lag {snap.lag}")
    if snap.dlq is not None:
        parts.append(f"DLQ {snap.dlq}")
    return ", ".join(parts)
