"""Per-execution and per-scope runtime state that compiled closures receive.

An :class:`Execution` is shared by every state of one execution; a :class:`Frame` is one scope of
it (the top level, one Parallel branch, one Map iteration) with its own variables and the
context-object fields of the state it is running. Compiled getters take ``(data, frame)``.
"""
from __future__ import annotations

from typing import Any

from express.asl.uuids import uuid4


class Execution:
    """What is fixed for one execution, plus its shared event counter."""

    __slots__ = (
        "machine_name", "machine_arn", "name", "_arn", "input", "start_time", "clock",
        "deadline", "real_deadline", "event_id", "transitions", "var_bytes", "limit", "log",
        "parallel_steps", "metrics", "redrive_count",
        # Set only by express.testing.mocking's mocked Task states (invocations per state, retries
        # included), left unset otherwise so that unmocked executions pay nothing for it.
        "mock_calls",
    )
    mock_calls: dict[str, int]  # annotation only: a class attribute would clash with the slot

    def __init__(self, machine_name: str, machine_arn: str, name: str, arn: str | None, input: Any,
                 start_time: float, clock: Any, deadline: float, real_deadline: float) -> None:
        self.machine_name = machine_name
        self.machine_arn = machine_arn
        self.name = name
        self._arn = arn  # None: AWS's Express ARN, made when first asked for (see ``arn``)
        self.input = input
        self.start_time = start_time
        self.clock = clock
        self.deadline = deadline
        self.real_deadline = real_deadline
        self.event_id = 1  # ExecutionStarted
        self.transitions = 0
        self.var_bytes = 0
        self.limit = 256 * 1024  # payload limit in bytes (States.DataLimitExceeded above it)
        self.log: Any = None  # history.EventLog when the machine's logging level is not OFF
        self.parallel_steps = 0  # Map/Parallel steps run, for the billed-memory estimate
        self.metrics: Any = None  # the engine's MetricsRecorder: retries, catches, task durations
        # $$.Execution.RedriveCount: AWS shows it (0) for StartExecution, not StartSyncExecution
        self.redrive_count: int | None = None

    @property
    def arn(self) -> str:
        """The execution ARN, ``arn:aws:states:REGION:ACCOUNT:express:MACHINE:NAME:UUID`` unless the
        caller gave one; made on first use, since most executions never read it."""
        arn = self._arn
        if arn is None:
            prefix = self.machine_arn.replace(":stateMachine:", ":express:", 1)
            arn = self._arn = f"{prefix}:{self.name}:{uuid4()}"
        return arn


class Frame:
    """One scope of an execution: its variables and the state it is in."""

    __slots__ = ("execution", "vars", "state_name", "entered_at", "retry_count",
                 "map_item", "next", "size", "var_bytes")

    def __init__(self, execution: Execution, vars: dict[str, Any] | None = None,
                 map_item: dict[str, Any] | None = None, size: int = 0) -> None:
        self.execution = execution
        # An upper bound of the serialised size of the data this scope's current state holds,
        # kept exact where cheap: each state adds the size of what it writes, and only when the
        # bound passes the limit is the whole payload measured (see states.check_size).
        self.size = size
        self.var_bytes = 0  # serialised size of the variables this scope sees
        self.vars: dict[str, Any] = {} if vars is None else vars
        self.state_name = ""
        self.entered_at = 0.0
        self.retry_count: int | None = None  # None: the state has no Retry (no $$.State.RetryCount)
        self.map_item = map_item
        self.next: Any = None

    def context_object(self) -> dict[str, Any]:
        """The ``$$`` object, built on demand (most states never read it)."""
        from express.asl.timestamps import format_timestamp

        ex = self.execution
        execution = {
            "Id": ex.arn,
            "Input": ex.input,
            "Name": ex.name,
            "RoleArn": "arn:aws:iam::000000000000:role/express",
            "StartTime": format_timestamp(ex.start_time),
        }
        if ex.redrive_count is not None:
            execution["RedriveCount"] = ex.redrive_count
        state: dict[str, Any] = {"EnteredTime": format_timestamp(self.entered_at), "Name": self.state_name}
        if self.retry_count is not None:  # Task, Parallel and Map: the states that can retry
            state["RetryCount"] = self.retry_count
        obj: dict[str, Any] = {
            "Execution": execution,
            "StateMachine": {"Id": ex.machine_arn, "Name": ex.machine_name},
            "State": state,
        }
        if self.map_item is not None:
            obj["Map"] = {"Item": self.map_item}
        return obj
