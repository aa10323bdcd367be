"""Recent executions per state machine, kept in memory for the console.

:class:`ExecutionRing` is the engine's ``recorder``: ``record(machine, result, event_log)`` runs
after every execution and only appends a tuple of references to a bounded deque (O(1), no
copying, no serialisation). Everything shown is rendered from those references when someone
asks (:meth:`ExecutionRing.executions`, :meth:`ExecutionRing.detail`). When the machine's logging
does not include execution data, nothing shows an output, so the result kept is a copy without it:
an output held until a hundred executions later is freed cold from the cache, which cost m1 more
than a third of its execution.

Successes and failures (FAILED, TIMED_OUT) have separate rings per machine, so a burst of
successes never pushes the last failures out: failures are kept longer.

What is shown follows the machine's logging configuration: the event history only when the
machine has an event log (its level is not OFF), input and output only when the logging includes
execution data. At level OFF the ring asks the engine for a light trace instead (``trace_log``):
a :class:`TraceLog` keeps each state's Entered/Exited event type, name and time (plus the
error and cause of failures), never any data, at most :data:`MAX_TRACE_EVENTS` per execution.
That is enough for the path taken, the outcome and per-state durations. The engine runs a traced
copy of the machine only for the executions the ring samples (:data:`TRACES_PER_S` per machine
and second), the plain one otherwise: a busy machine pays for the trace of a few executions a
second, not of all of them.

It also keeps the durations of the last :data:`DURATION_WINDOW` executions per machine (one float
appended per execution), for percentiles from observed durations rather than from histogram buckets.
"""
from __future__ import annotations

import itertools
import math
import time
from collections import deque
from typing import Any

import orjson

from express.engine.history import LoggingConfig

DEFAULT_SIZE = 100
DEFAULT_FAILED_SIZE = 100
MAX_DATA_CHARS = 32 * 1024
MAX_EVENTS = 5000
MAX_TRACE_EVENTS = 2000  # per execution, at logging OFF
TRACES_PER_S = 100  # executions traced per machine and second, at most: the trace's cost is bounded
# Once a machine's traces of the second are spent, the clock is read only every this many of its
# executions: a new second's first trace may come that many executions late, never early.
_CLOCK_EVERY = 16
_MAX_FLAT = 3 * MAX_TRACE_EVENTS
DURATION_WINDOW = 1000  # durations kept per machine, for percentiles
PERCENTILES = (0.5, 0.9, 0.99)

# Events that mean "the state being run failed", for attributing a failure to a state.
FAILURE_EVENTS = frozenset({
    "FailStateEntered", "LambdaFunctionFailed", "LambdaFunctionTimedOut", "LambdaFunctionScheduleFailed",
    "LambdaFunctionStartFailed", "TaskFailed", "TaskStartFailed", "TaskSubmitFailed", "TaskTimedOut",
    "EvaluationFailed", "MapIterationFailed", "MapStateFailed", "ParallelStateFailed",
})
_DATA_KEYS = ("input", "output")


Entry = tuple[int, Any, Any, Any]  # (id, machine, result, EventLog, TraceLog or None)
Rings = tuple[deque[Entry], deque[Entry], deque[float]]  # (succeeded, failed, recent durations)

# The trace's wrappers are the event log's (express.engine.history.LoggedState), at "ALL" so that the
# states add their own failure events; its records() and lines() are empty, so a log sink gets
# nothing from it: the machine's level stays OFF for everything but the console.
_TRACE_CONFIG = LoggingConfig("ALL", False)
_DATA_DETAIL_KEYS = ("input", "output")


class TracedState:
    """Wraps a compiled state of a machine whose logging is OFF to mark its Entered/Exited in the
    execution's :class:`TraceLog`: no data, no dict made per step (unlike the event log's
    :class:`express.engine.history.LoggedState`)."""

    __slots__ = ("inner", "name", "is_async", "type", "entered", "exited", "details")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.is_async = inner.is_async
        self.type = kind = inner.type
        self.entered = f"{kind}StateEntered"
        self.exited = None if kind == "Fail" else f"{kind}StateExited"
        self.details = {"name": inner.name}

    def step(self, frame: Any, data: Any) -> tuple[Any, Any]:
        log = frame.execution.log
        log.mark(self.entered, self.details)
        nxt, out = self.inner.step(frame, data)
        if self.exited is not None:
            log.mark(self.exited, self.details)
        return nxt, out

    async def astep(self, frame: Any, data: Any) -> tuple[Any, Any]:
        log = frame.execution.log
        log.mark(self.entered, self.details)
        nxt, out = await self.inner.astep(frame, data)
        if self.exited is not None:
            log.mark(self.exited, self.details)
        return nxt, out


