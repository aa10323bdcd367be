"""Per-execution usage records (what AWS would bill for the execution) and their summary.

Every execution yields one record when a usage sink is configured: machine, execution name,
mode (async/sync/api), start, duration, billed duration and memory (see :mod:`express.engine.billing`),
state transitions and cost. Records go to the metering topic in Kafka mode, to a JSON-lines
metering log otherwise; ``express usage`` summarises a log per machine over a time window.
"""
from __future__ import annotations

import math
import pathlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from express.engine.billing import DEFAULT_PRICES, MINIMUM_MEMORY_MB, Prices, duration_cost, gb_seconds
from express.observe.sinks import Sink

if TYPE_CHECKING:
    from express.engine.machine import ExecutionResult


@dataclass(frozen=True, slots=True)
class UsageRecord:
    machine: str
    execution_name: str
    mode: str
    status: str
    start: float
    duration_ms: float
    billed_duration_ms: int
    billed_memory_mb: int
    memory_used_mb: float
    state_transitions: int
    request_cost: float
    duration_cost: float

    @property
    def gb_seconds(self) -> float:
        return gb_seconds(self.billed_duration_ms, self.billed_memory_mb)

    @property
    def cost(self) -> float:
        return self.request_cost + self.duration_cost

    def to_json(self) -> bytes:
        return orjson.dumps({
            "machine": self.machine, "executionName": self.execution_name, "mode": self.mode,
            "status": self.status, "start": self.start, "durationMs": round(self.duration_ms, 3),
            "billedDurationMs": self.billed_duration_ms, "billedMemoryMB": self.billed_memory_mb,
            "memoryUsedMB": round(self.memory_used_mb, 3), "stateTransitions": self.state_transitions,
            "gbSeconds": self.gb_seconds, "cost": self.cost,
        })


def usage_record(machine: str, name: str, mode: str, status: str, start: float, duration_s: float,
                 billed_ms: int, billed_mb: int, memory_used_mb: float, transitions: int,
                 prices: Prices = DEFAULT_PRICES) -> UsageRecord:
    """One execution's usage, with the billing the engine computed when it finished
    (``ExecutionResult.billed_duration_ms``/``billed_memory_mb``; :mod:`express.engine.billing`) and
    AWS's memory estimate; its duration cost is priced at the first tier (monthly tiers are
    applied when usage is summarised)."""
    return UsageRecord(machine, name, mode, status, start, duration_s * 1000.0, billed_ms, billed_mb,
                       memory_used_mb, transitions, prices.per_request,
                       duration_cost(gb_seconds(billed_ms, billed_mb), prices))


class UsageRecorder:
    """The engine's usage hook (:class:`express.engine.observers.UsageHook`): writes each execution's
    usage record, as a JSON line, to ``sink``. ``Engine(usage_sink=sink)`` makes one of a plain sink
    with the engine's prices."""

    __slots__ = ("sink", "prices")

    def __init__(self, sink: Sink, prices: Prices = DEFAULT_PRICES) -> None:
        self.sink = sink
        self.prices = prices

    def record(self, machine: str, mode: str, result: ExecutionResult, memory_used_mb: float) -> None:
        record = usage_record(machine, result.name, mode, result.status, result.start_time,
                              result.stop_time - result.start_time, result.billed_duration_ms,
                              result.billed_memory_mb, memory_used_mb, result.state_transitions, self.prices)
        self.sink.emit((record.to_json(),))

    def close(self) -> None:
        self.sink.close()


@dataclass(slots=True)
class MachineUsage:
    machine: str
    executions: int = 0
    failed: int = 0
    billed_duration_ms: int = 0
    gb_seconds: float = 0.0
    state_transitions: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class UsageSummary:
    since: float
    until: float
    machines: dict[str, MachineUsage]
    request_cost: float
    duration_cost: float

    @property
    def cost(self) -> float:
        return self.request_cost + self.duration_cost


def read_records(paths: Iterable[str | pathlib.Path]) -> Iterator[dict[str, Any]]:
    """Usage records from JSON-lines files; malformed lines are skipped (a torn last line)."""
    for path in paths:
        with open(path, "rb") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and "machine" in rec and "billedDurationMs" in rec:
                    yield rec


def summarise(records: Iterable[dict[str, Any]], since: float = -math.inf, until: float = math.inf,
              prices: Prices = DEFAULT_PRICES) -> UsageSummary:
    """Usage and cost per machine for executions started in [since, until); the GB-second tiers
    apply to the window's total, as to a month's."""
    machines: dict[str, MachineUsage] = {}
    total_gb_s = 0.0
    n = 0
    for r in records:
        start = float(r.get("start", 0.0))
        if not since <= start < until:
            continue
        m = machines.get(r["machine"])
        if m is None:
            m = machines[r["machine"]] = MachineUsage(r["machine"])
        m.executions += 1
        n += 1
        if r.get("status") != "SUCCEEDED":
            m.failed += 1
        m.billed_duration_ms += int(r["billedDurationMs"])
        gb_s = float(r.get("gbSeconds", gb_seconds(r["billedDurationMs"], r.get("billedMemoryMB", MINIMUM_MEMORY_MB))))
        m.gb_seconds += gb_s
        total_gb_s += gb_s
        m.state_transitions += int(r.get("stateTransitions", 0))
        mode = str(r.get("mode", "?"))
        m.by_mode[mode] = m.by_mode.get(mode, 0) + 1
    return UsageSummary(since, until, machines, n * prices.per_request, duration_cost(total_gb_s, prices))


def format_summary(s: UsageSummary) -> str:
    lines = [f"{'machine':30s} {'executions':>10s} {'failed':>7s} {'billed s':>10s} {'GB-s':>12s} {'transitions':>12s}"]
    for name in sorted(s.machines):
        m = s.machines[name]
        lines.append(f"{name:30s} {m.executions:10d} {m.failed:7d} {m.billed_duration_ms / 1000:10.1f} "
                     f"{m.gb_seconds:12.3f} {m.state_transitions:12d}")
    lines.append(f"cost: requests ${s.request_cost:.6f} + duration ${s.duration_cost:.6f} = ${s.cost:.6f}")
    return "\n".join(lines)
