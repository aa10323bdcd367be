"""Every Prometheus metric express exports, in one place. Labels are low-cardinality only
(machine, mode, status, error name, state type, topic, operation); never an execution id.

The hot path never touches prometheus_client: :class:`Recorder` aggregates per execution into
plain integers and bucket counts (a few hundred nanoseconds), and :meth:`Recorder.flush` moves
the deltas into the metrics below, on every scrape and once a second. With several worker
processes, set ``PROMETHEUS_MULTIPROC_DIR`` (the supervisor does) and every process's flushes
land in shared files, so a scrape of any worker shows the sum.

Besides express's own metrics a scrape has ``express_build_info{version}``, the platform
collector's ``python_info`` and the process collector's ``process_*`` series. With several
workers, each worker's process figures are published (at most once a second, on a flush) into
the shared files with a ``worker`` label (the worker index), so one scrape shows every worker's
memory, CPU and start time (a restart changes its ``process_start_time_seconds``).
No ``*_created`` series: they double the series count and nothing here needs them.
"""
from __future__ import annotations

import bisect
import functools
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import express
from express.engine.billing import MINIMUM_BILLED_S, MINIMUM_GB_SECONDS, gb_seconds

# process-wide switch of prometheus_client (also read by the multi-process collector's registry)
disable_created_metrics()

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
    "express_task_duration_seconds", "Task invocation duration by integration (lambda, http, aws-sdk, a service "
    "such as sqs or dynamodb, kafka, states, function for a local callable) and outcome (SUCCEEDED, FAILED, "
    "TIMED_OUT)",
    ["machine", "integration", "status"], buckets=DURATION_BUCKETS, registry=REGISTRY)
RETRIES = Counter("express_retries", "Retries by ASL error name", ["machine", "error"], registry=REGISTRY)
CATCHES = Counter("express_catches", "Errors caught by a Catcher", ["machine", "error"], registry=REGISTRY)
IN_FLIGHT = Gauge(
    "express_in_flight_executions", "Executions currently running", ["mode"], registry=REGISTRY,
    multiprocess_mode="livesum")
BILLED_DURATION = Counter(
    "express_billed_duration_seconds", "Billed duration (Express rounding: 100 ms steps, at least 100 ms)",
    ["machine"], registry=REGISTRY)
BILLED_GIGABYTE_SECONDS = Counter(
    "express_billed_duration_gigabyte_seconds", "Billed GB-seconds (billed duration x billed memory in GB, "
    "AWS's unit of Express duration pricing)", ["machine"], registry=REGISTRY)

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
EXECUTIONS_THROTTLED = Counter(
    "express_executions_throttled", "Executions refused for capacity before they ran (AWS's ExecutionThrottled): "
    "ThrottlingException or ExecutionLimitExceeded, by machine and API operation", ["machine", "operation"],
    registry=REGISTRY)
LOG_RECORDS_DROPPED = Counter(
    "express_log_records_dropped", "Execution log or usage records dropped because a sink was full",
    ["sink"], registry=REGISTRY)

_N_BUCKETS = len(DURATION_BUCKETS)


