"""Every Prometheus metric express exports, in one place. Labels are low-cardinality only
(machine, mode, status, error name, state type, topic, operation); never an execution id.

The hot path never touches prometheus_client: :class:`Recorder` aggregates per execution into
plain integers and bucket counts (a few hundred nanoseconds), and :meth:`Recorder.flush` moves
the deltas into the metrics below, on every scrape and once a second. With several worker
processes, set ``PROMETHEUS_MULTIPROC_DIR`` (the supervisor does) and every process's flushes
land in shared files, so a scrape of any worker shows the sum.
"""
from __future__ import annotations

import bisect
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 120.0, 300.0)

EXECUTIONS_STARTED = Counter(
    "express_executions_started", "Executions started", ["machine", "mode"], registry=REGISTRY)
EXECUTIONS_FINISHED = Counter(
    "express_executions", "Executions finished, by final status (SUCCEEDED, FAILED, TIMED_OUT)",
    ["machine", "mode", "status"], registry=REGISTRY)
EXECUTION_ERRORS = Counter(
    "express_execution_errors", "Failed or timed-out executions by ASL error name", ["machine", "error"],
    registry=REGISTRY)
EXECUTION_DURATION = Histogram(
    "express_execution_duration_seconds", "Execution duration", ["machine", "mode"],
    buckets=DURATION_BUCKETS, registry=REGISTRY)
STATE_TRANSITIONS = Counter(
    "express_state_transitions", "State transitions", ["machine"], registry=REGISTRY)
STATE_TRANSITIONS_BY_TYPE = Counter(
    "express_state_transitions_by_type", "State transitions by state type (machines with logging or "
    "metrics detail on)", ["machine", "state_type"], registry=REGISTRY)
TASK_DURATION = Histogram(
    "express_task_duration_seconds", "Task invocation duration", ["machine"],
    buckets=DURATION_BUCKETS, registry=REGISTRY)
RETRIES = Counter("express_retries", "Retries by ASL error name", ["machine", "error"], registry=REGISTRY)
CATCHES = Counter("express_catches", "Errors caught by a Catcher", ["machine", "error"], registry=REGISTRY)
IN_FLIGHT = Gauge(
    "express_in_flight_executions", "Executions currently running", ["mode"], registry=REGISTRY,
    multiprocess_mode="livesum")
BILLED_DURATION = Counter(
    "express_billed_duration_seconds", "Billed duration (Express rounding: 100 ms steps, at least 100 ms)",
    ["machine"], registry=REGISTRY)
BILLED_GB_SECONDS = Counter(
    "express_billed_gb_seconds", "Billed GB-seconds (billed duration x billed memory)", ["machine"],
    registry=REGISTRY)

KAFKA_CONSUMED = Counter(
    "express_kafka_records_consumed", "Kafka records consumed", ["topic"], registry=REGISTRY)
KAFKA_PRODUCED = Counter(
    "express_kafka_records_produced", "Kafka outcome records produced", ["topic", "kind"], registry=REGISTRY)
KAFKA_DLQ = Counter(
    "express_kafka_dlq_records", "Records sent to the dead-letter topic", ["topic", "reason"], registry=REGISTRY)
KAFKA_LAG = Gauge(
    "express_kafka_consumer_lag", "Records behind the end of the partition", ["topic", "partition"],
    registry=REGISTRY, multiprocess_mode="livesum")

HTTP_REQUESTS = Counter(
    "express_http_requests", "HTTP API requests by operation and HTTP status", ["operation", "status"],
    registry=REGISTRY)
HTTP_REQUEST_DURATION = Histogram(
    "express_http_request_duration_seconds", "HTTP API request duration", ["operation"],
    buckets=DURATION_BUCKETS, registry=REGISTRY)
LOG_RECORDS_DROPPED = Counter(
    "express_log_records_dropped", "Execution log or usage records dropped because a sink was full",
    ["sink"], registry=REGISTRY)

_N_BUCKETS = len(DURATION_BUCKETS)


class _Series:
    """Counts for one (machine, mode) since the last flush."""

    __slots__ = ("started", "succeeded", "failed", "timed_out", "transitions", "duration_sum", "buckets",
                 "billed_s", "gb_s", "errors")

    def __init__(self) -> None:
        self.started = 0
        self.succeeded = 0
        self.failed = 0
        self.timed_out = 0
        self.transitions = 0
        self.duration_sum = 0.0
        self.buckets = [0] * (_N_BUCKETS + 1)
        self.billed_s = 0.0
        self.gb_s = 0.0
        self.errors: dict[str, int] = {}


