"""Compiled states: each ASL state becomes an object whose ``step``/``astep`` does its whole job.

This module holds the base :class:`State`, retry and catch, and the states that run no branches (Pass,
Succeed, Fail, Choice, Wait, Task); Parallel is in :mod:`express.engine.branches`, Map in
:mod:`express.engine.map_state`, input/output processing in :mod:`express.engine.dataflow` (compiled
closures: a field that is absent costs nothing at run time). Errors raised while a state runs are ASLErrors; the state adds
AWS's "An error occurred while executing the state ..." prefix to the engine's own runtime errors
before its Retry and Catch see them.
"""
from __future__ import annotations

import functools
import importlib
import random
from collections.abc import Callable
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, PathMissing
from express.asl.limits import MAX_DEPTH
from express.engine.dataflow import (
    Dataflow,
    Fn,
    _discard,
    _path_depth,
    apply_assign,
    grow,
    invalid_path,
    locate,
    measured,
    payload_size,
    remeasure,
    written_size,
)
from express.engine.frame import Frame
from express.engine.runner import (
    sleep_within_deadline,
)


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
    # The state's own step where a fused step stands in for it (express.engine.pass_runs)
    single: Callable[[Frame, Any], tuple[State | None, Any]] | None = None

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

    def finish(self, frame: Frame, raw: Any, result: Any, assign_input: Any, size: int = -1) -> Any:
        """Result -> output (ResultSelector is the caller's), and Assign, for JSONPath or JSONata.

        ``size``: a bound of the result's JSON size the caller already has (Map and Parallel, from
        their iterations' and branches' bounds), when it also shows that the result nests shallowly
        enough to be written where ResultPath puts it; -1: unknown, the result is measured."""
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
        if size > frame.execution.limit:
            size = -1  # a bound too loose to use: measured instead
        if rp is None:
            if size >= 0:
                frame.size = size
            else:
                measured(frame, self.name, result)
        elif rp is not _discard:
            added = (written_size(result, self.result_depth) if size < 0 else size) + self.result_key_bytes
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
        # what ``result`` was compiled from, for fusing the state into a run: (field, value)
        self.source: tuple[str, Any] | None = None
        if not flow.jsonata and flow.parameters is None:
            if "Result" in spec:
                self.source = ("Result", spec["Result"])
            elif "Parameters" in spec:
                self.source = ("Parameters", spec["Parameters"])

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

            self.step = self.single = step_replace  # type: ignore[method-assign]
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

        self.step = self.single = step_set  # type: ignore[method-assign]


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


def _integration_kind(resource: str) -> str:
    """The low-cardinality integration label of a Task resource (lambda, http, aws-sdk, sqs, kafka,
    states, function...): named by the integrations layer, which sits above the engine and is
    therefore imported by name."""
    kind: Callable[[str], str] = importlib.import_module("express.integrations").kind
    return kind(resource)[:32]


class TaskState(RecoverableState):
    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 retriers: list[Retrier], catchers: list[Catcher],
                 invoke: Callable[[Any, Frame, float | None], Any],
                 timeout: Callable[[Any, Frame, Any], float | None],
                 credentials: Fn | None) -> None:
        super().__init__(name, spec, flow, retriers, catchers)
        self.invoke = invoke  # async (effective input, frame, timeout) -> result
        self.resource = spec.get("Resource", "")
        self.integration = _integration_kind(self.resource)  # the metrics label, named once here
        self.timeout = timeout
        self.credentials = credentials
        # an integration that acts with the Task's Credentials (e.g. assumes its RoleArn) gets them
        self.takes_credentials = bool(getattr(invoke, "takes_credentials", False))

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
        invoke: Callable[..., Any] = self.invoke
        if self.credentials is not None:
            credentials = self.credentials(states if flow.jsonata else raw, frame)
            if self.takes_credentials:
                invoke = functools.partial(invoke, credentials=credentials)
        log = ex.log
        if log is not None:
            result = await self._logged_invoke(log, invoke, eff, frame, timeout)
        elif ex.metrics:
            started = ex.clock.now()
            try:
                result = await invoke(eff, frame, timeout)
            except ASLError as e:
                ex.metrics.task(ex.machine_name, ex.clock.now() - started, self.integration, e.error)
                raise
            ex.metrics.task(ex.machine_name, ex.clock.now() - started, self.integration)
        else:
            result = await invoke(eff, frame, timeout)
        if flow.jsonata:
            return self.finish(frame, raw, result, result)
        if flow.result_selector is not None:
            result = flow.result_selector(result, frame)
        return self.finish(frame, raw, result, result)


    async def _logged_invoke(self, log: Any, invoke: Any, eff: Any, frame: Frame, timeout: float | None) -> Any:
        resource = self.resource
        log.add("LambdaFunctionScheduled", {"resource": resource, "input": eff,
                                            **({"timeoutInSeconds": int(timeout)} if timeout else {})})
        log.add("LambdaFunctionStarted", {})
        started = frame.execution.clock.now()
        try:
            result = await invoke(eff, frame, timeout)
        except ASLError as e:
            kind = "LambdaFunctionTimedOut" if e.error == errors.TIMEOUT else "LambdaFunctionFailed"
            log.add(kind, {"error": e.error, "cause": e.cause})
            if frame.execution.metrics:
                frame.execution.metrics.task(frame.execution.machine_name, frame.execution.clock.now() - started,
                                             self.integration, e.error)
            raise
        if frame.execution.metrics:
            frame.execution.metrics.task(frame.execution.machine_name, frame.execution.clock.now() - started,
                                         self.integration)
        log.add("LambdaFunctionSucceeded", {"output": result})
        return result
