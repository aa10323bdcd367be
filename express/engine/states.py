"""Compiled states: each ASL state becomes an object whose ``step``/``astep`` does its whole job.

Input/output processing (InputPath, Parameters, ResultSelector, ResultPath, OutputPath, or
JSONata's Arguments/Output) is compiled into a :class:`Dataflow` of closures; a field that is
absent costs nothing at run time. Errors raised while a state runs are ASLErrors; the state adds
AWS's "An error occurred while executing the state ..." prefix to the engine's own runtime errors
before its Retry and Catch see them.
"""
from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, ExecutionTimedOut, PathMissing
from express.asl.jsonpath import parse_path
from express.asl.limits import MAX_DEPTH, deeper_than, json_size, written_too_deep
from express.engine.frame import Frame
from express.engine.runner import (
    FIRST_RUNS,
    TURNS,
    Block,
    Pace,
    Suspended,
    check_deadline,
    give_back,
    sleep_within_deadline,
)

Fn = Callable[[Any, Frame], Any]
MAX_PAYLOAD_BYTES = 256 * 1024


def locate(e: ASLError, name: str, event_id: int) -> None:
    if not e.located:
        e.located = True
        if e.error in errors.LOCATED_ERRORS:
            e.cause = (
                f"An error occurred while executing the state '{name}' "
                f"(entered at the event id #{event_id}). {e.cause or ''}"
            ).rstrip()


def invalid_path(e: PathMissing) -> ASLError:
    return ASLError(errors.RUNTIME, f"Invalid path '{e.path}' : {e.detail}")


def payload_size(value: Any) -> int:
    """Bytes of ``value`` as JSON. Measured one level down, so that orjson itself refuses a value
    nested deeper than MAX_DEPTH: that, or an integer it cannot write, fails with States.Runtime
    (express.asl.limits)."""
    try:
        return len(orjson.dumps([value])) - 2
    except TypeError:
        return json_size(value, "a value the state built")


def written_size(value: Any, depth: int) -> int:
    """payload_size of a result a ResultPath writes ``depth`` levels down into the state's data:
    measured that much deeper again, so that the data it lands in nests at most MAX_DEPTH levels."""
    if depth == 1:  # the common "$.key"
        box = [[value]]
    elif depth == 2:
        box = [[[value]]]
    else:
        box = [value]
        for _ in range(depth):
            box = [box]
    try:
        return len(orjson.dumps(box)) - 2 * depth - 2
    except TypeError:
        size = json_size(value, "the state's result")  # raises when it cannot be written at all
        if deeper_than(value, MAX_DEPTH - depth):
            raise written_too_deep(value, depth) from None
        return size


def too_large(name: str) -> ASLError:
    return ASLError(
        errors.DATA_LIMIT_EXCEEDED,
        f"The state/task '{name}' returned a result with a size exceeding the maximum number of bytes "
        "service limit.",
        located=True,
    )


def remeasure(frame: Frame, name: str, data: Any) -> None:
    """The bound passed the limit: measure the payload itself; fail if it really is too large."""
    size = payload_size(data)
    if size > frame.execution.limit:
        raise too_large(name)
    frame.size = size


def grow(frame: Frame, name: str, out: Any, added: int) -> None:
    size = frame.size + added
    if size > frame.execution.limit:
        remeasure(frame, name, out)
    else:
        frame.size = size


def measured(frame: Frame, name: str, out: Any) -> None:
    size = payload_size(out)
    if size > frame.execution.limit:
        raise too_large(name)
    frame.size = size


# --------------------------------------------------------------------------- dataflow


class Dataflow:
    """The path/template fields of one state, compiled. Query-language specific builders fill
    these closures; ``None`` means the field is absent (identity)."""

    __slots__ = ("input_path", "parameters", "result_selector", "result_path", "output_path",
                 "assign", "jsonata", "arguments", "output")

    def __init__(self) -> None:
        self.input_path: Fn | None = None
        self.parameters: Fn | None = None
        self.result_selector: Fn | None = None
        self.result_path: Callable[[Any, Any], Any] | None = None  # (raw, result) -> data
        self.output_path: Fn | None = None
        # Assign: (result_or_input, frame, states_for_jsonata) -> dict of new variables
        self.assign: Callable[[Any, Frame, Any], dict[str, Any]] | None = None
        self.jsonata = False
        self.arguments: Callable[[dict[str, Any], Frame], Any] | None = None
        self.output: Callable[[dict[str, Any], Frame], Any] | None = None

    # JSONPath: raw -> effective input
    def effective_input(self, raw: Any, frame: Frame) -> Any:
        data = raw
        if self.input_path is not None:
            data = self.input_path(data, frame)
        if self.parameters is not None:
            data = self.parameters(data, frame)
        return data

    def states_binding(self, raw: Any, frame: Frame) -> dict[str, Any]:
        return {"input": raw, "context": frame.context_object()}


