"""Mocked service integrations in Step Functions Local's format (``MockConfigFile.json``).

A mock config names, per state machine, test cases that map Task state names to mocked
responses; a mocked response gives, per invocation of the state ("0", "1-2", ... counted from 0
within one execution, retries included), a ``Return`` (the task's result, verbatim: for
``arn:aws:states:::lambda:invoke`` that is Lambda's response envelope ``{"StatusCode": 200,
"Payload": ...}``, for other resources whatever the service returns) or a ``Throw`` (``Error``
and ``Cause``, seen by Retry and Catch as the service's error would be)::

    {"StateMachines": {"M": {"TestCases": {"HappyPath": {"LambdaState": "MockedLambdaSuccess"}}}},
     "MockedResponses": {"MockedLambdaSuccess": {"0": {"Return": {"StatusCode": 200, "Payload": {}}}}}}

A test case is compiled into a variant of its machine once (:meth:`MockConfig.compile`,
:meth:`MockConfig.variant`): the mocked states' Resource is never bound or called, the others
run as usual. The invocation counters live on the execution, so concurrent executions of a
variant do not share them. An invocation with no mocked response fails the execution with
``States.Runtime`` naming the state, as Step Functions Local fails it.

Express's own extension, ``ExpressExpect`` beside ``TestCases`` (other tools ignore fields
there; LocalStack refuses anything but strings inside a test case), gives a test case's input
and expected outcome for ``express test`` and the pytest plugin (:mod:`express.testing.cases`)::

    "ExpressExpect": {"RetryPath": {"input": {}, "status": "SUCCEEDED", "output": {...},
                                    "path": ["LambdaState", "SQSState"], "attempts": {"LambdaState": 4}}}
"""
from __future__ import annotations

import bisect
import dataclasses
import os
import re
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, DefinitionError
from express.engine.tasks import Invoker

if TYPE_CHECKING:
    from express.engine.frame import Frame
    from express.engine.machine import Engine, Machine

ENV_VAR = "SFN_MOCK_CONFIG"  # as Step Functions Local and LocalStack read it
EXPECT_FIELD = "ExpressExpect"
STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT")
MAX_CONFIG_BYTES = 16 * 1024 * 1024
_RANGE = re.compile(r"^(0|[1-9][0-9]{0,8})(?:-(0|[1-9][0-9]{0,8}))?$")
_UNSET: Any = object()


class MockConfigError(ValueError):
    """A mock config problem, or a test case that cannot be used: each problem is a JSON
    pointer into the mock config and a reason."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {pointer or '/'}: {reason}" for pointer, reason in self.problems))


def _ptr(*parts: object) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One mocked invocation: ``result`` (the Return value as JSON) or ``error``/``cause``."""

    result: bytes | None
    error: str | None = None
    cause: str | None = None

    @property
    def value(self) -> Any:
        return None if self.result is None else orjson.loads(self.result)


class MockedResponse:
    """A named entry of ``MockedResponses``: the outcome of each invocation of a mocked state."""

    __slots__ = ("name", "_starts", "_ranges")

    def __init__(self, name: str, ranges: list[tuple[int, int, Outcome]]) -> None:
        self.name = name
        self._ranges = sorted(ranges, key=lambda r: r[0])
        self._starts = [r[0] for r in self._ranges]

    def at(self, invocation: int) -> Outcome | None:
        """The outcome of the ``invocation``-th call (from 0), or None where none is given."""
        i = bisect.bisect_right(self._starts, invocation) - 1
        if i < 0:
            return None
        start, end, outcome = self._ranges[i]
        return outcome if invocation <= end else None

    def invoker(self, state: str) -> Invoker:
        """The Task invoker that replaces ``state``'s Resource: counts the state's invocations on
        the execution and returns or throws the mocked outcome."""
        at = self.at
        response = self.name

        async def mocked(eff: Any, frame: Frame, timeout: float | None) -> Any:
            ex = frame.execution
            calls: dict[str, int] | None = getattr(ex, "mock_calls", None)
            if calls is None:
                calls = ex.mock_calls = {}
            n = calls.get(state, 0)
            calls[state] = n + 1
            outcome = at(n)
            if outcome is None:
                raise ASLError(errors.RUNTIME,
                               f"The mocked response '{response}' has no response for invocation {n} of the state "
                               "(invocations count from 0, retries included)")
            if outcome.result is None:
                raise ASLError(outcome.error or "", outcome.cause, located=True)
            if len(outcome.result) > ex.limit:
                raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                               f"The state/task '{state}' returned a result with a size exceeding the maximum "
                               "number of bytes service limit.", located=True)
            return orjson.loads(outcome.result)  # a fresh copy per invocation

        return mocked

    def __repr__(self) -> str:
        return f"MockedResponse({self.name!r})"


