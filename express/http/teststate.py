"""TestState: run one state on an input and report it the way AWS's TestState API does.

The request is checked as AWS checks it (a mock only for Task, Map and Parallel states, which
Map and Parallel require; a role for a Task that is not mocked; a context object with ``Task``
only for a callback Task; a Parallel's mocked result one item per branch; a Task's mocked result
conforms to the service API's output shape, see :mod:`express.http.mock_validation`). Then the
engine compiles the state, inside a machine of its own whose only other states are stand-ins for
the state's transition targets, and the compiled state is run here for one step, on a scope whose
context object is TestState's (or the request's ``context``) and whose variables are the
request's ``variables``:

- the step's next state is the stand-in of the target reported as ``nextState``;
- ``Retry`` is taken off and applied here to the error the state raised, as TestState does (it
  never retries): a matching retrier with attempts left gives ``RETRIABLE`` with ``retryIndex`` and
  ``retryBackoffIntervalSeconds`` (``stateConfiguration.retrierRetryCount`` is the attempts already
  made); else a matching catcher gives ``CAUGHT_ERROR``, its target and the output the compiled
  catcher makes of the error;
- a mocked Task calls the mock instead of its resource; a mocked Map or Parallel runs as a Task
  with the same data flow (InputPath, Parameters/Arguments, ResultSelector, ResultPath, OutputPath,
  Output, Assign, Catch) whose work is the mock: a Map still evaluates its items, ItemSelector,
  MaxConcurrency and tolerated failures, and fails with States.ExceedToleratedFailureThreshold
  when ``stateConfiguration.mapIterationFailureCount`` exceeds them;
- ``inspectionData`` (at DEBUG and TRACE only) is what the compiled state's data-flow steps
  produced, as taps on them recorded it, with the fields AWS reports for that state type and query
  language: JSONPath ``afterInputPath``, ``afterParameters``, ``result``, ``afterResultSelector``,
  ``afterResultPath``; JSONata ``afterArguments`` and ``result`` of a Task; a Map's
  ``afterItemsPath``, ``afterItemSelector``, ``maxConcurrency`` and tolerated failures;
  ``variables``; ``errorDetails``;
- the default context object is TestState's (AWS-recorded): ``Execution`` with the request's
  ``roleArn`` (or null) and no ``RedriveCount``, ``State.Name`` ``StateName``, and
  ``State.RetryCount`` (the retrier count given) only for Task, Map and Parallel;
- a cause loses the engine's "An error occurred while executing the state ..." prefix: a TestState
  run has no event ids;
- time is virtual (a Wait state returns at once); the run is bounded by the engine's duration.

Not supported: ``revealSecrets`` (nothing is hidden) and the HTTP request/response of an HTTP Task.
"""
from __future__ import annotations

import copy
import math
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, DefinitionError, ExecutionTimedOut, PathMissing
from express.asl.jsonpath import compile_getter
from express.asl.limits import MAX_DEPTH, deeper_than, too_deep_message, unwritable
from express.asl.timestamps import format_timestamp
from express.asl.uuids import uuid4
from express.asl.validation import validate
from express.engine.clock import VirtualClock
from express.engine.dataflow import invalid_path
from express.engine.frame import Execution, Frame
from express.engine.machine import Engine
from express.engine.states import PassState, TaskState
from express.http import mock_validation

TEST_STATE = "TestState"
# $$.State.Name in TestState's context object, whatever the state is called (AWS-recorded).
CONTEXT_STATE_NAME = "StateName"
JSONPATH, JSONATA = "JSONPath", "JSONata"
RECOVERABLE = ("Task", "Map", "Parallel")
MOCKABLE = RECOVERABLE
_MOCK = "express:testState:mock"
_LABEL = "__express_testState_"
_LOCATION = re.compile(r"^An error occurred while executing the state '.*?' \(entered at the event id #\d+\)\. ?",
                       re.S)