def _path_depth(path: Any) -> int:
    try:
        return len(parse_path(path).segments) if isinstance(path, str) else 0
    except ValueError:
        return 0


def _discard(raw: Any, result: Any) -> Any:
    """ResultPath: null — the result is dropped and the state's input passes through."""
    return raw


MAX_VARIABLE_BYTES = 256 * 1024
MAX_ASSIGN_BYTES = 256 * 1024
MAX_VARIABLES_BYTES_PER_EXECUTION = 10 * 1024 * 1024


def apply_assign(frame: Frame, new_vars: dict[str, Any]) -> None:
    """Store an Assign's values, within AWS's limits: 256 KiB per variable and per Assign, and
    10 MiB for all variables a scope can see (its own and those of the scopes around it)."""
    if not new_vars:
        return
    total = 0
    delta = 0
    old_vars = frame.vars
    for name, value in new_vars.items():
        size = payload_size(value)
        if size > MAX_VARIABLE_BYTES:
            raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                           f"The variable '{name}' has a size of {size} bytes, exceeding the maximum of "
                           f"{MAX_VARIABLE_BYTES} bytes.", located=True)
        total += size
        delta += size - (payload_size(old_vars[name]) if name in old_vars else 0)
    if total > MAX_ASSIGN_BYTES:
        raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                       f"The assigned variables have a total size of {total} bytes, exceeding the maximum of "
                       f"{MAX_ASSIGN_BYTES} bytes for one Assign.", located=True)
    if frame.var_bytes + delta > MAX_VARIABLES_BYTES_PER_EXECUTION:
        raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                       f"The variables of the execution would have a total size of {frame.var_bytes + delta} "
                       f"bytes, exceeding the maximum of {MAX_VARIABLES_BYTES_PER_EXECUTION} bytes.", located=True)
    frame.var_bytes += delta
    old_vars.update(new_vars)


# --------------------------------------------------------------------------- retry / catch


class Retrier:
    __slots__ = ("errors", "interval", "max_attempts", "backoff", "max_delay", "jitter")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.errors = tuple(spec.get("ErrorEquals", ()))
        self.interval = float(spec.get("IntervalSeconds", 1))
        self.max_attempts = int(spec.get("MaxAttempts", 3))
        self.backoff = float(spec.get("BackoffRate", 2.0))
        md = spec.get("MaxDelaySeconds")
        self.max_delay = float(md) if md is not None else None
        self.jitter = spec.get("JitterStrategy", "NONE") == "FULL"

    def delay(self, attempt: int) -> float:
        d = self.interval * self.backoff ** (attempt - 1)
        if self.max_delay is not None:
            d = min(d, self.max_delay)
        if self.jitter:
            d = random.uniform(0, d)
        return d


class Catcher:
    __slots__ = ("errors", "next_name", "next", "result_path", "output", "assign", "jsonata")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.errors = tuple(spec.get("ErrorEquals", ()))
        self.next_name = spec.get("Next")
        self.next: Any = None
        self.result_path: Callable[[Any, Any], Any] | None = None
        self.output: Callable[[dict[str, Any], Frame], Any] | None = None
        self.assign: Callable[[Any, Frame, Any], dict[str, Any]] | None = None
        self.jsonata = False


def error_output(e: ASLError) -> dict[str, Any]:
    out: dict[str, Any] = {"Error": e.error}
    if e.cause is not None:
        out["Cause"] = e.cause
    return out


# --------------------------------------------------------------------------- base