class TraceLog:
    """The light per-execution trace kept at logging OFF: ``(event type, time, details)`` with the
    details stripped of data (``name``, ``index``, ``error``, ``cause`` only), bounded."""

    __slots__ = ("now", "flat", "dropped")
    config = _TRACE_CONFIG
    execution_arn = None

    def __init__(self, clock: Any) -> None:
        self.now = clock.now
        # type, time, details, type, time, ...: one list, no tuple per event kept alive (fewer
        # objects for the garbage collector to track while the ring holds the trace)
        self.flat: list[Any] = []
        self.dropped = 0

    @property
    def events(self) -> list[tuple[str, float, dict[str, Any]]]:
        flat = self.flat
        return list(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))

    def add(self, event_type: str, details: dict[str, Any]) -> None:
        """What the states log beyond Entered/Exited (failures, Map iterations); the execution's
        own end is in its result, so not kept."""
        if event_type.startswith("Execution"):
            return
        flat = self.flat
        if len(flat) >= _MAX_FLAT:
            self.dropped += 1
            return
        if "input" in details or "output" in details:
            details = {"name": details.get("name")}
        flat += (event_type, self.now(), details)

    def mark(self, event_type: str, details: dict[str, Any]) -> None:
        """A state's Entered/Exited: ``details`` is the wrapper's own ``{"name": ...}``, shared."""
        flat = self.flat
        if len(flat) < _MAX_FLAT:
            flat += (event_type, self.now(), details)
        else:
            self.dropped += 1

    def records(self) -> list[dict[str, Any]]:
        return []

    def lines(self) -> list[bytes]:
        return []


class ExecutionRing:
    """``size`` successful and ``failed_size`` failed/timed-out executions kept per machine."""

    def __init__(self, size: int = DEFAULT_SIZE, failed_size: int | None = None, *,
                 traces_per_s: int = TRACES_PER_S) -> None:
        if size < 0 or (failed_size is not None and failed_size < 0):
            raise ValueError("ring sizes must be >= 0")
        self.size = int(size)
        self.failed_size = int(failed_size) if failed_size is not None else self.size
        self._rings: dict[str, Rings] = {}
        self._next_id = itertools.count(1).__next__
        # The engine's hook for machines whose logging is OFF: it compiles a copy of them with
        # TracedState wrappers, and runs that copy with ``trace_log(clock, name)`` as the log for
        # the executions it samples (the first ``traces_per_s`` of each second, per machine).
        self.traces_per_s = max(0, int(traces_per_s))
        self.trace_log = self._sample if self.traces_per_s else None
        self.traced_state = TracedState
        # machine -> [end of its second, traces left in it, executions left before the clock is read again]
        self._sampling: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ hot path
    def record(self, machine: Any, result: Any, log: Any) -> None:
        rings = self._rings.get(machine.name)
        if rings is None:
            rings = self._rings[machine.name] = (deque(maxlen=self.size), deque(maxlen=self.failed_size),
                                                 deque(maxlen=DURATION_WINDOW))
        if result.output is not None and not includes_data(machine):
            # nothing shows the output at this logging level: not kept alive (see the docstring)
            result = result.without_output()
        (rings[0] if result.status == "SUCCEEDED" else rings[1]).append((self._next_id(), machine, result, log))
        rings[2].append(result.stop_time - result.start_time)

    def _sample(self, clock: Any, name: str) -> TraceLog | None:
        window = self._sampling.get(name)
        if window is not None and window[2]:
            # the budget of this second is spent: most executions of a busy machine end here,
            # without reading the clock (it is read again every _CLOCK_EVERY of them)
            window[2] -= 1
            return None
        now = time.monotonic()
        if window is None or now >= window[0]:
            self._sampling[name] = [now + 1.0, self.traces_per_s - 1, 0]
            return TraceLog(clock)
        if window[1]:
            window[1] -= 1
            return TraceLog(clock)
        window[2] = _CLOCK_EVERY - 1
        return None

    # ------------------------------------------------------------------ reading (on request)
    def machines(self) -> list[str]:
        return sorted(self._rings)

    def forget(self, name: str) -> None:
        self._rings.pop(name, None)
        self._sampling.pop(name, None)

    def counts(self, name: str) -> tuple[int, int]:
        rings = self._rings.get(name)
        return (0, 0) if rings is None else (len(rings[0]), len(rings[1]))

    def percentiles(self, name: str) -> dict[str, Any]:
        """p50/p90/p99 (seconds) of the last :data:`DURATION_WINDOW` executions' observed
        durations (nearest rank), with how many they are."""
        window = self.window(name)
        out: dict[str, Any] = {"observed": len(window)}
        for q in PERCENTILES:
            out[f"p{round(q * 100)}_s"] = nearest_rank(window, q)
        return out

    def window(self, name: str) -> list[float]:
        """The observed durations of the last :data:`DURATION_WINDOW` executions, sorted."""
        rings = self._rings.get(name)
        return sorted(rings[2]) if rings is not None else []

    def find(self, name: str, execution_name: str) -> int | None:
        """The id of the newest kept execution of ``name`` called ``execution_name``."""
        for entry in self._entries(name):
            if entry[2].name == execution_name:
                return entry[0]
        return None

    def _entries(self, name: str) -> list[Entry]:
        rings = self._rings.get(name)
        if rings is None:
            return []
        entries = list(rings[0]) + list(rings[1])
        entries.sort(key=lambda e: e[0], reverse=True)
        return entries

    def executions(self, name: str, limit: int | None = None, search: str | None = None) -> list[dict[str, Any]]:
        """Summaries, newest first; with ``search``, only those whose name contains it (any case)."""
        entries = self._entries(name)
        if search:
            needle = search.casefold()
            entries = [e for e in entries if needle in str(e[2].name).casefold()]
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


