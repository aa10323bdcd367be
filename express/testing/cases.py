"""Testing workflows: run a machine with mocked Task states on a virtual clock, record the path
it took, and assert on the outcome and the path with messages that show both.

Used by the pytest plugin (:mod:`express.testing.pytest_plugin`, fixtures ``express_workflow`` and
``express_clock``) and by ``express test`` (:func:`run_mock_config`); nothing here imports pytest.

The path comes from the engine's own execution log: a workflow compiled here logs at level ALL
into memory (every state's Entered/Exited event with its input and output), and the engine's
``recorder`` hook hands the log over when the execution ends. Machines compiled elsewhere pay
nothing for it. Attempts (invocations, retries included) are recorded for mocked Task states.
"""
from __future__ import annotations

import asyncio
import os
import pathlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from express.asl.errors import ASLError, DefinitionError
from express.engine.clock import VirtualClock
from express.engine.history import LoggingConfig
from express.engine.machine import Engine, ExecutionResult, Machine
from express.serve.registry import MACHINE_SUFFIX
from express.testing.mocking import Expectation, MockCase, MockConfig, MockConfigError, MockedResponse

ANY: Any = object()  # "not checked", for the assert_* arguments
_TRACE = LoggingConfig("ALL", include_execution_data=True)
_SHOWN = 160  # characters of a JSON value shown in a message


@dataclass(frozen=True, slots=True)
class Step:
    """One state entered: its name and type, the input it got and the output it produced (ANY
    when it did not exit: it failed, or the execution ended while it ran)."""

    name: str
    type: str
    input: Any
    output: Any = ANY

    @property
    def exited(self) -> bool:
        return self.output is not ANY


@dataclass(frozen=True, slots=True)
class Attempt:
    """One invocation of a mocked Task state: its effective input and its result or error."""

    input: Any
    output: Any = None
    error: str | None = None
    cause: str | None = None


class WorkflowAssertionError(AssertionError):
    """A failed ``Run.assert_*``: the message shows the first difference and the path taken."""


