"""TestState: run one state definition on an input, the way AWS's TestState API reports it.

The state is run by the engine itself, as a one-state machine built around it:

- its transition is cut (``Next`` becomes ``End``) and reported as ``nextState``; a Choice state's
  targets become marker Pass states, so the branch taken is known;
- ``Retry`` and ``Catch`` are taken off and applied here to the error the state raised, as
  TestState does (it never retries): a matching retrier with attempts left gives ``RETRIABLE`` with
  ``retryIndex`` and ``retryBackoffIntervalSeconds`` (``stateConfiguration.retrierRetryCount`` is
  the attempts already made); else a matching catcher gives ``CAUGHT_ERROR``, its ``nextState`` and
  the output its ``ResultPath``/``Output`` makes (computed by a second, Pass-only machine);
- ``mock.result`` / ``mock.errorOutput`` replace a Task's resource with a function that returns or
  raises exactly that;
- ``variables`` are assigned by a Pass state run before the state;
- the run uses a virtual clock (a Wait state returns at once) and the engine's task functions.

Supported: every state type (Map and Parallel run their branches for real). Not supported yet:
``context``, ``revealSecrets`` (nothing is hidden), HTTP request/response inspection, and the
``inspectionData`` fields between input and result (only ``input``, ``afterResultPath`` when the
state has no OutputPath, ``variables``, and ``errorDetails`` are given).
"""
from __future__ import annotations

import copy
from typing import Any

import orjson

from express.clock import VirtualClock
from express.engine import Engine
from express.errors import ASLError, matches

TEST_STATE = "TestState"
_MARK = "__express_testState_next"
_SETUP = "__express_testState_variables"
_MOCK = "express:testState:mock"


