"""Recent executions per state machine, kept in memory for the console.

:class:`ExecutionRing` is the engine's ``recorder``: ``record(machine, result, event_log)`` runs
after every execution and only appends a tuple of references to a bounded deque (O(1), no
copying, no serialisation). Everything shown is rendered from those references when someone
asks (:meth:`ExecutionRing.executions`, :meth:`ExecutionRing.detail`).

Successes and failures (FAILED, TIMED_OUT) have separate rings per machine, so a burst of
successes never pushes the last failures out: failures are kept longer.

What is shown follows the machine's logging configuration: the event history only when the
machine has an event log (its level is not OFF), input and output only when the logging includes
execution data.
"""
from __future__ import annotations

import itertools
from collections import deque
from typing import Any

import orjson

DEFAULT_SIZE = 100
DEFAULT_FAILED_SIZE = 100
MAX_DATA_CHARS = 32 * 1024
MAX_EVENTS = 5000

# Events that mean "the state being run failed", for attributing a failure to a state.
FAILURE_EVENTS = frozenset({
    "FailStateEntered", "LambdaFunctionFailed", "LambdaFunctionTimedOut", "LambdaFunctionScheduleFailed",
    "LambdaFunctionStartFailed", "TaskFailed", "TaskStartFailed", "TaskSubmitFailed", "TaskTimedOut",
    "EvaluationFailed", "MapIterationFailed", "MapStateFailed", "ParallelStateFailed",
})
_DATA_KEYS = ("input", "output")


Entry = tuple[int, Any, Any, Any]  # (id, machine, result, event log or None)
Rings = tuple[deque[Entry], deque[Entry]]  # (succeeded, failed)