@dataclass(slots=True)
class Run:
    """One finished execution of a :class:`Workflow`."""

    result: ExecutionResult
    path: list[Step]
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)
    label: str = ""

    # ------------------------------------------------------------------ the outcome
    @property
    def status(self) -> str:
        return self.result.status

    @property
    def output(self) -> Any:
        return self.result.output

    @property
    def error(self) -> str | None:
        return self.result.error

    @property
    def cause(self) -> str | None:
        return self.result.cause

    @property
    def duration_s(self) -> float:
        """How long the execution took on its clock (virtual seconds on a VirtualClock)."""
        return self.result.duration_s

    @property
    def states(self) -> list[str]:
        """The names of the states entered, in order."""
        return [s.name for s in self.path]

    def step(self, name: str, occurrence: int = 0) -> Step:
        """The ``occurrence``-th (from 0) entry of the state ``name``."""
        found = [s for s in self.path if s.name == name]
        if occurrence >= len(found):
            self._fail(f"the state '{name}' was entered {len(found)} time(s), not {occurrence + 1}")
        return found[occurrence]

    # ------------------------------------------------------------------ assertions
    def assert_succeeded(self, output: Any = ANY) -> Run:
        __tracebackhide__ = True
        return self.assert_outcome("SUCCEEDED", output=output)

    def assert_failed(self, error: Any = ANY, cause: Any = ANY) -> Run:
        __tracebackhide__ = True
        return self.assert_outcome("FAILED", error=error, cause=cause)

    def assert_timed_out(self) -> Run:
        __tracebackhide__ = True
        return self.assert_outcome("TIMED_OUT")

    def assert_outcome(self, status: str, output: Any = ANY, error: Any = ANY, cause: Any = ANY) -> Run:
        __tracebackhide__ = True
        problems = self.outcome_differences(status, output, error, cause)
        if problems:
            self._fail(problems[0])
        return self

    def assert_path(self, expected: Sequence[str | Mapping[str, Any]]) -> Run:
        """The states entered, in order: each a name, or ``{"name": ..., "input": ..., "output": ...}``
        (only the fields given are compared)."""
        __tracebackhide__ = True
        problem = self.path_difference(expected)
        if problem is not None:
            self._fail(problem[0], mark=problem[1])
        return self

    def assert_state(self, name: str, input: Any = ANY, output: Any = ANY, occurrence: int = 0) -> Run:
        __tracebackhide__ = True
        step = self.step(name, occurrence)
        index = self.path.index(step)
        for what, want, got in (("input", input, step.input), ("output", output, step.output)):
            if want is ANY:
                continue
            if got is ANY:
                self._fail(f"the state '{name}' did not exit, so it has no {what}", mark=index)
            diff = first_difference(want, got)
            if diff is not None:
                self._fail(f"the {what} of the state '{name}' differs {_describe(diff)}", mark=index)
        return self

    def assert_attempts(self, state: str, count: int) -> Run:
        """The mocked Task state ``state`` was invoked ``count`` times (retries included)."""
        __tracebackhide__ = True
        got = len(self.attempts.get(state, ()))
        if got != count:
            self._fail(f"the state '{state}' was invoked {got} time(s), expected {count}"
                       + ("" if state in self.attempts or got else " (attempts are recorded for mocked states)"))
        return self

    # ------------------------------------------------------------------ comparisons (no raising)
    def outcome_differences(self, status: str, output: Any = ANY, error: Any = ANY, cause: Any = ANY) -> list[str]:
        r = self.result
        if r.status != status:
            got = f"{r.status} ({r.error}: {_clip(r.cause)})" if r.status != "SUCCEEDED" else "SUCCEEDED"
            return [f"expected the execution to end {status}, it ended {got}"]
        problems = []
        if output is not ANY:
            diff = first_difference(output, r.output)
            if diff is not None:
                problems.append(f"the output differs {_describe(diff)}")
        for what, want, actual in (("error", error, r.error), ("cause", cause, r.cause)):
            if want is not ANY and want != actual:
                problems.append(f"the {what} differs: expected {_show(want)}, got {_show(actual)}")
        return problems

    def path_difference(self, expected: Sequence[str | Mapping[str, Any]]) -> tuple[str, int] | None:
        for i, want in enumerate(expected):
            spec = {"name": want} if isinstance(want, str) else dict(want)
            if i >= len(self.path):
                return (f"the path ends after {len(self.path)} state(s): expected state {i + 1} to be "
                        f"'{spec.get('name')}'", len(self.path))
            step = self.path[i]
            if "name" in spec and spec["name"] != step.name:
                return f"the path differs at state {i + 1}: expected '{spec['name']}', got '{step.name}'", i
            for what in ("input", "output"):
                if what in spec:
                    got = getattr(step, what)
                    if got is ANY:
                        return f"the state {i + 1} ('{step.name}') did not exit, so it has no {what}", i
                    diff = first_difference(spec[what], got)
                    if diff is not None:
                        return f"the {what} of state {i + 1} ('{step.name}') differs {_describe(diff)}", i
        if len(self.path) > len(expected):
            extra = self.path[len(expected)]
            return (f"the path goes on after {len(expected)} state(s): state {len(expected) + 1} is "
                    f"'{extra.name}'", len(expected))
        return None

    def expectation_differences(self, expect: Expectation) -> list[str]:
        """What differs from an ``ExpressExpect`` expectation (empty: it is met)."""
        problems = self.outcome_differences(
            expect.status, output=expect.output if expect.given("output") else ANY,
            error=expect.error if expect.given("error") else ANY,
            cause=expect.cause if expect.given("cause") else ANY)
        if problems and problems[0].startswith("expected the execution to end"):
            return problems
        if expect.path is not None:
            diff = self.path_difference(expect.path)
            if diff is not None:
                problems.append(diff[0])
        for state, count in (expect.attempts or {}).items():
            got = len(self.attempts.get(state, ()))
            if got != count:
                problems.append(f"the state '{state}' was invoked {got} time(s), expected {count}")
        return problems

    # ------------------------------------------------------------------ showing it
    def describe(self, mark: int | None = None) -> str:
        """The outcome and the path taken, one state per line with its input and output."""
        r = self.result
        outcome = r.status if r.status == "SUCCEEDED" else f"{r.status} {r.error or ''}: {_clip(r.cause)}"
        lines = [f"{self.label + ': ' if self.label else ''}{outcome} after {len(self.path)} state(s), "
                 f"{r.duration_s:g} s on the clock"]
        for i, s in enumerate(self.path):
            tries = self.attempts.get(s.name)
            extra = f", {len(tries)} attempt(s)" if tries and len(tries) > 1 else ""
            pointer = "  <- first difference" if mark == i else ""
            lines.append(f"  {i + 1}. {s.name} ({s.type}{extra}){pointer}")
            lines.append(f"       input:  {_show(s.input)}")
            lines.append(f"       output: {_show(s.output) if s.exited else '(did not exit)'}")
        if mark is not None and mark >= len(self.path):
            lines.append(f"  {len(self.path) + 1}. (nothing)  <- first difference")
        if r.status == "SUCCEEDED":
            lines.append(f"  output: {_show(r.output)}")
        return "\n".join(lines)

    def _fail(self, message: str, mark: int | None = None) -> Any:
        __tracebackhide__ = True
        raise WorkflowAssertionError(f"{message}\n\npath taken: {self.describe(mark)}")