@dataclass(frozen=True, slots=True)
class Expectation:
    """``ExpressExpect`` of one test case: its input and the outcome to check (unset: not checked)."""

    input: Any = dataclasses.field(default_factory=dict)
    status: str = "SUCCEEDED"
    output: Any = _UNSET
    error: Any = _UNSET
    cause: Any = _UNSET
    path: tuple[str, ...] | None = None
    attempts: Mapping[str, int] | None = None

    def given(self, field: str) -> bool:
        return getattr(self, field) is not _UNSET


@dataclass(frozen=True, slots=True)
class MockCase:
    """One test case: which states are mocked with which responses, and what to expect."""

    machine: str
    name: str
    mocks: Mapping[str, MockedResponse]
    expect: Expectation | None
    pointer: str  # where the test case is in the mock config

    @property
    def label(self) -> str:
        return f"{self.machine}#{self.name}"


def task_states(definition: Any) -> dict[str, str]:
    """Every state of a definition (state names are unique across the whole machine, branches and
    Map processors included) -> its Type."""
    found: dict[str, str] = {}
    stack = [definition]
    while stack:
        block = stack.pop()
        states = block.get("States") if isinstance(block, dict) else None
        if not isinstance(states, dict):
            continue
        for name, spec in states.items():
            if not isinstance(spec, dict):
                continue
            found[name] = str(spec.get("Type"))
            for branch in spec.get("Branches") or ():
                stack.append(branch)
            for field in ("ItemProcessor", "Iterator"):
                if isinstance(spec.get(field), dict):
                    stack.append(spec[field])
    return found