class Series:
    """Cumulative counts for one (machine, mode); callers may keep a reference and bump fields
    directly (that is the hot path). :meth:`Recorder.flush` publishes the change since the last
    flush."""

    __slots__ = ("machine", "mode", "started", "succeeded", "failed", "timed_out", "transitions",
                 "duration_sum", "bounds", "buckets", "billed_s", "gb_s", "errors", "minimum_billed", "_last")

    def __init__(self, machine: str, mode: str) -> None:
        self.machine = machine
        self.mode = mode
        # the engine counts a minimum-billed success inline: buckets[bisect_left(bounds, duration)] += 1
        self.bounds = DURATION_BUCKETS
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
        # executions billed at AWS's minimum (100 ms x 64 MB), counted rather than summed
        self.minimum_billed = 0
        self._last: tuple[Any, ...] = (0, 0, 0, 0, 0, 0.0, [0] * (_N_BUCKETS + 1), 0.0, 0.0, {}, 0)

    def finished(self, status: str, error: str | None, duration_s: float, transitions: int,
                 billed_ms: int, billed_mb: int) -> None:
        if status == "SUCCEEDED":
            self.succeeded += 1
        else:
            if status == "FAILED":
                self.failed += 1
            else:
                self.timed_out += 1
            if error is not None:
                name = error[:64]
                self.errors[name] = self.errors.get(name, 0) + 1
        self.transitions += transitions
        self.duration_sum += duration_s
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, duration_s)] += 1
        self.billed_s += billed_ms / 1000.0
        self.gb_s += gb_seconds(billed_ms, billed_mb)

    def publish(self) -> None:
        (l_started, l_ok, l_failed, l_timed_out, l_transitions, l_sum, l_buckets, l_billed, l_gb,
         l_errors, l_minimum) = self._last
        machine, mode = self.machine, self.mode
        if self.started > l_started:
            EXECUTIONS_STARTED.labels(machine, mode).inc(self.started - l_started)
        for status, now, last in (("SUCCEEDED", self.succeeded, l_ok), ("FAILED", self.failed, l_failed),
                                  ("TIMED_OUT", self.timed_out, l_timed_out)):
            if now > last:
                EXECUTIONS_FINISHED.labels(machine, mode, status).inc(now - last)
        for error, n in self.errors.items():
            if n > l_errors.get(error, 0):
                EXECUTION_ERRORS.labels(machine, error).inc(n - l_errors.get(error, 0))
        if self.transitions > l_transitions:
            STATE_TRANSITIONS.labels(machine).inc(self.transitions - l_transitions)
        delta = [now - last for now, last in zip(self.buckets, l_buckets, strict=True)]
        if any(delta):
            _histogram_add(EXECUTION_DURATION.labels(machine, mode), delta, self.duration_sum - l_sum)
            minimum = self.minimum_billed - l_minimum
            BILLED_DURATION.labels(machine).inc(self.billed_s - l_billed + minimum * MINIMUM_BILLED_S)
            BILLED_GIGABYTE_SECONDS.labels(machine).inc(self.gb_s - l_gb + minimum * MINIMUM_GB_SECONDS)
        self._last = (self.started, self.succeeded, self.failed, self.timed_out, self.transitions,
                      self.duration_sum, list(self.buckets), self.billed_s, self.gb_s, dict(self.errors),
                      self.minimum_billed)

    @property
    def in_flight(self) -> int:
        return self.started - self.succeeded - self.failed - self.timed_out