def first_difference(expected: Any, actual: Any, pointer: str = "") -> tuple[str, Any, Any] | None:
    """Where two JSON values first differ: (JSON pointer, expected part, actual part), or None.
    ``ANY`` in ``expected`` matches anything there."""
    if expected is ANY:
        return None
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            sub = pointer + "/" + str(key).replace("~", "~0").replace("/", "~1")
            if key not in actual:
                return sub, expected[key], _MISSING
            diff = first_difference(expected[key], actual[key], sub)
            if diff is not None:
                return diff
        for key in actual:
            if key not in expected:
                return pointer + "/" + str(key).replace("~", "~0").replace("/", "~1"), _MISSING, actual[key]
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            diff = first_difference(e, a, f"{pointer}/{i}")
            if diff is not None:
                return diff
        if len(expected) != len(actual):
            n = min(len(expected), len(actual))
            return (f"{pointer}/{n}", expected[n] if n < len(expected) else _MISSING,
                    actual[n] if n < len(actual) else _MISSING)
        return None
    # bool is not a number in JSON: True must not equal 1
    if type(expected) is bool or type(actual) is bool:
        same = type(expected) is type(actual) and expected == actual
    else:
        same = type(expected) is type(actual) or (
            isinstance(expected, (int, float)) and isinstance(actual, (int, float)))
        same = same and expected == actual
    return None if same else (pointer, expected, actual)


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING: Any = _Missing()


def _describe(diff: tuple[str, Any, Any]) -> str:
    where, want, got = diff
    return f"at {where or '/'}: expected {_show(want)}, got {_show(got)}"


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(missing)"
    if value is ANY:
        return "(anything)"
    try:
        text = orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    return _clip(text)


def _clip(text: str | None) -> str:
    if text is None:
        return "null"
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


# ---------------------------------------------------------------------- running workflows
class _Trace:
    """The engine's ``recorder``: keeps each execution's event log until its Run is built, and
    the attempts of mocked states by execution name."""

    def __init__(self) -> None:
        self.logs: dict[str, Any] = {}
        self.attempts: dict[str, dict[str, list[Attempt]]] = {}

    def record(self, machine: Any, result: ExecutionResult, log: Any) -> None:
        self.logs[result.name] = log

    def wrap(self, state: str, response: MockedResponse) -> _RecordedResponse:
        return _RecordedResponse(self, response)

    def run(self, result: ExecutionResult, label: str) -> Run:
        log = self.logs.pop(result.name, None)
        return Run(result, _path(log), self.attempts.pop(result.name, {}), label)