def nearest_rank(ordered: list[float], q: float) -> float | None:
    """The q-quantile of sorted values, by nearest rank: always one of the observed values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def includes_data(machine: Any) -> bool:
    logging = getattr(machine, "logging", None)
    return bool(logging is not None and logging.include_execution_data)


def outcome(machine: Any, result: Any) -> tuple[Any, Any]:
    """The error and cause to show. A machine's own ``TimeoutSeconds`` ends the execution without
    either (as AWS reports it); the console names the timeout all the same."""
    error, cause = result.error, result.cause
    if result.status == "TIMED_OUT" and error is None:
        error = "States.Timeout"
        timeout = getattr(machine, "timeout_s", None)
        cause = cause or (f"The execution exceeded the state machine's TimeoutSeconds ({timeout:g} s)."
                          if isinstance(timeout, (int, float)) else "The execution timed out.")
    return error, cause


def summary(id: int, machine: Any, result: Any, log: Any) -> dict[str, Any]:
    error, cause = outcome(machine, result)
    traced = isinstance(log, TraceLog)
    return {
        "id": id,
        "name": result.name,
        "status": result.status,
        "start_time": result.start_time,
        "stop_time": result.stop_time,
        "duration_ms": round((result.stop_time - result.start_time) * 1000.0, 3),
        "error": error,
        "cause": cause,
        "state_transitions": result.state_transitions,
        "history": log is not None and not traced,
        "trace": traced,
        # logging OFF, traced machine, but this one was over the recorder's traces per second
        "sampled_out": log is None and getattr(machine, "_traced_block", None) is not None,
        "execution_data": includes_data(machine),
    }


def data_view(value: Any) -> dict[str, Any]:
    try:
        text = orjson.dumps(value, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    truncated = len(text) > MAX_DATA_CHARS
    return {"text": text[:MAX_DATA_CHARS] if truncated else text, "truncated": truncated}


def detail(id: int, machine: Any, result: Any, log: Any) -> dict[str, Any]:
    """A summary plus the event history (or, at logging OFF, the light trace), the path taken,
    the failing state and each state's visits (``states``: name -> [{entered, exited,
    duration_ms, iteration, events, error, cause, input, output}]); input and output when the
    machine's logging includes execution data."""
    out = summary(id, machine, result, log)
    with_data = includes_data(machine) and not out["trace"]
    out["machine_arn"] = machine.arn
    out["execution_arn"] = log.execution_arn if log is not None else None
    events: list[dict[str, Any]] = []
    input_value: Any = None
    if log is not None:
        raw = list(log.events)
        out["events_truncated"] = len(raw) > MAX_EVENTS or bool(getattr(log, "dropped", 0))
        for i, (event_type, at, details) in enumerate(raw[:MAX_EVENTS], start=1):
            d: dict[str, Any] = {}
            for key, value in details.items():
                if key in _DATA_KEYS:
                    if with_data:
                        d[key] = data_view(value)
                elif isinstance(value, (str, int, float, bool)) or value is None:
                    d[key] = value
                else:
                    d[key] = data_view(value)["text"]
            events.append({"id": i, "type": event_type, "timestamp": at, "details": d})
        if raw and raw[0][0] == "ExecutionStarted":
            input_value = raw[0][2].get("input")
        out.update(path_of(raw, result.status))
        out["states"] = visits_of(events, result.start_time, result.stop_time)
    else:
        out.update({"path": [], "failed_state": None, "open_states": [], "states": {}})
    if out["failed_state"] and out["status"] != "SUCCEEDED":
        last = (out["states"].get(out["failed_state"]) or [None])[-1]
        if last is not None and last.get("error") is None:
            last["error"], last["cause"] = out["error"], out["cause"]
    out["events"] = events
    if with_data:
        out["input"] = data_view(input_value) if log is not None else None
        out["output"] = data_view(result.output) if result.status == "SUCCEEDED" else None
    return out