_EXPRESS_ONLY = "Express state machine does not support"  # the validator's Express-only problems
_CALLBACK = re.compile(r"(\.waitForTaskToken|\.sync(:\d+)?)$")
# Fields a mocked Map or Parallel keeps when it runs as a Task: its data flow and its Catch.
_AS_TASK_FIELDS = ("Comment", "InputPath", "OutputPath", "ResultPath", "ResultSelector", "Output", "Assign",
                   "Catch", "Next", "End")
_MAP_WORK_FIELDS = ("Type", "Items", "ItemsPath", "ItemSelector", "Parameters", "MaxConcurrency",
                    "MaxConcurrencyPath", "ToleratedFailureCount", "ToleratedFailureCountPath",
                    "ToleratedFailurePercentage", "ToleratedFailurePercentagePath")


class TestStateInputError(ValueError):
    """The request is not a testable state: ``code`` is the AWS error (InvalidDefinition, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _refuse(message: str, code: str = "ValidationException") -> TestStateInputError:
    return TestStateInputError(code, message)


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError as e:  # nested too deeply (express.asl.limits): the state fails
        raise unwritable(value, "a value the state built", e) from None


# --------------------------------------------------------------------------- the request


def _select(definition: Any, state_name: str | None) -> tuple[dict[str, Any], str, str]:
    """The state to test, the name it runs under and its query language; the definition is
    validated as AWS validates it (a state machine as it is, a lone state as a machine of it)."""
    if not isinstance(definition, dict):
        raise _refuse("Invalid State Machine Definition: 'The state definition must be a JSON object'",
                      "InvalidDefinition")
    if "States" in definition and "Type" not in definition:
        _validate(definition)
        top = definition.get("QueryLanguage") or JSONPATH
        name = state_name if state_name is not None else definition.get("StartAt")
        state = _find(definition.get("States"), name)
        if state is None:
            raise _refuse("State not found in definition")
        return state, str(name), state.get("QueryLanguage") or top
    state = definition
    name = _free_name(state)
    targets = {t: {"Type": "Succeed"} for t in _targets(state).values() if t != name}
    _validate({"StartAt": name, "States": {name: state, **targets}})
    return state, name, state.get("QueryLanguage") or JSONPATH


def _validate(definition: dict[str, Any]) -> None:
    """AWS's definition checks, but for those of Express workflows only: TestState tests the
    states of Standard workflows too (a callback or .sync Task, an activity, with a mock)."""
    problems = [p for p in validate(definition) if not p.message.startswith(_EXPRESS_ONLY)]
    if problems:
        raise DefinitionError(problems)


def _find(states: Any, name: Any) -> dict[str, Any] | None:
    """The state called ``name`` at the top level or nested in a Map or Parallel."""
    if not isinstance(states, dict):
        return None
    found = states.get(name)
    if isinstance(found, dict):
        return found
    for spec in states.values():
        for block in _blocks(spec):
            found = _find(block.get("States"), name)
            if found is not None:
                return found
    return None


def _blocks(spec: Any) -> list[dict[str, Any]]:
    if not isinstance(spec, dict):
        return []
    out = [b for b in spec.get("Branches") or [] if isinstance(b, dict)]
    for field in ("ItemProcessor", "Iterator"):
        if isinstance(spec.get(field), dict):
            out.append(spec[field])
    return out


def _nested_names(spec: Any) -> set[str]:
    names: set[str] = set()
    for block in _blocks(spec):
        states = block.get("States")
        if isinstance(states, dict):
            for name, inner in states.items():
                names.add(name)
                names |= _nested_names(inner)
    return names


def _free_name(state: dict[str, Any]) -> str:
    """A name for a lone state that none of its nested states or targets has."""
    taken = _nested_names(state) | set(_targets(state).values())
    name, n = TEST_STATE, 0
    while name in taken:
        n += 1
        name = f"{TEST_STATE}_{n}"
    return name


def _targets(state: dict[str, Any]) -> dict[str, str]:
    """The state's transition targets by label: Next, each Choice rule's, Default, each Catcher's."""
    out: dict[str, str] = {}
    if isinstance(state.get("Next"), str):
        out[_LABEL + "next"] = state["Next"]
    for i, rule in enumerate(state.get("Choices") or []):
        if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
            out[f"{_LABEL}choice_{i}"] = rule["Next"]
    if isinstance(state.get("Default"), str):
        out[_LABEL + "default"] = state["Default"]
    for i, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict) and isinstance(catcher.get("Next"), str):
            out[f"{_LABEL}catch_{i}"] = catcher["Next"]
    return out


