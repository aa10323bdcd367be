"""What the engine calls to report its executions: a metrics recorder, a usage hook and a line sink.

They are protocols: :mod:`express.observe` implements them (Prometheus series, usage records at Express
prices, JSON-lines sinks) and anything else with these methods will do, so the engine imports neither
a metrics library nor the observability layer to report what it runs.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from express.engine.billing import Prices
    from express.engine.machine import ExecutionResult


class MetricSeries(Protocol):
    """Counters of one (machine, mode), bumped in place per execution and published elsewhere
    (:class:`express.observe.metrics.Series`)."""

    started: int
    succeeded: int
    minimum_billed: int  # successes billed at AWS's minimum, counted rather than summed
    transitions: int
    duration_sum: float
    buckets: list[int]  # duration histogram: buckets[bisect_left(bounds, seconds)]

    @property
    def bounds(self) -> tuple[float, ...]: ...

    def finished(self, status: str, error: str | None, duration_s: float, transitions: int,
                 billed_ms: int, billed_mb: int) -> None: ...


class MetricsRecorder(Protocol):
    """Where an engine's metrics go (:class:`express.observe.metrics.Recorder`)."""

    def series(self, machine: str, mode: str) -> MetricSeries: ...

    def event(self, metric: str, *labels: str, amount: float = 1.0) -> None: ...

    def task(self, machine: str, seconds: float, integration: str = "function", error: str | None = None) -> None:
        """One Task invocation: ``integration`` is its label (lambda, http, sqs...), ``error`` its ASL error."""


class LineSink(Protocol):
    """Takes JSON-lines records (execution logs, usage records) without blocking
    (:mod:`express.observe.sinks`)."""

    def emit(self, lines: Iterable[bytes]) -> None: ...


@runtime_checkable
class UsageHook(Protocol):
    """Told of every finished execution with what it is billed (:class:`express.observe.metering.UsageRecorder`,
    which writes a usage record to a sink); ``memory_used_mb`` is AWS's memory estimate."""

    def record(self, machine: str, mode: str, result: ExecutionResult, memory_used_mb: float) -> None: ...


# The observability layer sits above the engine: its implementations are imported by name, and only
# when an Engine asks for them (metrics=True, or a plain line sink as its usage sink).
_METRICS = "express.observe.metrics"
_METERING = "express.observe.metering"


def default_metrics() -> MetricsRecorder:
    """The process's Prometheus recorder, for ``Engine(metrics=True)``."""
    recorder: MetricsRecorder = importlib.import_module(_METRICS).RECORDER
    return recorder


def usage_hook(sink: UsageHook | LineSink, prices: Prices) -> UsageHook:
    """``sink`` itself if it is a usage hook; else a usage recorder writing its records to ``sink`` at ``prices``."""
    if isinstance(sink, UsageHook):
        return sink
    recorder: UsageHook = importlib.import_module(_METERING).UsageRecorder(sink, prices)
    return recorder
