"""The public engine: ``Engine.compile(definition) -> Machine``; ``await machine.execute(input)``."""
from __future__ import annotations

import importlib
import itertools
import time
import uuid
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, DefinitionError, ExecutionTimedOut, Problem
from express.asl.limits import huge_integer, integer_message, json_size
from express.engine.billing import MINIMUM_DURATION_MS, MINIMUM_MEMORY_MB, Prices, billed, memory_used_mb
from express.engine.clock import RealClock, VirtualClock
from express.engine.compiler import JSONPATH, Compiler
from express.engine.frame import Execution, Frame
from express.engine.history import EventLog, LoggingConfig
from express.engine.observers import LineSink, MetricSeries, MetricsRecorder, UsageHook, default_metrics, usage_hook
from express.engine.runner import Block, Suspended
from express.engine.tasks import ResourceProvider

DEFAULT_MAX_DURATION_S = 300.0  # Express workflows: 5 minutes
MAX_PAYLOAD_BYTES = 256 * 1024
_NO_INPUT: Any = object()
_names = itertools.count(1)
_name_prefix = uuid.uuid4().hex[:12]


@dataclass(slots=True)
class ExecutionResult:
    """The outcome of one execution, as StartSyncExecution reports it."""

    status: str  # "SUCCEEDED" | "FAILED" | "TIMED_OUT"
    output: Any
    error: str | None
    cause: str | None
    name: str
    start_time: float
    stop_time: float
    state_transitions: int
    # What AWS bills for the execution (express.engine.billing), computed once when it finished; the HTTP
    # answer, the Kafka outcome, the usage record and the metrics all report these.
    billed_duration_ms: int = MINIMUM_DURATION_MS
    billed_memory_mb: int = MINIMUM_MEMORY_MB

    @property
    def duration_s(self) -> float:
        return self.stop_time - self.start_time

    def without_output(self) -> ExecutionResult:
        """The same outcome without its output (what a keeper that never shows it holds)."""
        return ExecutionResult(self.status, None, self.error, self.cause, self.name, self.start_time, self.stop_time,
                               self.state_transitions, self.billed_duration_ms, self.billed_memory_mb)