class ExecutionRing:
    """``size`` successful and ``failed_size`` failed/timed-out executions kept per machine."""

    def __init__(self, size: int = DEFAULT_SIZE, failed_size: int | None = None) -> None:
        if size < 0 or (failed_size is not None and failed_size < 0):
            raise ValueError("ring sizes must be >= 0")
        self.size = int(size)
        self.failed_size = int(failed_size) if failed_size is not None else self.size
        self._rings: dict[str, Rings] = {}
        self._next_id = itertools.count(1).__next__

    # ------------------------------------------------------------------ hot path
    def record(self, machine: Any, result: Any, log: Any) -> None:
        rings = self._rings.get(machine.name)
        if rings is None:
            rings = self._rings[machine.name] = (deque(maxlen=self.size), deque(maxlen=self.failed_size))
        rings[result.status != "SUCCEEDED"].append((self._next_id(), machine, result, log))

    # ------------------------------------------------------------------ reading (on request)
    def machines(self) -> list[str]:
        return sorted(self._rings)

    def forget(self, name: str) -> None:
        self._rings.pop(name, None)

    def counts(self, name: str) -> tuple[int, int]:
        rings = self._rings.get(name)
        return (0, 0) if rings is None else (len(rings[0]), len(rings[1]))

    def _entries(self, name: str) -> list[Entry]:
        rings = self._rings.get(name)
        if rings is None:
            return []
        entries = list(rings[0]) + list(rings[1])
        entries.sort(key=lambda e: e[0], reverse=True)
        return entries

    def executions(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Summaries, newest first."""
        entries = self._entries(name)
        if limit is not None:
            entries = entries[:limit]
        return [summary(*e) for e in entries]

    def detail(self, name: str, execution_id: int) -> dict[str, Any] | None:
        rings = self._rings.get(name)
        if rings is None:
            return None
        for ring in (rings[1], rings[0]):
            for entry in list(ring):
                if entry[0] == execution_id:
                    return detail(*entry)
        return None


def includes_data(machine: Any) -> bool:
    logging = getattr(machine, "logging", None)
    return bool(logging is not None and logging.include_execution_data)


def summary(id: int, machine: Any, result: Any, log: Any) -> dict[str, Any]:
    return {
        "id": id,
        "name": result.name,
        "status": result.status,
        "start_time": result.start_time,
        "stop_time": result.stop_time,
        "duration_ms": round((result.stop_time - result.start_time) * 1000.0, 3),
        "error": result.error,
        "cause": result.cause,
        "state_transitions": result.state_transitions,
        "history": log is not None,
        "execution_data": includes_data(machine),
    }


def _data(value: Any) -> dict[str, Any]:
    try:
        text = orjson.dumps(value, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    truncated = len(text) > MAX_DATA_CHARS
    return {"text": text[:MAX_DATA_CHARS] if truncated else text, "truncated": truncated}


def detail(id: int, machine: Any, result: Any, log: Any) -> dict[str, Any]:
    """A summary plus the event history, the path taken and the failing state; input and output
    when the machine's logging includes execution data."""
    out = summary(id, machine, result, log)
    with_data = includes_data(machine)
    out["machine_arn"] = machine.arn
    out["execution_arn"] = log.execution_arn if log is not None else None
    events: list[dict[str, Any]] = []
    input_value: Any = None
    if log is not None:
        raw = list(log.events)
        out["events_truncated"] = len(raw) > MAX_EVENTS
        for i, (event_type, at, details) in enumerate(raw[:MAX_EVENTS], start=1):
            d: dict[str, Any] = {}
            for key, value in details.items():
                if key in _DATA_KEYS:
                    if with_data:
                        d[key] = _data(value)
                elif isinstance(value, (str, int, float, bool)) or value is None:
                    d[key] = value
                else:
                    d[key] = _data(value)["text"]
            events.append({"id": i, "type": event_type, "timestamp": at, "details": d})
        if raw and raw[0][0] == "ExecutionStarted":
            input_value = raw[0][2].get("input")
        out.update(path_of(raw, result.status))
    else:
        out.update({"path": [], "failed_state": None, "open_states": []})
    out["events"] = events
    if with_data:
        out["input"] = _data(input_value) if log is not None else None
        out["output"] = _data(result.output) if result.status == "SUCCEEDED" else None
    return out


def path_of(events: list[tuple[str, float, dict[str, Any]]], status: str) -> dict[str, Any]:
    """From the raw events: the states entered in order (``path``: names, first entry each), the
    state the execution failed in (``failed_state``) and the states left unfinished."""
    path: list[str] = []
    seen: set[str] = set()
    open_states: list[tuple[str, str]] = []  # (name, state type), in order of entry
    failed: str | None = None
    for event_type, _, details in events:
        name = details.get("name") if isinstance(details, dict) else None
        if event_type.endswith("StateEntered") and isinstance(name, str):
            if name not in seen:
                seen.add(name)
                path.append(name)
            open_states.append((name, event_type[: -len("StateEntered")]))
        elif event_type.endswith("StateExited") and isinstance(name, str):
            for i in range(len(open_states) - 1, -1, -1):
                if open_states[i][0] == name:
                    del open_states[i]
                    break
        if event_type == "FailStateEntered" and isinstance(name, str):
            failed = name
        elif event_type in FAILURE_EVENTS:
            failed = _innermost(open_states) or failed
    open_names = [s[0] for s in open_states]
    if status == "SUCCEEDED":
        failed = None
    elif failed not in open_names:
        # that failure was caught; the execution failed (or timed out) later, elsewhere
        failed = _innermost(open_states)
    return {"path": path, "failed_state": failed, "open_states": [n for n in open_names if n != failed]}


def _innermost(open_states: list[tuple[str, str]]) -> str | None:
    """The most recently entered unfinished state, preferring states that are not Parallel/Map
    (which stay open while their branches run)."""
    for name, kind in reversed(open_states):
        if kind not in ("Parallel", "Map"):
            return name
    return open_states[-1][0] if open_states else None


def ring_from_env(environ: Any = None) -> ExecutionRing | None:
    """The ring ``express serve`` gives the engine: ``EXPRESS_CONSOLE_RECENT`` successful and
    ``EXPRESS_CONSOLE_RECENT_FAILED`` failed executions kept per machine (defaults 100 and 100);
    ``EXPRESS_CONSOLE_RECENT=0`` with ``EXPRESS_CONSOLE_RECENT_FAILED=0`` keeps none (no recorder)."""
    import os

    env = os.environ if environ is None else environ

    def size(key: str, default: int) -> int:
        raw = env.get(key, "")
        try:
            return max(0, int(raw)) if raw.strip() else default
        except ValueError:
            raise ValueError(f"{key} must be a whole number, not {raw!r}") from None

    ok = size("EXPRESS_CONSOLE_RECENT", DEFAULT_SIZE)
    failed = size("EXPRESS_CONSOLE_RECENT_FAILED", DEFAULT_FAILED_SIZE)
    if ok == 0 and failed == 0:
        return None
    return ExecutionRing(ok, failed)