class _RecordedResponse:
    """A mocked response whose invoker also records each attempt, by execution name."""

    def __init__(self, trace: _Trace, response: MockedResponse) -> None:
        self.trace = trace
        self.response = response

    def invoker(self, state: str) -> Any:
        inner = self.response.invoker(state)
        attempts = self.trace.attempts

        async def recorded(eff: Any, frame: Any, timeout: float | None) -> Any:
            tries = attempts.setdefault(frame.execution.name, {}).setdefault(state, [])
            try:
                out = await inner(eff, frame, timeout)
            except ASLError as e:
                tries.append(Attempt(eff, None, e.error, e.cause))
                raise
            tries.append(Attempt(eff, out))
            return out

        return recorded


def _path(log: Any) -> list[Step]:
    """The states entered, from an execution log at level ALL. An Exited event closes the
    earliest open entry of its state (Map iterations and Parallel branches interleave)."""
    if log is None:
        return []
    steps: list[list[Any]] = []
    open_: dict[str, list[int]] = {}
    for event_type, _at, details in log.events:
        if event_type.endswith("StateEntered"):
            name = details.get("name", "")
            open_.setdefault(name, []).append(len(steps))
            steps.append([name, event_type[: -len("StateEntered")], details.get("input"), ANY])
        elif event_type.endswith("StateExited"):
            pending = open_.get(details.get("name", ""))
            if pending:
                steps[pending.pop(0)][3] = details.get("output")
    return [Step(*s) for s in steps]


class Workflow:
    """A state machine compiled for testing: optionally one test case of a mock config, on a
    virtual clock by default, recording the path of every run."""

    def __init__(self, definition: Any, *, name: str = "machine", mock_config: MockConfig | str | os.PathLike[str] | None = None,
                 test_case: str | None = None, functions: Mapping[str, Callable[..., Any]] | None = None,
                 clock: Any = None, max_duration_s: float | None = None) -> None:
        if isinstance(definition, (str, os.PathLike)) and not _looks_like_json(definition):
            path = pathlib.Path(definition)
            definition = path.read_bytes()
            if name == "machine":
                name = path.name[: -len(MACHINE_SUFFIX)] if path.name.endswith(MACHINE_SUFFIX) else path.stem
        if isinstance(mock_config, (str, os.PathLike)):
            mock_config = MockConfig.load(mock_config)
        if test_case is not None and mock_config is None:
            raise ValueError(f"test case '{test_case}' given without a mock config")
        self.trace = _Trace()
        self.clock = clock if clock is not None else VirtualClock()
        kw: dict[str, Any] = {} if max_duration_s is None else {"max_duration_s": max_duration_s}
        self.engine = Engine(functions=dict(functions or {}), clock=self.clock, recorder=self.trace, **kw)
        self.name = name
        self.test_case = test_case
        self.label = f"{name}#{test_case}" if test_case else name
        self.machine: Machine
        if mock_config is not None and test_case is not None:
            self.machine = mock_config.compile(self.engine, definition, name, test_case, _TRACE, wrap=self.trace.wrap)
        else:
            self.machine = self.engine.compile(definition, name=name, logging=_TRACE)

    async def arun(self, input: Any = None, name: str | None = None) -> Run:
        """Run one execution (in a running event loop: ``await workflow.arun(...)``)."""
        result = await self.machine.execute({} if input is None else input, name=name)
        return self.trace.run(result, self.label)

    def run(self, input: Any = None, name: str | None = None) -> Run:
        """Run one execution from synchronous code (a plain test function)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run_closing(input, name))
        raise RuntimeError("Workflow.run() is for synchronous code; in a coroutine, await workflow.arun(...)")

    async def _run_closing(self, input: Any, name: str | None) -> Run:
        try:
            return await self.arun(input, name)
        finally:  # the loop ends with this run: so do the integrations' pooled clients
            await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled clients of the integrations the workflow's unmocked states used."""
        await self.engine.aclose()