class TestStateInputError(ValueError):
    """The request is not a testable state: ``code`` is the AWS error (InvalidDefinition, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _language(state: dict[str, Any], top: str | None) -> str:
    lang = state.get("QueryLanguage") or top or "JSONPath"
    return lang if lang in ("JSONPath", "JSONata") else "JSONPath"


def _marker(label: str, language: str) -> dict[str, Any]:
    if language == "JSONata":
        return {"Type": "Pass", "Output": {_MARK: label, "output": "{% $states.input %}"}, "End": True}
    return {"Type": "Pass", "Parameters": {_MARK: label, "output.$": "$"}, "End": True}


async def run_test_state(engine: Engine, definition: Any, input_value: Any, *, state_name: str | None = None,
                     variables: dict[str, Any] | None = None, mock: dict[str, Any] | None = None,
                     state_configuration: dict[str, Any] | None = None,
                     inspection_level: str = "INFO") -> dict[str, Any]:
    """The TestState response (without JSON encoding of nothing: ``output`` is a JSON string)."""
    top_language: str | None = None
    if not isinstance(definition, dict):
        raise TestStateInputError("InvalidDefinition", "Invalid State Machine Definition: 'The state definition "
                                  "must be a JSON object'")
    if "States" in definition and "Type" not in definition:
        all_states = definition.get("States")
        if not isinstance(all_states, dict):
            raise TestStateInputError("InvalidDefinition", "Invalid State Machine Definition: 'States must be an object'")
        if state_name is None:
            state_name = definition.get("StartAt") if isinstance(definition.get("StartAt"), str) else None
        if state_name is None or state_name not in all_states:
            raise TestStateInputError("ValidationException", f"State '{state_name}' is not in the definition")
        top_language = definition.get("QueryLanguage")
        state = all_states[state_name]
        if not isinstance(state, dict):
            raise TestStateInputError("InvalidDefinition", "Invalid State Machine Definition: 'The state definition "
                                      "must be a JSON object'")
    else:
        state = definition
    name = state_name or TEST_STATE
    state = copy.deepcopy(state)
    stype = state.get("Type")
    language = _language(state, top_language)
    retriers = state.pop("Retry", None) if stype in ("Task", "Parallel", "Map") else None
    catchers = state.pop("Catch", None) if stype in ("Task", "Parallel", "Map") else None
    next_state = state.get("Next") if isinstance(state.get("Next"), str) else None
    states: dict[str, Any] = {}
    labels: dict[str, str] = {}
    if "Next" in state:
        del state["Next"]
        state["End"] = True
    if stype == "Choice":
        for i, choice in enumerate(state.get("Choices") or []):
            if isinstance(choice, dict) and isinstance(choice.get("Next"), str):
                label = f"{_MARK}_{i}"
                labels[label] = choice["Next"]
                choice["Next"] = label
                states[label] = _marker(label, language)
        if isinstance(state.get("Default"), str):
            label = f"{_MARK}_default"
            labels[label] = state["Default"]
            state["Default"] = label
            states[label] = _marker(label, language)
    functions = dict(engine.functions)
    if mock and stype == "Task":
        functions[_MOCK] = _mock_function(mock)
        state["Resource"] = _MOCK
    machine_def: dict[str, Any] = {"StartAt": name, "States": {name: state, **states}}
    if language == "JSONata":
        machine_def["QueryLanguage"] = "JSONata"
    if variables:
        machine_def["States"][_SETUP] = {"Type": "Pass", "Assign": variables, "Next": name}
        machine_def["StartAt"] = _SETUP
    test_engine = Engine(functions=functions, clock=VirtualClock(), max_duration_s=engine.max_duration_s,
                         max_payload_bytes=engine.max_payload_bytes, region=engine.region, account=engine.account)
    machine = test_engine.compile(machine_def, name="TestState")  # DefinitionError: the caller reports it
    result = await machine.execute(input_value)
    response: dict[str, Any] = {}
    inspection: dict[str, Any] = {"input": orjson.dumps(input_value).decode()}
    if variables:
        inspection["variables"] = orjson.dumps(variables).decode()
    if result.status == "SUCCEEDED":
        output = result.output
        if labels and isinstance(output, dict) and output.get(_MARK) in labels:
            next_state = labels[output[_MARK]]
            output = output.get("output")
        response["status"] = "SUCCEEDED"
        response["output"] = orjson.dumps(output).decode()
        if next_state is not None and stype not in ("Succeed", "Fail"):
            response["nextState"] = next_state
        if "OutputPath" not in state and language == "JSONPath" and stype in ("Task", "Pass", "Parallel", "Map"):
            inspection["afterResultPath"] = response["output"]
    else:
        error = result.error or "States.Timeout"
        cause = result.cause or ""
        response["error"] = error
        response["cause"] = cause
        response["status"] = "FAILED"
        handled = _retry(retriers, error, state_configuration or {})
        if handled is not None:
            response["status"] = "RETRIABLE"
            inspection["errorDetails"] = handled
        else:
            caught = await _catch(test_engine, catchers, error, cause, input_value, language)
            if caught is not None:
                index, target, output = caught
                response["status"] = "CAUGHT_ERROR"
                response["nextState"] = target
                response["output"] = orjson.dumps(output).decode()
                inspection["errorDetails"] = {"catchIndex": index}
    if inspection_level in ("DEBUG", "TRACE"):
        response["inspectionData"] = inspection
    elif "errorDetails" in inspection:
        response["inspectionData"] = {"errorDetails": inspection["errorDetails"]}
    return response


def _mock_function(mock: dict[str, Any]) -> Any:
    error_output = mock.get("errorOutput")
    if isinstance(error_output, dict):
        error = str(error_output.get("error") or "")
        cause = error_output.get("cause")

        def fail(event: Any) -> Any:
            raise ASLError(error, cause if isinstance(cause, str) else None, located=True)

        return fail
    raw = mock.get("result")
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else None
    except orjson.JSONDecodeError:
        raise TestStateInputError("InvalidExecutionInput", "mock.result must be valid JSON") from None

    def succeed(event: Any) -> Any:
        return value

    return succeed


def _retry(retriers: Any, error: str, config: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(retriers, list):
        return None
    count = config.get("retrierRetryCount", 0)
    count = count if isinstance(count, int) and count >= 0 else 0
    for index, retrier in enumerate(retriers):
        if not isinstance(retrier, dict):
            continue
        names = tuple(n for n in retrier.get("ErrorEquals") or () if isinstance(n, str))
        if not matches(error, names):
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


async def _catch(engine: Engine, catchers: Any, error: str, cause: str, input_value: Any,
                 language: str) -> tuple[int, str, Any] | None:
    if not isinstance(catchers, list):
        return None
    for index, catcher in enumerate(catchers):
        if not isinstance(catcher, dict) or not isinstance(catcher.get("Next"), str):
            continue
        names = tuple(n for n in catcher.get("ErrorEquals") or () if isinstance(n, str))
        if not matches(error, names):
            continue
        error_output = {"Error": error, "Cause": cause}
        if language == "JSONata":
            if "Output" not in catcher:
                return index, catcher["Next"], error_output
            text = orjson.dumps(catcher["Output"]).decode()
            text = text.replace("$states.input", "$states.input.input").replace(
                "$states.errorOutput", "$states.input.errorOutput")
            pass_state = {"Type": "Pass", "Output": orjson.loads(text), "End": True}
            mini = {"QueryLanguage": "JSONata", "StartAt": "C", "States": {"C": pass_state}}
            data: Any = {"input": input_value, "errorOutput": error_output}
        else:
            pass_state = {"Type": "Pass", "Result": error_output, "End": True}
            if "ResultPath" in catcher:
                pass_state["ResultPath"] = catcher["ResultPath"]
            mini = {"StartAt": "C", "States": {"C": pass_state}}
            data = input_value
        result = await engine.compile(mini, name="TestStateCatch").execute(data)
        if result.status != "SUCCEEDED":
            return None
        return index, catcher["Next"], result.output
    return None