class Engine:
    """Compiles definitions against a set of task functions and a clock.

    ``functions`` maps Lambda function names/ARNs (or other resource ARNs) to callables;
    ``clock`` is :class:`RealClock` by default, :class:`VirtualClock` for instant waits;
    ``max_duration_s`` caps every execution (Express: 5 minutes).
    Observability, all off by default, through the protocols of :mod:`express.engine.observers`:
    ``metrics`` is the :class:`MetricsRecorder` executions are counted in (``True``: the process's
    :data:`express.observe.metrics.RECORDER`, as the service uses); ``usage_sink`` is a :class:`UsageHook`
    told of every execution, or a line sink that receives a usage record per execution
    (:class:`express.observe.metering.UsageRecorder`, at ``prices``); ``log_sink`` receives the execution
    logs of machines compiled with a ``logging`` level other than OFF (:mod:`express.engine.history`);
    ``recorder`` is told of every execution (``record(machine, result, event_log)``), e.g. the console's
    recent executions.
    """

    def __init__(self, functions: dict[str, Callable[..., Any]] | None = None,
                 clock: RealClock | VirtualClock | None = None,
                 max_duration_s: float = DEFAULT_MAX_DURATION_S,
                 max_payload_bytes: int = MAX_PAYLOAD_BYTES,
                 region: str = "us-east-1", account: str = "000000000000",
                 metrics: MetricsRecorder | bool | None = None,
                 usage_sink: UsageHook | LineSink | None = None, log_sink: LineSink | None = None,
                 prices: Prices | None = None, recorder: Any = None,
                 integrations: ResourceProvider | bool = True) -> None:
        self.functions = dict(functions or {})
        # Runs the Task resources no function is bound to (HTTP, AWS, Kafka, other machines): True
        # makes the default express.integrations.Integrations on first need, False runs none.
        self._integrations: ResourceProvider | bool = integrations
        if isinstance(metrics, bool):
            metrics = default_metrics() if metrics else None
        self.metrics: MetricsRecorder | None = metrics
        self.usage_sink = usage_sink
        self.log_sink = log_sink
        self.prices = prices if prices is not None else Prices()
        self.usage: UsageHook | None = usage_hook(usage_sink, self.prices) if usage_sink is not None else None
        # recorder.record(machine, result, event_log_or_None) after every execution (the console's
        # ring of recent executions); None: nothing is kept.
        self.recorder = recorder
        self.clock = clock if clock is not None else RealClock()
        self.max_duration_s = float(max_duration_s)
        self.max_payload_bytes = int(max_payload_bytes)
        self.region = region
        self.account = account

    @property
    def integrations(self) -> ResourceProvider | None:
        """The provider of service integrations this engine compiles Tasks against, or None."""
        if self._integrations is True:
            # the integrations layer sits above the engine: imported by name, and only when asked for
            self._integrations = importlib.import_module("express.integrations").Integrations()
            self._owns_integrations = True
        provider = self._integrations
        return None if isinstance(provider, bool) else provider

    async def aclose(self) -> None:
        """Close the clients of the integrations this engine made itself (``integrations=True``):
        pooled HTTP connections and AWS clients. Idempotent; an engine given its integrations leaves
        them to their owner."""
        if getattr(self, "_owns_integrations", False):
            self._owns_integrations = False
            close = getattr(self._integrations, "aclose", None)
            if close is not None:
                await close()

    def _trace_log(self) -> Any:
        """For machines whose logging is OFF: the recorder's ``trace_log(clock, machine name)``, which
        answers a light trace for the execution or None (not sampled), if the recorder has one."""
        return getattr(self.recorder, "trace_log", None)

    def _traced_state(self) -> Any:
        """With a trace: the recorder's state wrapper that feeds it (``traced_state(state)``)."""
        return getattr(self.recorder, "traced_state", False) if self._trace_log() is not None else False

    def compile(self, definition: Any, name: str = "machine",
                logging: LoggingConfig | dict[str, Any] | None = None,
                mocks: Mapping[str, Any] | None = None) -> Machine:
        """Parse, validate and compile; raises DefinitionError listing every problem.

        ``logging``: the machine's loggingConfiguration (level ALL/ERROR/FATAL/OFF and
        includeExecutionData), as a :class:`LoggingConfig` or AWS's dict shape.
        ``mocks``: Task state name -> :class:`express.testing.mocking.MockedResponse` (anything with
        ``invoker(state_name)``): those states return or throw the mocked responses instead of
        calling their Resource (ValueError if one names no Task state)."""
        log_config = LoggingConfig.from_aws(logging)
        if isinstance(definition, (str, bytes, bytearray)):
            if not definition.strip():  # AWS: a blank text is a schema problem, not a JSON one
                raise DefinitionError([Problem("", "SCHEMA_VALIDATION_FAILED", "Definition must be a valid JSON object")])
            try:
                parsed = orjson.loads(definition)
            except orjson.JSONDecodeError as e:
                raise DefinitionError([Problem("", "INVALID_JSON_DESCRIPTION", f"Invalid JSON: {e}")]) from None
            huge = huge_integer(definition)  # orjson made it a float: refuse rather than change it
            if huge is not None:
                raise DefinitionError([Problem(huge[1], "SCHEMA_VALIDATION_FAILED",
                                               integer_message("The definition", *huge))])
            definition = parsed
        from express.asl.validation import validate

        try:
            problems = validate(definition)
            if problems:
                raise DefinitionError(problems)
            text = orjson.dumps(definition).decode()
        except (RecursionError, orjson.JSONEncodeError):
            raise DefinitionError([Problem("", "SCHEMA_VALIDATION_FAILED", "The definition is nested too deeply")]) from None
        tracks_context = "$$" in text or "states.context" in text
        # Only level ALL logs every state's Entered/Exited events; ERROR's events come from the
        # states that can fail, which log whenever the execution has an event log.
        mocked = {state: response.invoker(state) for state, response in mocks.items()} if mocks else None
        compiler = Compiler(self.functions, tracks_context, definition.get("QueryLanguage", JSONPATH),
                            logged=log_config.level == "ALL", mocked=mocked,
                            integrations=self.integrations)
        try:
            block = compiler.block(definition, "", compiler.top_language)
        except RecursionError:
            raise DefinitionError([Problem("", "SCHEMA_VALIDATION_FAILED", "The definition is nested too deeply")]) from None
        if compiler.problems:
            raise DefinitionError(compiler.problems)
        if mocked and len(compiler.mocked_found) < len(mocked):
            missing = sorted(set(mocked) - compiler.mocked_found)
            raise ValueError(f"mocks name no Task state of the machine '{name}': {', '.join(missing)}")
        timeout = definition.get("TimeoutSeconds")
        machine = Machine(self, block, name, definition, len(text),
                          float(timeout) if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) else None,
                          log_config)
        if machine._trace_log is not None:
            # logging OFF and a recorder that traces (the console): a second copy whose states
            # feed its light trace, run only for the executions the recorder samples
            traced = Compiler(self.functions, tracks_context, definition.get("QueryLanguage", JSONPATH),
                              logged=self._traced_state(), mocked=mocked,
                              integrations=self.integrations)
            machine._traced_block = traced.block(definition, "", traced.top_language)
        return machine