def _looks_like_json(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip()[:1] in ("{", "[")


# ---------------------------------------------------------------------- express test
@dataclass(slots=True)
class CaseResult:
    """The outcome of one test case under ``express test``: passed, failed (``problems``) or an
    error (``error``: it could not run)."""

    case: MockCase
    run: Run | None = None
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0  # real time it took

    @property
    def passed(self) -> bool:
        return self.error is None and not self.problems

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else ("ERROR" if self.error is not None else "FAIL")


def machine_path(machine_dir: pathlib.Path, name: str) -> pathlib.Path:
    return machine_dir / f"{name}{MACHINE_SUFFIX}"


async def run_mock_config(config: MockConfig, machine_dir: pathlib.Path,
                          functions: Mapping[str, Callable[..., Any]] | None = None,
                          cases: Iterable[MockCase] | None = None) -> list[CaseResult]:
    """Run every test case (or ``cases``) against its machine in ``machine_dir`` (NAME.asl.json)
    on a virtual clock, and check each against its ``ExpressExpect`` (default: it succeeds)."""
    results = []
    definitions: dict[str, bytes | str] = {}
    for case in (cases if cases is not None else config.cases()):
        started = time.perf_counter()
        outcome = CaseResult(case)
        try:
            definition = definitions.get(case.machine)
            if definition is None:
                path = machine_path(machine_dir, case.machine)
                try:
                    definition = definitions[case.machine] = await asyncio.to_thread(path.read_bytes)
                except OSError as e:
                    raise _CaseError(f"cannot read the state machine '{case.machine}': {path}: "
                                     f"{e.strerror or e}") from None
            workflow = Workflow(definition, name=case.machine, mock_config=config, test_case=case.name,
                                functions=functions)
            expect = case.expect or Expectation()
            try:
                run = outcome.run = await workflow.arun(expect.input)
            finally:
                await workflow.aclose()
            outcome.problems = run.expectation_differences(expect)
        except _CaseError as e:
            outcome.error = str(e)
        except MockConfigError as e:
            outcome.error = str(e)
        except DefinitionError as e:
            outcome.error = "; ".join(f"{machine_path(machine_dir, case.machine)}: {p}" for p in e.problems)
        except ValueError as e:
            outcome.error = str(e)
        outcome.seconds = time.perf_counter() - started
        results.append(outcome)
    return results


class _CaseError(Exception):
    pass


def format_result(result: CaseResult) -> str:
    """One line per test case (and, when it did not pass, why and the path taken)."""
    label = result.case.label
    if result.error is not None:
        return f"ERROR {label}: {result.error}"
    run = result.run
    assert run is not None
    took = f"{len(run.path)} states, {run.duration_s:g} s on the clock, {result.seconds * 1000:.1f} ms"
    if result.passed:
        return f"PASS  {label}: {run.status} ({took})"
    detail = "\n".join(f"      {p}" for p in result.problems)
    path = "\n".join("      " + line for line in run.describe().splitlines())
    return f"FAIL  {label}: {result.problems[0]}\n{detail}\n      path taken:\n{path}"


def summary(results: Sequence[CaseResult]) -> str:
    passed = sum(r.passed for r in results)
    errors = sum(r.error is not None for r in results)
    failed = len(results) - passed - errors
    return (f"{len(results)} test case(s): {passed} passed, {failed} failed"
            + (f", {errors} could not run" if errors else ""))


def junit_xml(results: Sequence[CaseResult], suite: str) -> bytes:
    """The results as a JUnit XML report (one testsuite, a testcase per test case)."""
    import xml.etree.ElementTree as ET

    failures = sum(r.error is None and not r.passed for r in results)
    errors = sum(r.error is not None for r in results)
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures),
                       errors=str(errors), skipped="0", time=f"{sum(r.seconds for r in results):.6f}")
    for r in results:
        tc = ET.SubElement(ts, "testcase", classname=r.case.machine, name=r.case.name, time=f"{r.seconds:.6f}")
        if r.error is not None:
            ET.SubElement(tc, "error", message=_clip(r.error), type="express.TestCaseError").text = r.error
        elif r.problems:
            el = ET.SubElement(tc, "failure", message=_clip(r.problems[0]), type="express.ExpectationFailed")
            el.text = "\n".join(r.problems) + ("\n\npath taken: " + r.run.describe() if r.run else "")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