def _check_request(state: dict[str, Any], mock: Any, role_arn: str | None, context: Any) -> None:
    stype = state.get("Type")
    if mock is not None:
        if stype not in MOCKABLE:
            raise _refuse(f"State type '{stype}' is not supported when a mock is specified")
        if not isinstance(mock, dict) or (mock.get("result") is None) == (mock.get("errorOutput") is None):
            raise _refuse("A test mock should have only one of the following fields: [result, errorOutput].")
        mode = mock.get("fieldValidationMode")
        if mode is not None and mode not in mock_validation.MODES:
            raise _refuse(f"1 validation error detected: Value '{mode}' at 'mock.fieldValidationMode' failed to "
                          f"satisfy constraint: Member must satisfy enum value set: [{', '.join(mock_validation.MODES)}]")
        error_output = mock.get("errorOutput")
        if error_output is not None and not (isinstance(error_output, dict)
                                             and isinstance(error_output.get("error", ""), str)
                                             and isinstance(error_output.get("cause", ""), str)):
            raise _refuse("The mocked errorOutput must have a string error and cause.")
    elif stype in ("Map", "Parallel"):
        raise _refuse("TestState API does not support Map or Parallel states. Supported state types include: "
                      "[Task, Wait, Pass, Succeed, Fail, Choice]", "InvalidDefinition")
    elif stype == "Task" and not role_arn:
        raise _refuse("RoleArn must be specified when testing a Task state")
    if context is not None and "Task" in context:
        resource = state.get("Resource")
        if stype != "Task" or not isinstance(resource, str) or not _CALLBACK.search(resource):
            raise _refuse("Invalid Context object provided: Context object contains 'Task' when state is not a "
                          "Task state with a '.sync' or '.waitForTaskToken' service integration pattern")