class State:
    is_async = False
    events = 2  # Entered + Exited, for the AWS event ids quoted in causes
    retry_base: int | None = None  # $$.State.RetryCount on entry; None: this state type has none

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow) -> None:
        self.name = name
        self.type = spec.get("Type")
        self.flow = flow
        self.next_name: str | None = spec.get("Next")
        self.next: State | None = None
        self.track_context = False
        rp = spec.get("ResultPath")
        # what a ResultPath write adds around the value: the key (path text bounds it), quotes, colon, comma
        self.result_key_bytes = len(rp) + 4 if isinstance(rp, str) else 0
        self.result_depth = _path_depth(rp)  # how many levels down a ResultPath writes

    def step(self, frame: Frame, data: Any) -> tuple[State | None, Any]:
        raise NotImplementedError

    async def astep(self, frame: Frame, data: Any) -> tuple[State | None, Any]:
        return self.step(frame, data)

    def enter(self, frame: Frame) -> int:
        ex = frame.execution
        entered = ex.event_id + 1
        ex.event_id = entered
        if self.track_context:
            frame.state_name = self.name
            frame.entered_at = ex.clock.now()
            frame.retry_count = self.retry_base
        return entered

    def finish(self, frame: Frame, raw: Any, result: Any, assign_input: Any) -> Any:
        """Result -> output (ResultSelector is the caller's), and Assign, for JSONPath or JSONata."""
        flow = self.flow
        if flow.jsonata:
            states = None
            if flow.output is not None or flow.assign is not None:
                states = flow.states_binding(raw, frame)
                states["result"] = result
            new_vars = flow.assign(result, frame, states) if flow.assign is not None else None
            out = flow.output(states, frame) if flow.output is not None else result  # type: ignore[arg-type]
            if new_vars:
                apply_assign(frame, new_vars)
            measured(frame, self.name, out)
            return out
        rp = flow.result_path
        if rp is None:
            measured(frame, self.name, result)
        elif rp is not _discard:
            added = written_size(result, self.result_depth) + self.result_key_bytes
            try:
                result = rp(raw, result)
            except PathMissing as e:
                raise invalid_path(e) from None
            grow(frame, self.name, result, added)
        else:
            result = raw
        if flow.output_path is not None:
            result = flow.output_path(result, frame)
        if flow.assign is not None:
            # last: Assign's values take effect when the state ends, so OutputPath (which may read
            # variables) saw the old ones; nothing before changes variables or ``assign_input``
            apply_assign(frame, flow.assign(assign_input, frame, None))
        return result


# --------------------------------------------------------------------------- simple states


class PassState(State):
    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow, result: Fn | None) -> None:
        super().__init__(name, spec, flow)
        self.result = result

    def step(self, frame: Frame, data: Any) -> tuple[State | None, Any]:
        entered = self.enter(frame)
        try:
            flow = self.flow
            if flow.jsonata:
                out = self.finish(frame, data, data, data)
            else:
                eff = flow.effective_input(data, frame)
                result = self.result(eff, frame) if self.result is not None else eff
                out = self.finish(frame, data, result, result)
        except ASLError as e:
            locate(e, self.name, entered)
            raise
        frame.execution.event_id += 1
        return self.next, out


    def specialize(self) -> None:
        """Swap in a tight closure for the common JSONPath shape (Result/Parameters written by
        ResultPath, no InputPath/OutputPath/Assign): the bulk of real Pass states."""
        flow = self.flow
        if (flow.jsonata or self.track_context or flow.assign is not None
                or flow.input_path is not None or flow.output_path is not None
                or flow.parameters is not None):
            return
        result = self.result
        rp = flow.result_path
        key = getattr(rp, "key", None)
        nxt = self.next
        name = self.name
        generic = self.step
        key_bytes = self.result_key_bytes
        dumps = orjson.dumps
        deep_bytes = 2 * MAX_DEPTH  # a value nested d levels deep is at least 2*d bytes of JSON
        if result is None or (rp is not None and key is None):
            return

        if rp is None:
            def step_replace(frame: Frame, data: Any) -> tuple[State | None, Any]:
                ex = frame.execution
                ex.event_id += 2
                try:
                    out = result(data, frame)
                    measured(frame, name, out)
                except ASLError as e:
                    locate(e, name, ex.event_id - 1)
                    raise
                return nxt, out

            self.step = step_replace  # type: ignore[method-assign]
            return

        def step_set(frame: Frame, data: Any) -> tuple[State | None, Any]:
            if type(data) is not dict:
                return generic(frame, data)
            ex = frame.execution
            ex.event_id += 2
            try:
                r = result(data, frame)
            except ASLError as e:
                locate(e, name, ex.event_id - 1)
                raise
            out = data.copy()
            out[key] = r
            try:
                n = len(dumps(r))
            except TypeError:
                n = -1
            if n >= deep_bytes or n < 0:  # only then can r nest too deeply to be written one level down
                try:
                    n = written_size(r, 1)
                except ASLError as e:
                    locate(e, name, ex.event_id - 1)
                    raise
            size = frame.size + n + key_bytes
            if size > ex.limit:
                remeasure(frame, name, out)
            else:
                frame.size = size
            return nxt, out

        self.step = step_set  # type: ignore[method-assign]