_ITERATION_END = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")


def visits_of(events: list[dict[str, Any]], start: float, stop: float) -> dict[str, list[dict[str, Any]]]:
    """Each state's visits, from the rendered events: when it was entered and left (seconds
    after the start), its duration, the Map iteration it ran in (the innermost iteration still
    running when it was entered: exact unless iterations overlap), the events logged while it
    was the innermost open state, the error and cause of its failure, its input and output. A
    state still running at the end is ``unfinished``, its duration counted to the end."""
    visits: dict[str, list[dict[str, Any]]] = {}
    open_visits: list[tuple[str, dict[str, Any]]] = []
    iterations: list[tuple[Any, Any]] = []  # (Map state name, index), in order of start
    for ev in events:
        event_type, details = ev["type"], ev["details"]
        name = details.get("name")
        at = round(ev["timestamp"] - start, 6)
        if event_type.endswith("StateEntered") and isinstance(name, str):
            visit: dict[str, Any] = {"entered_s": at, "exited_s": None, "duration_ms": None, "events": [ev["id"]],
                                     "iteration": iterations[-1][1] if iterations else None,
                                     "map": iterations[-1][0] if iterations else None,
                                     "error": None, "cause": None}
            if "input" in details:
                visit["input"] = details["input"]
            visits.setdefault(name, []).append(visit)
            if event_type != "FailStateEntered":
                open_visits.append((name, visit))
            continue
        if event_type == "MapIterationStarted":
            iterations.append((name, details.get("index")))
        elif event_type in _ITERATION_END:
            for i in range(len(iterations) - 1, -1, -1):
                if iterations[i] == (name, details.get("index")):
                    del iterations[i]
                    break
        if event_type.endswith("StateExited") and isinstance(name, str):
            for i in range(len(open_visits) - 1, -1, -1):
                if open_visits[i][0] == name:
                    visit = open_visits.pop(i)[1]
                    visit["exited_s"] = at
                    visit["duration_ms"] = round((at - visit["entered_s"]) * 1000.0, 3)
                    visit["events"].append(ev["id"])
                    if "output" in details:
                        visit["output"] = details["output"]
                    break
            continue
        if open_visits and not event_type.startswith("Execution"):
            visit = open_visits[-1][1]
            visit["events"].append(ev["id"])
            if "error" in details:
                visit["error"], visit["cause"] = details.get("error"), details.get("cause")
    for _, visit in open_visits:  # still running when the execution ended (failed or timed out)
        visit["unfinished"] = True
        visit["duration_ms"] = round((stop - start - visit["entered_s"]) * 1000.0, 3)
    return visits


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
    ``EXPRESS_CONSOLE_RECENT=0`` with ``EXPRESS_CONSOLE_RECENT_FAILED=0`` keeps none (no recorder);
    ``EXPRESS_CONSOLE_TRACE``: executions traced per machine and second at logging OFF (default
    100; 0: none)."""
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
    return ExecutionRing(ok, failed, traces_per_s=size("EXPRESS_CONSOLE_TRACE", TRACES_PER_S))