def _parse_context(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise _refuse(f"Invalid Context object provided: {e}") from None
    if not isinstance(value, dict):
        raise _refuse("Invalid Context object provided: the context object must be a JSON object")
    return value


async def _mock_result(state: dict[str, Any], mock: dict[str, Any], config: dict[str, Any]) -> Any:
    """The parsed ``mock.result``, checked against what the state's work returns."""
    try:
        value = orjson.loads(mock["result"])
    except (orjson.JSONDecodeError, TypeError):
        raise _refuse("Mocked result must be valid JSON") from None
    stype = state.get("Type")
    if stype in ("Map", "Parallel"):
        if not isinstance(value, list):
            raise _refuse("Mocked result must be an array.")
        if stype == "Parallel" and len(value) != len(state.get("Branches") or []):
            raise _refuse("Mocked result must contain the same number of items as number of Parallel branches.")
        failures = config.get("mapIterationFailureCount")
        if stype == "Map" and isinstance(failures, int) and failures > len(value):
            raise _refuse("Map iteration failure count must be less than or equal to the number of Map iterations")
    elif isinstance(state.get("Resource"), str):
        try:
            await mock_validation.check(state["Resource"], value, mock.get("fieldValidationMode") or "STRICT")
        except mock_validation.MockResultInvalid as e:
            raise _refuse(e.message) from None
    return value


# --------------------------------------------------------------------------- the run


class _TestFrame(Frame):
    """The tested state's scope: its context object is TestState's, or the request's."""

    __slots__ = ("given", "role_arn", "retries", "retrying")

    def __init__(self, execution: Execution, vars: dict[str, Any] | None, map_item: dict[str, Any] | None,
                 size: int, given: dict[str, Any] | None, role_arn: str | None, retries: int,
                 retrying: bool) -> None:
        super().__init__(execution, vars, map_item, size)
        self.given = given
        self.role_arn = role_arn
        self.retries = retries
        self.retrying = retrying  # Task, Map and Parallel have $$.State.RetryCount

    def inner(self, map_item: dict[str, Any]) -> _TestFrame:
        return _TestFrame(self.execution, self.vars, map_item, self.size, self.given, self.role_arn,
                          self.retries, self.retrying)

    def context_object(self) -> dict[str, Any]:
        if self.given is not None:
            obj = copy.deepcopy(self.given)
        else:
            ex = self.execution
            state: dict[str, Any] = {"Name": CONTEXT_STATE_NAME, "EnteredTime": format_timestamp(ex.start_time)}
            if self.retrying:
                state["RetryCount"] = self.retries
            obj = {
                "Execution": {"Id": ex.arn, "Input": copy.deepcopy(ex.input), "Name": ex.name,
                              "RoleArn": self.role_arn, "StartTime": format_timestamp(ex.start_time)},
                "StateMachine": {"Id": ex.machine_arn, "Name": ex.machine_name},
                "State": state,
            }
        if self.map_item is not None:
            obj["Map"] = {"Item": self.map_item}
        return obj


class _Run:
    """One TestState run: the compiled state, its taps and what they saw."""

    def __init__(self, state_spec: dict[str, Any], language: str) -> None:
        self.spec = state_spec
        self.type = state_spec.get("Type")
        self.language = language
        self.seen: dict[str, str] = {}  # inspection field -> JSON text, as the taps recorded it
        self.numbers: dict[str, int | float] = {}  # a Map's maxConcurrency and tolerated failures

    def tap(self, fn: Callable[[Any, Any], Any], key: str) -> Callable[[Any, Any], Any]:
        seen = self.seen

        def tapped(a: Any, b: Any) -> Any:
            out = fn(a, b)
            seen[key] = _dumps(out)
            return out

        return tapped

    def tap_work(self, work: Callable[..., Any]) -> Callable[..., Any]:
        seen = self.seen

        async def tapped(eff: Any, frame: Frame, timeout: float | None) -> Any:
            seen["effective"] = _dumps(eff)
            out = await work(eff, frame, timeout)
            seen["result"] = _dumps(out)
            return out

        return tapped

    def instrument(self, state: Any) -> None:
        flow = state.flow
        if flow.input_path is not None:
            flow.input_path = self.tap(flow.input_path, "afterInputPath")
        if flow.result_selector is not None:
            flow.result_selector = self.tap(flow.result_selector, "afterResultSelector")
        if flow.result_path is not None:
            flow.result_path = self.tap(flow.result_path, "afterResultPath")
        if isinstance(state, PassState):
            # its specialised step closes over the untapped closures: back to the generic one
            vars(state).pop("step", None)
            if state.result is not None:
                state.result = self.tap(state.result, "passResult")

    def inspection(self, input_text: str, flow: Any) -> dict[str, Any]:
        """The inspection fields AWS reports for this state type and query language."""
        seen, stype = self.seen, self.type
        out: dict[str, Any] = {"input": input_text}
        if self.language == JSONATA:
            if stype == "Task":
                self._put(out, "afterArguments", seen.get("effective"))
                self._put(out, "result", seen.get("result"))
            elif stype == "Map":
                self._put(out, "afterItemSelector", seen.get("afterItemSelector"))
            out.update(self.numbers)
            return out
        after_input = seen.get("afterInputPath", input_text if flow.input_path is None else None)
        if stype in ("Succeed", "Fail", "Choice", "Wait"):
            self._put(out, "afterInputPath", after_input)
            return out
        if stype == "Pass":
            if "Result" in self.spec:
                result = seen.get("passResult")
                self._put(out, "result", result)
            else:
                self._put(out, "afterInputPath", after_input)
                result = seen.get("passResult") if "Parameters" in self.spec else after_input
                self._put(out, "afterParameters", result)
        else:
            result = seen.get("result")
            if stype == "Task":
                self._put(out, "afterInputPath", after_input)
                self._put(out, "afterParameters", seen.get("effective"))
                self._put(out, "result", result)
            elif stype == "Map":
                self._put(out, "afterInputPath", after_input)
                self._put(out, "afterItemsPath", seen.get("afterItemsPath"))
                self._put(out, "afterItemSelector", seen.get("afterItemSelector"))
        selected = seen.get("afterResultSelector") if flow.result_selector is not None else result
        self._put(out, "afterResultSelector", selected)
        self._put(out, "afterResultPath", seen.get("afterResultPath") if flow.result_path is not None else selected)
        out.update(self.numbers)
        return out

    @staticmethod
    def _put(out: dict[str, Any], key: str, value: str | None) -> None:
        if value is not None:
            out[key] = value


def _runnable(state: dict[str, Any], name: str, language: str, mocked: bool) -> dict[str, Any]:
    """The machine the state is compiled in: its targets relabelled to stand-ins, Retry taken off,
    a mocked state's work given to the mock (a mocked Map or Parallel becomes a Task)."""
    spec = copy.deepcopy(state)
    spec.pop("QueryLanguage", None)
    spec.pop("Retry", None)
    for label, _ in _targets(state).items():
        kind, _, index = label[len(_LABEL):].partition("_")
        holder = spec if kind in ("next", "default") else spec["Choices" if kind == "choice" else "Catch"][int(index)]
        holder["Default" if kind == "default" else "Next"] = label
    if spec.get("Type") in ("Map", "Parallel"):
        task: dict[str, Any] = {"Type": "Task"}
        keep = _AS_TASK_FIELDS + (("Parameters", "Arguments") if spec["Type"] == "Parallel" else ())
        task.update({k: spec[k] for k in keep if k in spec})
        spec = task
    if mocked:
        spec["Resource"] = _MOCK
    stand_ins = {label: {"Type": "Succeed"} for label in _targets(state)}
    return {"QueryLanguage": language, "StartAt": name, "States": {name: spec, **stand_ins}}


def _map_work(engine: Engine, state: dict[str, Any], language: str, run: _Run, mock: dict[str, Any],
              result: Any, config: dict[str, Any]) -> Callable[..., Any]:
    """What a mocked Map does in place of its iterations."""
    work = {k: state[k] for k in _MAP_WORK_FIELDS if k in state}
    processor: dict[str, Any] = {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}}
    proc_spec = state.get("ItemProcessor") or state.get("Iterator")
    if isinstance(proc_spec, dict) and isinstance(proc_spec.get("ProcessorConfig"), dict):
        processor["ProcessorConfig"] = proc_spec["ProcessorConfig"]
    work["ItemProcessor"] = processor
    work["End"] = True
    compiled = engine.compile({"QueryLanguage": language, "StartAt": "Map", "States": {"Map": work}},
                              name="TestStateMap").block.states["Map"]
    reader = "ItemReader" in state
    reader_data = _reader_items(config.get("mapItemReaderData")) if reader else None
    items_path = state.get("ItemsPath", "$") if language == JSONPATH else None
    error_output = mock.get("errorOutput")

    async def map_mock(eff: Any, frame: Frame, timeout: float | None) -> Any:
        states = None if language == JSONPATH else {"input": frame.execution.input, "context": frame.context_object()}
        if reader:
            items = reader_data
        elif items_path is not None:
            items = _items_at(items_path, eff, frame)
            run.seen["afterItemsPath"] = _dumps(items)
        else:
            items = compiled.items(eff, frame, states)
        if compiled.item_selector is not None and items is not None and isinstance(frame, _TestFrame):
            selected = [compiled.item_selector(eff, frame.inner({"Index": i, "Value": v}), states)
                        for i, v in enumerate(items)]
            run.seen["afterItemSelector"] = _dumps(selected)
        run.numbers["maxConcurrency"] = compiled.max_concurrency(eff, frame, states)
        pct, count = compiled.tolerated(eff, frame, states)
        if count is not None:
            run.numbers["toleratedFailureCount"] = count
        if pct is not None:
            run.numbers["toleratedFailurePercentage"] = pct
        if error_output is not None:
            raise _mocked_error(error_output)
        failures = config.get("mapIterationFailureCount")
        if isinstance(failures, int) and failures > 0 and (
                (count is not None and failures > count)
                or (pct is not None and result and failures * 100.0 / len(result) > pct)):
            raise ASLError(errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                           "The specified tolerated failure threshold was exceeded", located=True)
        return copy.deepcopy(result)

    return map_mock