class Recorder:
    """Per-process aggregation of execution outcomes; cheap enough for every execution."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}
        self._in_flight: dict[str, int] = {}
        self._flushed_in_flight: dict[str, int] = {}
        self._events: dict[tuple[str, ...], float] = {}
        self._tasks: dict[str, tuple[list[int], list[float]]] = {}

    def _get(self, machine: str, mode: str) -> _Series:
        key = (machine, mode)
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = _Series()
        return s

    def started(self, machine: str, mode: str) -> None:
        self._get(machine, mode).started += 1
        self._in_flight[mode] = self._in_flight.get(mode, 0) + 1

    def finished(self, machine: str, mode: str, status: str, error: str | None, duration_s: float,
                 transitions: int, billed_ms: int, billed_mb: int) -> None:
        s = self._get(machine, mode)
        self._in_flight[mode] = self._in_flight.get(mode, 0) - 1
        if status == "SUCCEEDED":
            s.succeeded += 1
        else:
            if status == "FAILED":
                s.failed += 1
            else:
                s.timed_out += 1
            if error is not None:
                name = error[:64]
                s.errors[name] = s.errors.get(name, 0) + 1
        s.transitions += transitions
        s.duration_sum += duration_s
        s.buckets[bisect.bisect_left(DURATION_BUCKETS, duration_s)] += 1
        billed = billed_ms / 1000.0
        s.billed_s += billed
        s.gb_s += billed * billed_mb / 1024.0

    def event(self, metric: str, *labels: str, amount: float = 1.0) -> None:
        """Less frequent counters: ``retry``/``catch`` (machine, error), ``state`` (machine, type)."""
        key = (metric, *labels)
        self._events[key] = self._events.get(key, 0.0) + amount

    def task(self, machine: str, seconds: float) -> None:
        entry = self._tasks.get(machine)
        if entry is None:
            entry = self._tasks[machine] = ([0] * (_N_BUCKETS + 1), [0.0])
        entry[0][bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        entry[1][0] += seconds

    def flush(self) -> None:
        series, self._series = self._series, {}
        for (machine, mode), s in series.items():
            if s.started:
                EXECUTIONS_STARTED.labels(machine, mode).inc(s.started)
            for status, n in (("SUCCEEDED", s.succeeded), ("FAILED", s.failed), ("TIMED_OUT", s.timed_out)):
                if n:
                    EXECUTIONS_FINISHED.labels(machine, mode, status).inc(n)
            for error, n in s.errors.items():
                EXECUTION_ERRORS.labels(machine, error).inc(n)
            if s.transitions:
                STATE_TRANSITIONS.labels(machine).inc(s.transitions)
            if any(s.buckets):
                _histogram_add(EXECUTION_DURATION.labels(machine, mode), s.buckets, s.duration_sum)
                BILLED_DURATION.labels(machine).inc(s.billed_s)
                BILLED_GB_SECONDS.labels(machine).inc(s.gb_s)
        for mode, n in self._in_flight.items():
            if n != self._flushed_in_flight.get(mode):
                IN_FLIGHT.labels(mode).set(n)
                self._flushed_in_flight[mode] = n
        events, self._events = self._events, {}
        for (metric, *labels), amount in events.items():
            _EVENT_METRICS[metric].labels(*labels).inc(amount)
        tasks, self._tasks = self._tasks, {}
        for machine, (buckets, total) in tasks.items():
            _histogram_add(TASK_DURATION.labels(machine), buckets, total[0])


def _histogram_add(child: Any, buckets: list[int], total: float) -> None:
    """Add pre-bucketed observations to a prometheus Histogram child in one go."""
    # prometheus_client has no bulk API; its per-bucket values are the documented way to add counts.
    for i, n in enumerate(buckets):
        if n:
            child._buckets[i].inc(n)
    child._sum.inc(total)


_EVENT_METRICS: dict[str, Counter] = {"retry": RETRIES, "catch": CATCHES, "state": STATE_TRANSITIONS_BY_TYPE}
RECORDER = Recorder()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(extra: Iterable[Recorder] = ()) -> bytes:
    """The text exposition for /metrics: this process's counters flushed first; with several
    worker processes, the sum over all of them."""
    RECORDER.flush()
    for r in extra:
        r.flush()
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return bytes(generate_latest(registry))
    return bytes(generate_latest(REGISTRY))