class MockConfig:
    """A validated mock config. ``source`` names it in every problem (the file's path)."""

    def __init__(self, data: Any, source: str = "<mock config>") -> None:
        self.source = source
        problems: list[tuple[str, str]] = []
        self.responses = self._responses(data, problems)
        self.machines: dict[str, dict[str, MockCase]] = self._machines(data, problems)
        if problems:
            raise MockConfigError(source, problems)
        # Compiled test-case variants per compiled machine: a machine replaced in the registry
        # (UpdateStateMachine, --reload) drops its variants with it.
        self._variants: weakref.WeakKeyDictionary[Machine, dict[str, Machine]] = weakref.WeakKeyDictionary()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MockConfig:
        """Read and validate a mock config file (blocking: call it off the event loop)."""
        source = os.fspath(path)
        try:
            with open(source, "rb") as f:
                raw = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as e:
            raise MockConfigError(source, [("", f"cannot read the mock config: {e.strerror or e}")]) from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise MockConfigError(source, [("", f"the mock config is larger than {MAX_CONFIG_BYTES} bytes")])
        return cls.from_json(raw, source)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "<mock config>") -> MockConfig:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise MockConfigError(source, [("", f"not valid JSON: {e}")]) from None
        return cls(data, source)

    # ------------------------------------------------------------------ parsing
    @staticmethod
    def _responses(data: Any, problems: list[tuple[str, str]]) -> dict[str, MockedResponse]:
        if not isinstance(data, dict):
            problems.append(("", "a mock config must be a JSON object with StateMachines and MockedResponses"))
            return {}
        table = data.get("MockedResponses", {})
        if not isinstance(table, dict):
            problems.append(("/MockedResponses", "must be an object: mocked response name -> invocations"))
            return {}
        out: dict[str, MockedResponse] = {}
        for name, steps in table.items():
            where = _ptr("MockedResponses", name)
            if not isinstance(steps, dict) or not steps:
                problems.append((where, "must be an object of invocations (\"0\", \"1-2\", ...) -> Return or Throw"))
                continue
            ranges: list[tuple[int, int, Outcome]] = []
            for key, step in steps.items():
                swhere = where + _ptr(key)
                m = _RANGE.match(key)
                if m is None:
                    problems.append((swhere, f"'{key}' is not an invocation number or an inclusive range "
                                             "such as \"0\" or \"1-2\""))
                    continue
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) is not None else start
                if end < start:
                    problems.append((swhere, f"the range '{key}' ends before it starts"))
                    continue
                outcome = _outcome(step, swhere, problems)
                if outcome is not None:
                    ranges.append((start, end, outcome))
            ranges.sort(key=lambda r: r[0])
            for (s1, e1, _), (s2, _e2, _) in zip(ranges, ranges[1:], strict=False):
                if s2 <= e1:
                    problems.append((where, f"the invocations {s1}-{e1} and {s2}- overlap"))
            out[name] = MockedResponse(name, ranges)
        return out

    def _machines(self, data: Any, problems: list[tuple[str, str]]) -> dict[str, dict[str, MockCase]]:
        if not isinstance(data, dict):
            return {}
        table = data.get("StateMachines")
        if not isinstance(table, dict):
            problems.append(("/StateMachines", "required: an object of state machine name -> {\"TestCases\": {...}}"))
            return {}
        machines: dict[str, dict[str, MockCase]] = {}
        for machine, spec in table.items():
            where = _ptr("StateMachines", machine)
            if not isinstance(spec, dict) or not isinstance(spec.get("TestCases"), dict):
                problems.append((where + "/TestCases", "required: an object of test case name -> "
                                                       "{state name: mocked response name}"))
                continue
            expects = spec.get(EXPECT_FIELD, {})
            if not isinstance(expects, dict):
                problems.append((where + _ptr(EXPECT_FIELD), "must be an object: test case name -> expectation"))
                expects = {}
            for case in expects:
                if case not in spec["TestCases"]:
                    problems.append((where + _ptr(EXPECT_FIELD, case), f"no test case named '{case}' in TestCases"))
            cases: dict[str, MockCase] = {}
            for case, states in spec["TestCases"].items():
                cwhere = where + _ptr("TestCases", case)
                if not isinstance(states, dict):
                    problems.append((cwhere, "must be an object: state name -> mocked response name"))
                    continue
                mocks: dict[str, MockedResponse] = {}
                for state, response in states.items():
                    if not isinstance(response, str):
                        problems.append((cwhere + _ptr(state), "must be the name of a mocked response (a string)"))
                    elif response not in self.responses:
                        problems.append((cwhere + _ptr(state), f"no mocked response named '{response}' in "
                                                               "/MockedResponses"))
                    else:
                        mocks[state] = self.responses[response]
                expect = None
                if case in expects:
                    expect = _expectation(expects[case], where + _ptr(EXPECT_FIELD, case), problems)
                cases[case] = MockCase(machine, case, mocks, expect, cwhere)
            machines[machine] = cases
        return machines

    # ------------------------------------------------------------------ use
    def cases(self) -> Iterator[MockCase]:
        for cases in self.machines.values():
            yield from cases.values()

    def case(self, machine: str, case: str) -> MockCase:
        """The test case, or a MockConfigError that names what is missing."""
        cases = self.machines.get(machine)
        if cases is None:
            known = ", ".join(sorted(self.machines)) or "none"
            raise MockConfigError(self.source, [("/StateMachines", f"no state machine named '{machine}' "
                                                                   f"(it has: {known})")])
        found = cases.get(case)
        if found is None:
            known = ", ".join(cases) or "none"
            raise MockConfigError(self.source, [(_ptr("StateMachines", machine, "TestCases"),
                                                 f"no test case named '{case}' for the state machine '{machine}' "
                                                 f"(it has: {known})")])
        return found

    def check(self, case: MockCase, definition: Any) -> list[tuple[str, str]]:
        """Problems of using ``case`` with this definition: mocked states it does not have, or
        that are not Task states."""
        states = task_states(definition)
        problems = []
        for state in case.mocks:
            kind = states.get(state)
            if kind is None:
                problems.append((case.pointer + _ptr(state),
                                 f"the state machine '{case.machine}' has no state named '{state}'"))
            elif kind != "Task":
                problems.append((case.pointer + _ptr(state),
                                 f"the state '{state}' is a {kind} state: only Task states can be mocked"))
        return problems

    def check_machine(self, machine: str, definition: Any) -> list[tuple[str, str]]:
        """Problems of every test case of ``machine`` against its definition."""
        return [p for case in self.machines.get(machine, {}).values() for p in self.check(case, definition)]

    def compile(self, engine: Engine, definition: Any, machine: str, case: str, logging: Any = None,
                wrap: Callable[[str, MockedResponse], Any] | None = None) -> Machine:
        """Compile ``definition`` (named ``machine`` in this config) for the test case ``case``.
        ``wrap(state, response)`` may stand in for each response (anything with ``invoker``)."""
        if isinstance(definition, (str, bytes, bytearray)):
            try:
                definition = orjson.loads(definition)
            except orjson.JSONDecodeError:
                return engine.compile(definition, name=machine)  # raises DefinitionError: not JSON
        found = self.case(machine, case)
        problems = self.check(found, definition)
        if problems:
            from express.asl.validation import validate

            # a broken definition is the problem to report, not the states it seems to lack
            invalid = validate(definition)
            if invalid:
                raise DefinitionError(invalid)
            raise MockConfigError(self.source, problems)
        mocks: Mapping[str, Any] = found.mocks
        if wrap is not None:
            mocks = {state: wrap(state, response) for state, response in found.mocks.items()}
        return engine.compile(definition, name=machine, logging=logging, mocks=mocks)

    def variant(self, machine: Machine, case: str) -> Machine:
        """``machine`` compiled for the test case, once per (machine, case)."""
        per_machine = self._variants.get(machine)
        if per_machine is None:
            per_machine = self._variants[machine] = {}
        compiled = per_machine.get(case)
        if compiled is None:
            compiled = per_machine[case] = self.compile(machine.engine, machine.definition, machine.name, case,
                                                        machine.logging)
        return compiled