def _reader_items(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def _items_at(path: str, data: Any, frame: Frame) -> Any:
    try:
        items = compile_getter(path)(data, frame)
    except PathMissing as e:
        raise invalid_path(e) from None
    if not isinstance(items, list):
        # the path as AWS quotes it: a context-object path from the context object's root
        shown = "$" + path[2:] if path.startswith("$$") else path
        raise ASLError(errors.RUNTIME, f'Reference path "{shown}" must point to array.', located=True)
    return items


def _mocked_error(error_output: dict[str, Any]) -> ASLError:
    cause = error_output.get("cause")
    return ASLError(str(error_output.get("error") or ""), cause if isinstance(cause, str) else None, located=True)


def _constant(value: Any) -> Callable[..., Any]:
    async def mocked(eff: Any, frame: Frame, timeout: float | None) -> Any:
        return copy.deepcopy(value)

    return mocked


def _raising(error_output: dict[str, Any]) -> Callable[..., Any]:
    async def mocked(eff: Any, frame: Frame, timeout: float | None) -> Any:
        raise _mocked_error(error_output)

    return mocked


def _unreachable(event: Any) -> Any:
    raise ASLError(errors.RUNTIME, "The TestState mock was not replaced", located=True)


def _check_nesting(input_value: Any, variables: dict[str, Any] | None) -> None:
    """The input door: nothing nested deeper than can be written (express.asl.limits)."""
    if deeper_than(input_value, MAX_DEPTH):
        raise _refuse(f"Invalid State Machine Execution Input: '{too_deep_message(input_value, 'the input')}'",
                      "InvalidExecutionInput")
    for var, value in (variables or {}).items():
        if deeper_than(value, MAX_DEPTH):
            raise _refuse(f"Invalid variables: '{too_deep_message(value, f'the variable {var!r}')}'",
                          "InvalidExecutionInput")


async def run_test_state(engine: Engine, definition: Any, input_value: Any, *, state_name: str | None = None,
                         variables: dict[str, Any] | None = None, mock: dict[str, Any] | None = None,
                         state_configuration: dict[str, Any] | None = None,
                         inspection_level: str = "INFO", role_arn: str | None = None,
                         context: str | None = None) -> dict[str, Any]:
    """The TestState response (``output`` and inspection fields as JSON text); TestStateInputError
    and DefinitionError for a request AWS refuses."""
    _check_nesting(input_value, variables)
    state, name, language = _select(definition, state_name)
    given_context = _parse_context(context)
    _check_request(state, mock, role_arn, given_context)
    config = state_configuration or {}
    stype = state.get("Type")
    mocked_value = None
    if mock is not None and mock.get("result") is not None:
        mocked_value = await _mock_result(state, mock, config)

    run = _Run(state, language)
    clock = VirtualClock()
    test_engine = Engine(functions={**engine.functions, _MOCK: _unreachable}, clock=clock,
                         max_duration_s=engine.max_duration_s, max_payload_bytes=engine.max_payload_bytes,
                         region=engine.region, account=engine.account)
    machine_name = f"TestState-{uuid.uuid4().hex[:12]}"
    machine = test_engine.compile(_runnable(state, name, language, mock is not None), name=machine_name)
    compiled = machine.block.states[name]
    run.instrument(compiled)
    if isinstance(compiled, TaskState):
        if mock is None:
            work = compiled.invoke
        elif stype == "Map":
            work = _map_work(test_engine, state, language, run, mock, mocked_value, config)
        elif mock.get("errorOutput") is not None:
            work = _raising(mock["errorOutput"])
        else:
            work = _constant(mocked_value)
        compiled.invoke = run.tap_work(work)
    catchers = list(getattr(compiled, "catchers", ()))
    if catchers:
        compiled.catchers = []  # caught here, after TestState's own retry decision

    input_text = _dumps(input_value)
    retries = config.get("retrierRetryCount", 0)
    retries = retries if isinstance(retries, int) and retries >= 0 else 0
    execution_name = uuid4()
    ex = Execution(machine_name, machine.arn, execution_name,
                   f"arn:aws:states:{engine.region}:{engine.account}:express:{machine_name}:{execution_name}",
                   input_value, clock.now(), clock, math.inf, time.monotonic() + engine.max_duration_s)
    ex.limit = engine.max_payload_bytes
    frame = _TestFrame(ex, dict(variables or {}), None, len(input_text), given_context, role_arn, retries,
                       stype in RECOVERABLE)
    if variables:
        frame.var_bytes = len(_dumps(variables))

    response: dict[str, Any] = {}
    details: dict[str, Any] | None = None
    failure = None
    try:
        data = orjson.loads(input_text)
        if compiled.is_async:
            nxt, out = await compiled.astep(frame, data)
        else:
            nxt, out = compiled.step(frame, data)
    except ASLError as e:
        failure = ASLError(e.error, e.cause, located=True)
        _forget(e)
    except ExecutionTimedOut as e:
        failure = ASLError(errors.TIMEOUT, f"The state exceeded the maximum duration of "
                                           f"{engine.max_duration_s:g} seconds.", located=True)
        _forget(e)
    except RecursionError as e:
        failure = ASLError(errors.RUNTIME, "The data is nested too deeply.", located=True)
        _forget(e)
    labels = _targets(state)
    if failure is None:
        response["status"] = "SUCCEEDED"
        response["output"] = _dumps(out)
        if nxt is not None and nxt.name in labels:
            response["nextState"] = labels[nxt.name]
    else:
        response["error"] = failure.error
        if failure.cause is not None:
            response["cause"] = _LOCATION.sub("", failure.cause, count=1)
        response["status"] = "FAILED"
        retry = _retry(state.get("Retry") if stype in RECOVERABLE else None, failure.error, retries)
        if retry is not None:
            response["status"] = "RETRIABLE"
            details = retry
        else:
            for index, catcher in enumerate(catchers):
                if errors.matches(failure.error, catcher.errors):
                    try:
                        caught = compiled.caught(frame, orjson.loads(input_text), failure, catcher)
                    except ASLError as e:
                        _forget(e)
                        response["error"] = e.error
                        response.pop("cause", None)
                        if e.cause is not None:
                            response["cause"] = _LOCATION.sub("", e.cause, count=1)
                        break
                    response["status"] = "CAUGHT_ERROR"
                    response["nextState"] = labels[catcher.next_name]
                    response["output"] = _dumps(caught)
                    details = {"catchIndex": index}
                    break
    if inspection_level in ("DEBUG", "TRACE"):
        inspection = run.inspection(input_text, compiled.flow)
        if variables:
            inspection["variables"] = _dumps(variables)
        if details is not None:
            inspection["errorDetails"] = details
        response["inspectionData"] = inspection
    return response


def _forget(e: BaseException) -> None:
    """Drop the tracebacks of a handled error and of the errors it chains: the frames they hold
    (the engine's among them, which hold the error) would otherwise keep the compiled machine in
    a reference cycle, left to the cyclic collector, which may run on another thread (and
    jsonatapy's compiled expressions must be freed on the thread that made them)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        x.__traceback__ = None
        todo += (x.__context__, x.__cause__)


def _retry(retriers: Any, error: str, count: int) -> dict[str, Any] | None:
    if not isinstance(retriers, list):
        return None
    for index, retrier in enumerate(retriers):
        if not isinstance(retrier, dict):
            continue
        names = tuple(n for n in retrier.get("ErrorEquals") or () if isinstance(n, str))
        if not errors.matches(error, names):
            continue
        if count >= _num(retrier.get("MaxAttempts"), 3):
            return None
        delay = _num(retrier.get("IntervalSeconds"), 1) * _num(retrier.get("BackoffRate"), 2.0) ** count
        max_delay = retrier.get("MaxDelaySeconds")
        if isinstance(max_delay, (int, float)) and not isinstance(max_delay, bool):
            delay = min(delay, max_delay)
        return {"retryIndex": index, "retryBackoffIntervalSeconds": int(delay)}
    return None


def _num(value: Any, default: float) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default