class SucceedState(State):
    def step(self, frame: Frame, data: Any) -> tuple[State | None, Any]:
        entered = self.enter(frame)
        try:
            flow = self.flow
            if flow.jsonata:
                out = self.finish(frame, data, data, data)
            else:
                out = flow.effective_input(data, frame)
                if flow.output_path is not None:
                    out = flow.output_path(out, frame)
        except ASLError as e:
            locate(e, self.name, entered)
            raise
        frame.execution.event_id += 1
        return None, out


class FailState(State):
    events = 1

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 error: Fn | None, cause: Fn | None) -> None:
        super().__init__(name, spec, flow)
        self.error = error
        self.cause = cause

    def step(self, frame: Frame, data: Any) -> tuple[State | None, Any]:
        entered = self.enter(frame)
        log = frame.execution.log
        if log is not None and log.config.level != "ALL":  # at ALL the state's wrapper logs it
            log.add("FailStateEntered", {"name": self.name, "input": data})
        try:
            error = self.error(data, frame) if self.error is not None else None
            cause = self.cause(data, frame) if self.cause is not None else None
        except ASLError as e:
            locate(e, self.name, entered)
            raise
        raise ASLError(error, cause, located=True)  # type: ignore[arg-type]


class ChoiceState(State):
    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 rules: list[tuple[Fn, str, Any]], default: str | None,
                 rule_output: list[Any]) -> None:
        super().__init__(name, spec, flow)
        # (predicate, next name, rule Assign) per rule; resolved to states after compile.
        self.rules = rules
        self.rule_output = rule_output
        self.resolved: list[tuple[Fn, State, Any, Any]] = []
        self.default_name = default
        self.default: State | None = None

    def step(self, frame: Frame, data: Any) -> tuple[State | None, Any]:
        entered = self.enter(frame)
        flow = self.flow
        try:
            if flow.jsonata:
                states = flow.states_binding(data, frame)
                for pred, nxt, assign, output in self.resolved:
                    if pred(states, frame):
                        out = output(states, frame) if output is not None else (
                            flow.output(states, frame) if flow.output is not None else data)
                        if out is not data:
                            measured(frame, self.name, out)
                        if assign is not None:
                            apply_assign(frame, assign(data, frame, states))
                        frame.execution.event_id += 1
                        return nxt, out
                return self._default(frame, data, data, states)
            eff = data if flow.input_path is None else flow.input_path(data, frame)
            for pred, nxt, assign, _ in self.resolved:
                if pred(eff, frame):
                    out = eff if flow.output_path is None else flow.output_path(eff, frame)
                    if assign is not None:  # after OutputPath, which sees the variables as they were
                        apply_assign(frame, assign(eff, frame, None))
                    frame.execution.event_id += 1
                    return nxt, out
            return self._default(frame, data, eff, None)
        except ASLError as e:
            locate(e, self.name, entered)
            raise

    def _default(self, frame: Frame, raw: Any, eff: Any, states: Any) -> tuple[State | None, Any]:
        if self.default is None:
            raise ASLError(errors.NO_CHOICE_MATCHED, "No Matches!", located=True)
        flow = self.flow
        if flow.jsonata:
            out = flow.output(states, frame) if flow.output is not None else raw
            if out is not raw:
                measured(frame, self.name, out)
        else:
            out = eff if flow.output_path is None else flow.output_path(eff, frame)
        if flow.assign is not None:  # after the output, which sees the variables as they were
            apply_assign(frame, flow.assign(eff, frame, states))
        frame.execution.event_id += 1
        return self.default, out