def _outcome(step: Any, where: str, problems: list[tuple[str, str]]) -> Outcome | None:
    if not isinstance(step, dict) or len(step) != 1 or not ({"Return", "Throw"} & step.keys()):
        problems.append((where, "must be an object with exactly one field: Return or Throw"))
        return None
    if "Return" in step:
        try:
            return Outcome(orjson.dumps(step["Return"]))
        except orjson.JSONEncodeError as e:  # e.g. nested too deeply
            problems.append((where + "/Return", f"cannot be used as a result: {e}"))
            return None
    throw = step["Throw"]
    if not isinstance(throw, dict) or not isinstance(throw.get("Error"), str) or not throw["Error"]:
        problems.append((where + "/Throw", "must be an object with a non-empty string Error (and a string Cause)"))
        return None
    cause = throw.get("Cause")
    if cause is not None and not isinstance(cause, str):
        problems.append((where + "/Throw/Cause", "must be a string"))
        return None
    return Outcome(None, throw["Error"], cause)


_EXPECT_FIELDS = ("input", "status", "output", "error", "cause", "path", "attempts")


def _expectation(spec: Any, where: str, problems: list[tuple[str, str]]) -> Expectation | None:
    if not isinstance(spec, dict):
        problems.append((where, f"must be an object with any of: {', '.join(_EXPECT_FIELDS)}"))
        return None
    bad = [k for k in spec if k not in _EXPECT_FIELDS]
    for k in bad:
        problems.append((where + _ptr(k), f"unknown field (known: {', '.join(_EXPECT_FIELDS)})"))
    status = spec.get("status", "SUCCEEDED")
    if status not in STATUSES:
        problems.append((where + "/status", f"must be one of {', '.join(STATUSES)}"))
    for field in ("error", "cause"):
        if field in spec and spec[field] is not None and not isinstance(spec[field], str):
            problems.append((where + _ptr(field), "must be a string or null"))
    path = spec.get("path")
    if path is not None and (not isinstance(path, list) or not all(isinstance(s, str) for s in path)):
        problems.append((where + "/path", "must be a list of state names"))
        path = None
    attempts = spec.get("attempts")
    if attempts is not None and (not isinstance(attempts, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in attempts.values())):
        problems.append((where + "/attempts", "must be an object: mocked state name -> number of invocations"))
        attempts = None
    if bad:
        return None
    return Expectation(
        input=spec.get("input", {}), status=status if status in STATUSES else "SUCCEEDED",
        output=spec.get("output", _UNSET), error=spec.get("error", _UNSET), cause=spec.get("cause", _UNSET),
        path=tuple(path) if path is not None else None, attempts=dict(attempts) if attempts is not None else None)


def case_entry(config: MockConfig | None, entry: Any, arn: str, case: str) -> Any:
    """A registry entry whose machine runs the test case ``case`` (``stateMachineArn`` of the form
    ``ARN#CASE``, as Step Functions Local takes it); MockConfigError when there is none."""
    if config is None:
        raise MockConfigError("express", [("", f"'{arn}#{case}' names a test case, but no mock config is loaded "
                                               f"(express serve --mock-config FILE, or {ENV_VAR})")])
    return dataclasses.replace(entry, machine=config.variant(entry.machine, case))