class Recorder:
    """Per-process aggregation of execution outcomes; cheap enough for every execution. An engine
    counts in the one it is given (``Engine(metrics=RECORDER)``, see :class:`express.engine.observers.MetricsRecorder`)."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], Series] = {}
        self._flushed_in_flight: dict[str, int] = {}
        self._events: dict[tuple[str, ...], float] = {}
        self._tasks: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}
        self._durations: dict[tuple[Any, ...], Durations] = {}

    def durations(self, histogram: Histogram, *labels: str) -> Durations:
        """The (permanent) inline counts of a histogram child (DURATION_BUCKETS); keep it."""
        key = (histogram, *labels)
        d = self._durations.get(key)
        if d is None:
            d = self._durations[key] = Durations(histogram.labels(*labels))
        return d

    def series(self, machine: str, mode: str) -> Series:
        """The (permanent) series of a machine and mode; keep it to count without lookups."""
        key = (machine, mode)
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = Series(machine, mode)
        return s

    def started(self, machine: str, mode: str) -> None:
        self.series(machine, mode).started += 1

    def finished(self, machine: str, mode: str, status: str, error: str | None, duration_s: float,
                 transitions: int, billed_ms: int, billed_mb: int) -> None:
        self.series(machine, mode).finished(status, error, duration_s, transitions, billed_ms, billed_mb)

    def event(self, metric: str, *labels: str, amount: float = 1.0) -> None:
        """Less frequent counters: ``retry``/``catch`` (machine, error), ``state`` (machine, type)."""
        key = (metric, *labels)
        self._events[key] = self._events.get(key, 0.0) + amount

    def task(self, machine: str, seconds: float, integration: str = "function", error: str | None = None) -> None:
        """One Task invocation that returned (``error`` None) or failed with ASL error ``error``;
        ``integration`` is the Task's label, named once when it was compiled
        (:func:`express.integrations.kind`: lambda, http, aws-sdk, sqs, kafka, states, function...)."""
        status = "SUCCEEDED" if error is None else "TIMED_OUT" if error == "States.Timeout" else "FAILED"
        key = (machine, integration, status)
        entry = self._tasks.get(key)
        if entry is None:
            entry = self._tasks[key] = ([0] * (_N_BUCKETS + 1), [0.0])
        entry[0][bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        entry[1][0] += seconds

    def flush(self) -> None:
        in_flight: dict[str, int] = {}
        for s in list(self._series.values()):
            s.publish()
            in_flight[s.mode] = in_flight.get(s.mode, 0) + s.in_flight
        for mode, n in in_flight.items():
            if n != self._flushed_in_flight.get(mode):
                IN_FLIGHT.labels(mode).set(n)
                self._flushed_in_flight[mode] = n
        events, self._events = self._events, {}
        for (metric, *labels), amount in events.items():
            _EVENT_METRICS[metric].labels(*labels).inc(amount)
        tasks, self._tasks = self._tasks, {}
        for (machine, integration, status), (buckets, total) in tasks.items():
            _histogram_add(TASK_DURATION.labels(machine, integration, status), buckets, total[0])
        for d in list(self._durations.values()):
            d.publish()
        if _WORKER_PROCESS is not None:
            _WORKER_PROCESS.publish()


class Durations:
    """Observations of one histogram child counted inline (``buckets[bisect_left(bounds, s)] += 1``,
    ``total += s``, ``count += 1``: a few hundred nanoseconds, where the child's ``observe`` costs
    microseconds); :meth:`Recorder.flush` moves them into the child."""

    __slots__ = ("child", "bounds", "buckets", "total", "count")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.bounds = DURATION_BUCKETS
        self.buckets = [0] * (_N_BUCKETS + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def publish(self) -> None:
        if not self.count:
            return
        buckets, total = self.buckets, self.total
        # reset in place: callers keep a reference to this object (and to its bucket list)
        self.buckets = [0] * (_N_BUCKETS + 1)
        self.total = 0.0
        self.count = 0
        _histogram_add(self.child, buckets, total)


@functools.lru_cache(maxsize=256)
def request_duration(operation: str) -> Durations:
    """The HTTP request durations of an API operation (a bounded set), counted in :data:`RECORDER`
    and published on its flushes; cached."""
    return RECORDER.durations(HTTP_REQUEST_DURATION, operation)


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


class BuildInfo(Collector):
    """``express_build_info{version} 1``: join on it to tell versions apart during a rollout."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("express_build_info", "The running express version (always 1)",
                                   labels=["version"])
        family.add_metric([express.__version__], 1.0)
        yield family


ENV_WORKER_INDEX = "EXPRESS_WORKER_INDEX"  # as set by the supervisor (express.http.routing)


class WorkerProcess:
    """With several workers the process collector would only describe the worker that answers the
    scrape; instead every worker copies its own figures into the shared files, labelled with its
    index. Counters of a dead worker stay in the files (cpu stays monotonic per worker slot);
    its gauges go with ``mark_process_dead``."""

    GAUGES = ("process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
              "process_open_fds", "process_max_fds")

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.source = ProcessCollector(registry=None)
        own = CollectorRegistry()  # never exposed itself: the shared files are
        self.cpu = Counter("process_cpu_seconds", "Total user and system CPU time spent in seconds",
                           ["worker"], registry=own).labels(worker)
        self.gauges = {name: Gauge(name, name.replace("_", " "), ["worker"], registry=own,
                                   multiprocess_mode="livemax").labels(worker) for name in self.GAUGES}
        self.cpu_seen = 0.0
        self.next_at = 0.0

    def publish(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + 1.0
        # /proc/self reads are served from kernel memory: no disk I/O on the event loop
        for family in self.source.collect():
            for sample in family.samples:
                if sample.name == "process_cpu_seconds_total":
                    if sample.value > self.cpu_seen:
                        self.cpu.inc(sample.value - self.cpu_seen)
                        self.cpu_seen = sample.value
                elif sample.name in self.gauges:
                    self.gauges[sample.name].set(sample.value)


_WORKER_PROCESS = WorkerProcess(os.environ.get(ENV_WORKER_INDEX, "0")) if multiprocess_dir() else None
if _WORKER_PROCESS is None:
    ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
REGISTRY.register(BuildInfo())


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
        PlatformCollector(registry=registry)
        registry.register(BuildInfo())
        return bytes(generate_latest(registry))
    return bytes(generate_latest(REGISTRY))