class WaitState(State):
    is_async = True

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 delay: Callable[[Any, Frame, Any], float]) -> None:
        super().__init__(name, spec, flow)
        self.delay = delay  # (effective input, frame, states) -> seconds to wait

    async def astep(self, frame: Frame, data: Any) -> tuple[State | None, Any]:
        entered = self.enter(frame)
        flow = self.flow
        try:
            if flow.jsonata:
                states = flow.states_binding(data, frame)
                seconds = self.delay(data, frame, states)
            else:
                eff = data if flow.input_path is None else flow.input_path(data, frame)
                seconds = self.delay(eff, frame, None)
        except ASLError as e:
            locate(e, self.name, entered)
            raise
        if seconds > 0:
            await sleep_within_deadline(frame.execution, seconds)
        try:
            if flow.jsonata:
                out = self.finish(frame, data, data, data)
            else:
                out = eff if flow.output_path is None else flow.output_path(eff, frame)
                if flow.assign is not None:  # after OutputPath, which sees the variables as they were
                    apply_assign(frame, flow.assign(eff, frame, None))
        except ASLError as e:
            locate(e, self.name, entered)
            raise
        frame.execution.event_id += 1
        return self.next, out


# --------------------------------------------------------------------------- retry/catch states


class RecoverableState(State):
    """Task, Parallel and Map: ``attempt`` does the work; Retry and Catch wrap it."""

    is_async = True
    attempt_events = 3  # events one failed attempt adds (e.g. Scheduled, Started, Failed)
    retry_base = 0

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 retriers: list[Retrier], catchers: list[Catcher]) -> None:
        super().__init__(name, spec, flow)
        self.retriers = retriers
        self.catchers = catchers
        self.failed_event = f"{self.type}StateFailed" if self.type in ("Map", "Parallel") else None

    async def attempt(self, frame: Frame, raw: Any, entered: int) -> Any:
        raise NotImplementedError

    async def astep(self, frame: Frame, data: Any) -> tuple[State | None, Any]:
        entered = self.enter(frame)
        counts: list[int] | None = None
        while True:
            try:
                out = await self.attempt(frame, data, entered)
                frame.execution.event_id += 1
                return self.next, out
            except ASLError as e:
                locate(e, self.name, entered)
                error = e
            retrier_index = -1
            for i, r in enumerate(self.retriers):
                if errors.matches(error.error, r.errors):
                    retrier_index = i
                    break
            if retrier_index >= 0:
                if counts is None:
                    counts = [0] * len(self.retriers)
                r = self.retriers[retrier_index]
                if counts[retrier_index] < r.max_attempts:
                    counts[retrier_index] += 1
                    frame.retry_count = sum(counts)
                    if frame.execution.metrics:
                        frame.execution.metrics.event("retry", frame.execution.machine_name, error.error[:64])
                    await sleep_within_deadline(frame.execution, r.delay(counts[retrier_index]))
                    continue
            if self.failed_event is not None and frame.execution.log is not None:
                frame.execution.log.add(self.failed_event, {"error": error.error, "cause": error.cause})
            for c in self.catchers:
                if errors.matches(error.error, c.errors):
                    if frame.execution.metrics:
                        frame.execution.metrics.event("catch", frame.execution.machine_name, error.error[:64])
                    return c.next, self.caught(frame, data, error, c)
            raise error

    def caught(self, frame: Frame, raw: Any, e: ASLError, c: Catcher) -> Any:
        err = error_output(e)
        frame.execution.event_id += 1
        if c.jsonata:
            states = self.flow.states_binding(raw, frame)
            states["errorOutput"] = err
            new_vars = c.assign(err, frame, states) if c.assign is not None else None
            out = c.output(states, frame) if c.output is not None else err
            if new_vars:
                apply_assign(frame, new_vars)
            measured(frame, self.name, out)
            return out
        if c.assign is not None:
            apply_assign(frame, c.assign(err, frame, None))
        if c.result_path is None:
            measured(frame, self.name, err)
            return err
        try:
            out = c.result_path(raw, err)
        except PathMissing as pm:
            raise invalid_path(pm) from None
        grow(frame, self.name, out, payload_size(err) + 32)
        return out


