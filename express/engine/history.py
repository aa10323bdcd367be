"""Execution logs, as AWS's ``loggingConfiguration`` writes them for Express workflows (which keep
their history only in logs): JSON lines with AWS's history event types.

Logging is decided per machine at compile time. With level OFF nothing here runs at all: states
are wrapped in :class:`LoggedState` only for machines whose level is ALL, ERROR or FATAL.
An execution's events are collected in an :class:`EventLog` and handed to the sink once, when
the execution ends, filtered by level.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

LEVELS = ("ALL", "ERROR", "FATAL", "OFF")

FATAL_EVENTS = frozenset({"ExecutionAborted", "ExecutionFailed", "ExecutionTimedOut"})
ERROR_EVENTS = FATAL_EVENTS | frozenset({
    "FailStateEntered", "LambdaFunctionFailed", "LambdaFunctionScheduleFailed", "LambdaFunctionStartFailed",
    "LambdaFunctionTimedOut", "MapIterationAborted", "MapIterationFailed", "MapStateAborted", "MapStateFailed",
    "ParallelStateAborted", "ParallelStateFailed", "TaskFailed", "TaskStartFailed", "TaskStateAborted",
    "TaskSubmitFailed", "TaskTimedOut", "WaitStateAborted", "EvaluationFailed",
})
_DATA_KEYS = ("input", "output")
# CloudWatch truncates execution data above 248 KB in log events
MAX_LOGGED_DATA = 248 * 1024


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """AWS's loggingConfiguration: ``level`` ALL | ERROR | FATAL | OFF, ``include_execution_data``."""

    level: str = "OFF"
    include_execution_data: bool = False

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"logging level must be one of {', '.join(LEVELS)}, not {self.level!r}")

    @property
    def enabled(self) -> bool:
        return self.level != "OFF"

    def wants(self, event_type: str) -> bool:
        if self.level == "ALL":
            return True
        if self.level == "ERROR":
            return event_type in ERROR_EVENTS
        if self.level == "FATAL":
            return event_type in FATAL_EVENTS
        return False

    @classmethod
    def from_aws(cls, value: Any) -> LoggingConfig:
        """From the API shape ``{"level": ..., "includeExecutionData": ...}``."""
        if value is None:
            return cls()
        if isinstance(value, LoggingConfig):
            return value
        return cls(str(value.get("level", "OFF")), bool(value.get("includeExecutionData", False)))


class EventLog:
    """The events of one execution, in order."""

    __slots__ = ("config", "execution_arn", "clock", "events")

    def __init__(self, config: LoggingConfig, execution_arn: str, clock: Any) -> None:
        self.config = config
        self.execution_arn = execution_arn
        self.clock = clock
        self.events: list[tuple[str, float, dict[str, Any]]] = []

    def add(self, event_type: str, details: dict[str, Any]) -> None:
        self.events.append((event_type, self.clock.now(), details))

    def records(self) -> list[dict[str, Any]]:
        """The events as AWS writes them to CloudWatch Logs, filtered by the level."""
        out = []
        include = self.config.include_execution_data
        for i, (event_type, at, details) in enumerate(self.events, start=1):
            if not self.config.wants(event_type):
                continue
            d = dict(details)
            for key in _DATA_KEYS:
                if key in d:
                    if include:
                        text = orjson.dumps(d[key]).decode()
                        truncated = len(text) > MAX_LOGGED_DATA
                        d[key] = text[:MAX_LOGGED_DATA] if truncated else text
                        d[key + "Details"] = {"truncated": truncated}
                    else:
                        del d[key]
            out.append({
                "id": str(i),
                "type": event_type,
                "details": d,
                "previous_event_id": str(i - 1),
                "event_timestamp": str(int(at * 1000)),
                "execution_arn": self.execution_arn,
                "redrive_count": "0",
            })
        return out

    def lines(self) -> list[bytes]:
        return [orjson.dumps(r) for r in self.records()]


_ENTERED_ONLY = {"Fail"}


class LoggedState:
    """Wraps a compiled state to add its Entered/Exited (and Failed) events; used only for machines
    whose logging level is not OFF."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.is_async = inner.is_async
        kind = inner.type
        self.entered = f"{kind}StateEntered"
        self.exited = None if kind in _ENTERED_ONLY else f"{kind}StateExited"
        self.kind = kind

    def _entered(self, frame: Any, data: Any) -> EventLog:
        ex = frame.execution
        if ex.metrics:
            ex.metrics.event("state", ex.machine_name, self.kind)
        log: EventLog = ex.log
        log.add(self.entered, {"name": self.name, "input": data})
        return log

    def step(self, frame: Any, data: Any) -> tuple[Any, Any]:
        log = self._entered(frame, data)
        nxt, out = self.inner.step(frame, data)
        if self.exited:
            log.add(self.exited, {"name": self.name, "output": out})
        return nxt, out

    async def astep(self, frame: Any, data: Any) -> tuple[Any, Any]:
        log = self._entered(frame, data)
        nxt, out = await self.inner.astep(frame, data)
        if self.exited:
            log.add(self.exited, {"name": self.name, "output": out})
        return nxt, out