class Machine:
    """A compiled state machine; ``execute`` may be awaited concurrently any number of times."""

    def __init__(self, engine: Engine, block: Block, name: str, definition: dict[str, Any],
                 definition_size: int, timeout_s: float | None, logging: LoggingConfig | None = None) -> None:
        self.engine = engine
        self.block = block
        self.name = name
        self.definition = definition
        self.definition_size = definition_size
        self.arn = f"arn:aws:states:{engine.region}:{engine.account}:stateMachine:{name}"
        self.timeout_s = timeout_s
        self.logging = logging if logging is not None and logging.enabled else None
        # Anything to do around an execution (metrics, usage records, logs)? Decided once here so
        # that an unobserved machine pays nothing for the feature.
        self._metric_series: dict[str, MetricSeries] = {}
        self._observed = bool(engine.metrics is not None or engine.usage is not None or self.logging is not None
                              or engine.recorder is not None)
        self._trace_log = engine._trace_log() if self.logging is None else None
        self._traced_block: Block | None = None

    @property
    def may_wait(self) -> bool:
        """True when an execution may wait on something (a timer, a Task's call, a Retry back-off,
        branches or iterations awaited together): the definition has a Wait, Task, Parallel or Map
        state; such an execution needs a task of its own. False: it only computes, and its coroutine
        gives the loop back only at bare yields once its slice of loop time is used up
        (:mod:`express.engine.runner`), so a caller may drive it by hand (``coro.send(None)``) and
        hand it to a task only then."""
        return self.block.is_async

    async def execute(self, input: Any = _NO_INPUT, name: str | None = None, *,
                      input_size: int | None = None, arn: str | None = None,
                      mode: str = "api") -> ExecutionResult:
        """Run one execution to completion; never raises for anything the definition or the
        input does: the outcome is in the result.

        ``input_size``: the input's size in bytes as JSON, when the caller already knows it
        (it read the input as JSON text), to spare measuring it again. ``arn``: the execution
        ARN (``$$.Execution.Id``) when the caller reports one, e.g. with a unique suffix.
        ``mode``: how the execution was started (``async``, ``sync``, ``api``), for metrics and
        usage records."""
        engine = self.engine
        clock = engine.clock
        if input is _NO_INPUT:
            input = {}
        if name is None:
            name = f"{_name_prefix}-{next(_names)}"
        start = clock.now()
        cap = engine.max_duration_s
        definition_cap = self.timeout_s is not None and self.timeout_s < cap
        if definition_cap:
            cap = self.timeout_s  # type: ignore[assignment]
        # arn None: the Execution makes AWS's express:MACHINE:NAME:UUID form if $$ ever asks for it
        ex = Execution(self.name, self.arn, name, arn, input, start, clock,
                       start + cap, time.monotonic() + cap if not clock.virtual else time.monotonic() + engine.max_duration_s)
        if mode == "async":  # StartExecution: AWS's $$.Execution has RedriveCount (StartSyncExecution's has none)
            ex.redrive_count = 0
        observed = self._observed
        if observed:
            if engine.metrics is not None:
                ex.metrics = engine.metrics
                (self._metric_series.get(mode) or self._series(mode)).started += 1
            if self.logging is not None and self.logging.level != "FATAL":
                self._start_log(ex)
            elif self._traced_block is not None:  # logging OFF: the recorder's light trace, when it samples this one
                ex.log = self._trace_log(clock, self.name)  # type: ignore[misc]
        block = self.block if ex.log is None or self._traced_block is None else self._traced_block
        size = 0
        result: ExecutionResult
        try:
            # States.Runtime when the input cannot be written: nested too deeply, an integer out of range
            size = json_size(input, "the input") if input_size is None else input_size
            if size > engine.max_payload_bytes:
                raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                               "The input exceeds the maximum number of bytes service limit.", located=True)
            ex.limit = engine.max_payload_bytes
            frame = Frame(ex, None, None, size)
            if block.is_async:
                output = await block.run(frame, input)
            else:
                try:
                    output = block.run_sync(frame, input)
                except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                    output = await block.resume(frame, s)
            result = ExecutionResult("SUCCEEDED", output, None, None, name, start, clock.now(), ex.transitions)
        except ASLError as e:
            result = ExecutionResult("FAILED", None, e.error, e.cause, name, start, clock.now(), ex.transitions)
        except ExecutionTimedOut:
            if definition_cap:
                result = ExecutionResult("TIMED_OUT", None, None, None, name, start, clock.now(), ex.transitions)
            else:
                result = ExecutionResult("TIMED_OUT", None, errors.TIMEOUT,
                                         f"The execution exceeded its maximum duration of {cap:g} seconds.",
                                         name, start, clock.now(), ex.transitions)
        except RecursionError:
            result = ExecutionResult("FAILED", None, errors.RUNTIME, "The data is nested too deeply.",
                                     name, start, clock.now(), ex.transitions)
        except Exception as e:  # noqa: BLE001 - the one boundary: nothing escapes an execution
            # An engine defect must not take the caller down: report it as AWS reports internal errors.
            result = ExecutionResult("FAILED", None, errors.RUNTIME,
                                     f"Internal error while executing: {type(e).__name__}: {e}",
                                     name, start, clock.now(), ex.transitions)
        result.billed_duration_ms, result.billed_memory_mb = billed(
            result.stop_time - result.start_time, self.definition_size, size, ex.parallel_steps)
        if observed:
            self._finished(ex, result, mode, size)
        return result

    def _series(self, mode: str) -> MetricSeries:
        s = self._metric_series.get(mode)
        if s is None:
            assert self.engine.metrics is not None
            s = self._metric_series[mode] = self.engine.metrics.series(self.name, mode)
        return s

    def _start_log(self, ex: Execution) -> None:
        assert self.logging is not None
        log = ex.log = EventLog(self.logging, ex.arn, ex.clock)
        if self.logging.level == "ALL":
            log.add("ExecutionStarted", {"input": ex.input, "roleArn": "arn:aws:iam::000000000000:role/express"})

    def _finished(self, ex: Execution, result: ExecutionResult, mode: str, input_size: int) -> None:
        engine = self.engine
        duration = result.stop_time - result.start_time
        if engine.metrics is not None:
            series = self._metric_series.get(mode) or self._series(mode)
            if (result.status == "SUCCEEDED" and result.billed_duration_ms == MINIMUM_DURATION_MS
                    and result.billed_memory_mb == MINIMUM_MEMORY_MB):
                # the common case, inline: billed at AWS's minimum (100 ms x 64 MB)
                series.succeeded += 1
                series.minimum_billed += 1
                series.transitions += result.state_transitions
                series.duration_sum += duration
                series.buckets[bisect_left(series.bounds, duration)] += 1
            else:
                series.finished(result.status, result.error, duration, result.state_transitions,
                                result.billed_duration_ms, result.billed_memory_mb)
        if engine.usage is not None:
            engine.usage.record(self.name, mode, result,
                                memory_used_mb(self.definition_size, input_size, ex.parallel_steps))
        log = ex.log
        if log is None and self.logging is not None and result.status != "SUCCEEDED":
            log = EventLog(self.logging, ex.arn, ex.clock)  # FATAL: only the execution's end is logged
        if log is not None and (log.events or result.status != "SUCCEEDED"):
            if result.status == "SUCCEEDED":
                log.add("ExecutionSucceeded", {"output": result.output})
            elif result.status == "FAILED":
                log.add("ExecutionFailed", {"error": result.error, "cause": result.cause})
            else:
                # AWS's answer for a machine's own TimeoutSeconds has no error or cause (as recorded), but
                # its ExecutionTimedOut history event names States.Timeout: so does this one
                log.add("ExecutionTimedOut", {"error": result.error or errors.TIMEOUT, "cause": result.cause})
            if engine.log_sink is not None:
                lines = log.lines()
                if lines:
                    engine.log_sink.emit(lines)
        if engine.recorder is not None:
            engine.recorder.record(self, result, log)