class TaskState(RecoverableState):
    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 retriers: list[Retrier], catchers: list[Catcher],
                 invoke: Callable[[Any, Frame, float | None], Any],
                 timeout: Callable[[Any, Frame, Any], float | None],
                 credentials: Fn | None) -> None:
        super().__init__(name, spec, flow, retriers, catchers)
        self.invoke = invoke  # async (effective input, frame, timeout) -> result
        self.resource = spec.get("Resource", "")
        self.timeout = timeout
        self.credentials = credentials

    async def attempt(self, frame: Frame, raw: Any, entered: int) -> Any:
        flow = self.flow
        ex = frame.execution
        ex.event_id += self.attempt_events
        states = None
        if flow.jsonata:
            states = flow.states_binding(raw, frame)
            eff = flow.arguments(states, frame) if flow.arguments is not None else raw
            timeout = self.timeout(raw, frame, states)
        else:
            if flow.input_path is not None:
                raw_eff = flow.input_path(raw, frame)
            else:
                raw_eff = raw
            eff = flow.parameters(raw_eff, frame) if flow.parameters is not None else raw_eff
            timeout = self.timeout(raw, frame, None)
        if self.credentials is not None:
            self.credentials(raw, frame)
        log = ex.log
        if log is not None:
            result = await self._logged_invoke(log, eff, frame, timeout)
        elif ex.metrics:
            started = ex.clock.now()
            try:
                result = await self.invoke(eff, frame, timeout)
            except ASLError as e:
                ex.metrics.task(ex.machine_name, ex.clock.now() - started, self.resource, e.error)
                raise
            ex.metrics.task(ex.machine_name, ex.clock.now() - started, self.resource)
        else:
            result = await self.invoke(eff, frame, timeout)
        if flow.jsonata:
            return self.finish(frame, raw, result, result)
        if flow.result_selector is not None:
            result = flow.result_selector(result, frame)
        return self.finish(frame, raw, result, result)


    async def _logged_invoke(self, log: Any, eff: Any, frame: Frame, timeout: float | None) -> Any:
        resource = self.resource
        log.add("LambdaFunctionScheduled", {"resource": resource, "input": eff,
                                            **({"timeoutInSeconds": int(timeout)} if timeout else {})})
        log.add("LambdaFunctionStarted", {})
        started = frame.execution.clock.now()
        try:
            result = await self.invoke(eff, frame, timeout)
        except ASLError as e:
            kind = "LambdaFunctionTimedOut" if e.error == errors.TIMEOUT else "LambdaFunctionFailed"
            log.add(kind, {"error": e.error, "cause": e.cause})
            if frame.execution.metrics:
                frame.execution.metrics.task(frame.execution.machine_name, frame.execution.clock.now() - started,
                                             self.resource, e.error)
            raise
        if frame.execution.metrics:
            frame.execution.metrics.task(frame.execution.machine_name, frame.execution.clock.now() - started,
                                         self.resource)
        log.add("LambdaFunctionSucceeded", {"output": result})
        return result


class ParallelState(RecoverableState):
    attempt_events = 0

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 retriers: list[Retrier], catchers: list[Catcher], branches: list[Block]) -> None:
        super().__init__(name, spec, flow, retriers, catchers)
        self.branches = branches
        self.inner_async = any(b.is_async for b in branches)

    async def attempt(self, frame: Frame, raw: Any, entered: int) -> Any:
        flow = self.flow
        ex = frame.execution
        ex.event_id += 1  # ParallelStateStarted
        ex.parallel_steps += 1
        if ex.log is not None:
            ex.log.add("ParallelStateStarted", {})
        if flow.jsonata:
            states = flow.states_binding(raw, frame)
            eff = flow.arguments(states, frame) if flow.arguments is not None else raw
        else:
            eff = flow.effective_input(raw, frame)
        size = frame.size if eff is raw else payload_size(eff)
        if not self.inner_async:
            results = []
            left, pace = FIRST_RUNS, None
            for b in self.branches:
                scope = inner_frame(frame, size)
                try:
                    results.append(b.run_sync(scope, eff))
                except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                    results.append(await b.resume(scope, s))
                left -= 1
                if not left:
                    pace = pace or Pace(FIRST_RUNS)
                    left = await paced(ex, pace)
        else:
            jobs: list[Callable[[], Any]] = [
                functools.partial(b.run, inner_frame(frame, size), eff) for b in self.branches]
            results = await run_concurrently(jobs, 0)
        ex.event_id += 1  # ParallelStateSucceeded
        if ex.log is not None:
            ex.log.add("ParallelStateSucceeded", {})
        if not flow.jsonata and flow.result_selector is not None:
            results = flow.result_selector(results, frame)
        return self.finish(frame, raw, results, results)


