"""Live counters per machine for the console, from the same data as ``/metrics``.

:class:`LiveCounters` flushes :data:`express.observe.metrics.RECORDER` and reads the ``express_executions``
and ``express_execution_duration_seconds`` families from :data:`express.observe.metrics.REGISTRY` (or
the multi-process collector, as ``/metrics`` does). It keeps earlier snapshots of the totals to
turn them into rates and a recent p99 over a sliding window: nothing is computed unless the
console asks.
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

WINDOW_S = 10.0


class _Totals:
    __slots__ = ("finished", "failed", "buckets")

    def __init__(self) -> None:
        self.finished = 0.0
        self.failed = 0.0
        self.buckets: dict[float, float] = {}  # upper bound -> cumulative count, summed over modes


def flush_metrics() -> None:
    """This process's pending counts into the metrics (and so into the multi-process files that
    another worker reads the totals of all workers from)."""
    try:
        import prometheus_client  # noqa: F401

        from express.observe.metrics import RECORDER
    except ImportError:
        return
    RECORDER.flush()


def read_totals() -> dict[str, _Totals] | None:
    """Totals per machine from the metrics registry; ``None`` without prometheus-client."""
    try:
        from prometheus_client import CollectorRegistry

        from express.observe.metrics import RECORDER, REGISTRY, multiprocess_dir
    except ImportError:
        return None
    RECORDER.flush()
    registry: Any = REGISTRY
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    totals: dict[str, _Totals] = {}
    for family in registry.collect():
        if family.name == "express_executions":
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                t = totals.setdefault(sample.labels.get("machine", ""), _Totals())
                t.finished += sample.value
                if sample.labels.get("status") != "SUCCEEDED":
                    t.failed += sample.value
        elif family.name == "express_execution_duration_seconds":
            for sample in family.samples:
                if not sample.name.endswith("_bucket"):
                    continue
                t = totals.setdefault(sample.labels.get("machine", ""), _Totals())
                le = float(sample.labels.get("le", "+Inf"))
                t.buckets[le] = t.buckets.get(le, 0.0) + sample.value
    return totals


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """``histogram_quantile``: q-quantile from cumulative bucket counts, interpolating linearly."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


class LiveCounters:
    """``snapshot()`` -> per machine: totals, executions/s and failures/s over the last
    ``window_s`` seconds (since the oldest snapshot in the window), p99 duration over that
    window and since start."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._snapshots: deque[tuple[float, dict[str, _Totals]]] = deque()

    def snapshot(self) -> dict[str, Any]:
        totals = read_totals()
        if totals is None:
            return {"enabled": False, "machines": {}}
        now = self.clock()
        snaps = self._snapshots
        # the base: the newest snapshot at least window_s old, else the oldest one there is
        while len(snaps) >= 2 and snaps[1][0] <= now - self.window_s:
            snaps.popleft()
        base = snaps[0] if snaps else None
        if not snaps or now - snaps[-1][0] >= 0.25:
            snaps.append((now, totals))
        elapsed = now - base[0] if base is not None else 0.0
        machines: dict[str, Any] = {}
        for name, t in totals.items():
            before = base[1].get(name) if base is not None else None
            entry: dict[str, Any] = {
                "executions": t.finished,
                "failures": t.failed,
                "p99_s": quantile(0.99, t.buckets),
                "executions_per_s": None,
                "failures_per_s": None,
                "recent_p99_s": None,
            }
            if base is not None and elapsed > 0:
                b_finished = before.finished if before is not None else 0.0
                b_failed = before.failed if before is not None else 0.0
                entry["executions_per_s"] = (t.finished - b_finished) / elapsed
                entry["failures_per_s"] = (t.failed - b_failed) / elapsed
                delta = {le: n - (before.buckets.get(le, 0.0) if before is not None else 0.0)
                         for le, n in t.buckets.items()}
                entry["recent_p99_s"] = quantile(0.99, delta)
            machines[name] = entry
        return {"enabled": True, "window_s": round(elapsed, 3), "machines": machines}