async def paced(ex: Any, pace: Pace) -> int:
    """A checkpoint between two batches of synchronous runs (branches, iterations): enforces the
    deadline, gives the loop back if the slice is used up; returns the next batch's size."""
    if pace.checkpoint(check_deadline(ex)):
        await give_back(ex)
    return pace.size


def inner_frame(frame: Frame, size: int, isolated: bool = False) -> Frame:
    """A Parallel branch's or Map iteration's scope: it reads the outer variables (a copy, so its
    own assignments stay inside), unless ``isolated`` (Distributed Map)."""
    if isolated:
        return Frame(frame.execution, {}, None, size)
    inner = Frame(frame.execution, dict(frame.vars), None, size)
    inner.var_bytes = frame.var_bytes
    return inner


def _size(value: Any, known: int) -> int:
    """The size bound of an iteration's input: the parent's (``known``), or measured (-1)."""
    return known if known >= 0 else payload_size(value)


async def run_concurrently(jobs: list[Callable[[], Any]], limit: int) -> list[Any]:
    """Run coroutine factories concurrently (at most ``limit`` at once, 0 = all); results in
    order. The first failure cancels the rest and is raised as itself."""
    if limit == 1:
        return [await job() for job in jobs]
    results: list[Any] = [None] * len(jobs)
    sem = asyncio.Semaphore(limit) if 0 < limit < len(jobs) else None

    async def one(i: int, job: Callable[[], Any]) -> None:
        if sem is None:
            results[i] = await job()
        else:
            async with sem:
                results[i] = await job()

    try:
        async with asyncio.TaskGroup() as tg:
            for i, job in enumerate(jobs):
                tg.create_task(one(i, job))
    except BaseExceptionGroup as group:
        for exc in group.exceptions:
            if isinstance(exc, ExecutionTimedOut):
                raise exc from None
        for exc in group.exceptions:
            if isinstance(exc, ASLError):
                raise exc from None
        raise group.exceptions[0] from None
    return results


class MapState(RecoverableState):
    attempt_events = 0

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 retriers: list[Retrier], catchers: list[Catcher], processor: Block,
                 items: Callable[[Any, Frame, Any], Any],
                 item_selector: Callable[[Any, Frame, Any], Any] | None,
                 max_concurrency: Callable[[Any, Frame, Any], int],
                 tolerated: Callable[[Any, Frame, Any], tuple[float | None, int | None]],
                 ) -> None:
        super().__init__(name, spec, flow, retriers, catchers)
        self.processor = processor
        self.items = items
        self.item_selector = item_selector
        self.max_concurrency = max_concurrency
        self.tolerated = tolerated
        proc = spec.get("ItemProcessor") or {}
        self.distributed = isinstance(proc, dict) and (proc.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"

    async def attempt(self, frame: Frame, raw: Any, entered: int) -> Any:
        flow = self.flow
        ex = frame.execution
        ex.event_id += 1  # MapStateStarted
        ex.parallel_steps += 1
        states = None
        if flow.jsonata:
            states = flow.states_binding(raw, frame)
            eff = raw
        else:
            eff = raw if flow.input_path is None else flow.input_path(raw, frame)
        items = self.items(eff, frame, states)
        limit = self.max_concurrency(eff, frame, states)
        pct, count = self.tolerated(eff, frame, states)
        # Items are parts of the state's input, so its size bounds theirs; selected items are new data.
        selector = self.item_selector
        item_size = frame.size if selector is None else -1
        left, pace = FIRST_RUNS, None
        if selector is None:
            inputs = list(items)
        else:
            inputs = []
            for i, item in enumerate(items):
                sel_frame = Frame(ex, frame.vars, {"Index": i, "Value": item})
                sel_frame.state_name = frame.state_name
                sel_frame.entered_at = frame.entered_at
                sel_frame.retry_count = frame.retry_count
                inputs.append(selector(eff, sel_frame, states))
                left -= 1
                if not left:
                    pace = pace or Pace(FIRST_RUNS)
                    left = await paced(ex, pace)
        processor = self.processor
        if ex.log is not None:
            ex.log.add("MapStateStarted", {"length": len(inputs)})
            results = await self._logged_iterations(frame, inputs, limit, pct, count, item_size)
        elif pct is None and count is None:
            if not processor.is_async:
                results = []
                # nothing in the iterations writes variables: they can share one scope
                shared = None if processor.assigns else inner_frame(frame, 0, self.distributed)
                lo, n, batch = 0, len(inputs), left
                while lo < n:
                    for v in inputs if lo == 0 and batch >= n else inputs[lo:lo + batch]:
                        ex.event_id += 1  # MapIterationStarted
                        if shared is None:
                            scope = inner_frame(frame, _size(v, item_size), self.distributed)
                        else:
                            scope = shared
                            shared.size = item_size if item_size >= 0 else payload_size(v)
                        try:
                            results.append(processor.run_sync(scope, v))
                        except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                            results.append(await processor.resume(scope, s))
                        ex.event_id += 1  # MapIterationSucceeded
                    lo += batch
                    if lo < n:
                        pace = pace or Pace(batch)
                        batch = await paced(ex, pace)
            else:
                jobs: list[Callable[[], Any]] = [functools.partial(self._iteration, frame, v, item_size) for v in inputs]
                results = await run_concurrently(jobs, min(limit, 40) if limit else 40)
        else:
            results = await self._tolerant(frame, inputs, limit, pct, count, item_size)
        ex.event_id += 1  # MapStateSucceeded
        if ex.log is not None:
            ex.log.add("MapStateSucceeded", {})
        if not flow.jsonata and flow.result_selector is not None:
            results = flow.result_selector(results, frame)
        return self.finish(frame, raw, results, results)

    async def _logged_iterations(self, frame: Frame, inputs: list[Any], limit: int, pct: float | None,
                                 count: int | None, item_size: int) -> list[Any]:
        log = frame.execution.log

        async def one(index: int, value: Any) -> Any:
            log.add("MapIterationStarted", {"index": index, "name": self.name})
            try:
                out = await self._iteration(frame, value, item_size)
            except ASLError as e:
                log.add("MapIterationFailed", {"index": index, "name": self.name, "error": e.error,
                                               "cause": e.cause})
                raise
            log.add("MapIterationSucceeded", {"index": index, "name": self.name})
            return out

        if pct is not None or count is not None:
            return await self._tolerant(frame, inputs, limit, pct, count, item_size)
        jobs: list[Callable[[], Any]] = [functools.partial(one, i, v) for i, v in enumerate(inputs)]
        return await run_concurrently(jobs, min(limit, 40) if limit else 40)

    async def _iteration(self, frame: Frame, value: Any, size: int) -> Any:
        ex = frame.execution
        # Iterations run as tasks, many ready at once: each starts within the slice or waits its turn.
        now = check_deadline(ex)
        if now >= TURNS.until and TURNS.must_wait(now):
            await give_back(ex)
        ex.event_id += 1
        processor = self.processor
        scope = inner_frame(frame, _size(value, size), self.distributed)
        if processor.is_async:
            out = await processor.run(scope, value)
        else:
            try:
                out = processor.run_sync(scope, value)
            except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                out = await processor.resume(scope, s)
        ex.event_id += 1
        return out

    async def _tolerant(self, frame: Frame, inputs: list[Any], limit: int,
                        pct: float | None, count: int | None, item_size: int) -> list[Any]:
        failures = 0
        results: list[Any] = [None] * len(inputs)
        last: ASLError | None = None

        def exceeded() -> bool:
            if count is not None and failures > count:
                return True
            if pct is not None and inputs and failures * 100.0 / len(inputs) > pct:
                return True
            return False

        for i, v in enumerate(inputs):
            try:
                results[i] = await self._iteration(frame, v, item_size)
            except ASLError as e:
                failures += 1
                last = e
                results[i] = None
                if exceeded():
                    break
        if failures and exceeded():
            raise ASLError(
                errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                "The specified tolerated failure threshold was exceeded",
                located=True,
            )
        del last
        return results
