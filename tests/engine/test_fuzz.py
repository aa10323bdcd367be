"""Property tests: mutated definitions and random inputs never crash the engine.

``Engine.compile`` may only raise DefinitionError; ``Machine.execute`` never raises and ends in one
of the three statuses, promptly (VirtualClock + a small execution cap).
"""
from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import express

STATUSES = {"SUCCEEDED", "FAILED", "TIMED_OUT"}
MAX_DURATION_S = 2.0
WALL_LIMIT_S = 15.0


def f_sync(event: Any) -> Any:
    if isinstance(event, dict) and event.get("boom"):
        raise ValueError("boom")
    return {"echo": event}


async def f_async(event: Any) -> Any:
    await asyncio.sleep(0)
    if isinstance(event, dict) and "fail" in event:
        raise KeyError("fail")
    return [event, 1]


def f_bytes(event: Any) -> Any:
    return b'{"raw": true}'


FUNCTIONS = {
    "f": f_sync,
    "g": f_async,
    "arn:aws:lambda:us-east-1:123456789012:function:h": f_bytes,
}

BASES: list[dict[str, Any]] = [
    {
        "Comment": "every state type",
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Parameters": {"v.$": "$.v", "c": [1, {"d": 2}], "f.$": "States.Format('x{}', $.v)"},
                      "ResultPath": "$.p", "Assign": {"a.$": "$.v"}, "Next": "Decide"},
            "Decide": {"Type": "Choice", "Choices": [
                {"Variable": "$.v", "NumericGreaterThan": 1, "Next": "Wait"},
                {"And": [{"Variable": "$.s", "IsString": True}, {"Not": {"Variable": "$.s", "StringEquals": "x"}}],
                 "Next": "Task"},
            ], "Default": "Par"},
            "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Task"},
            "Task": {"Type": "Task", "Resource": "f", "InputPath": "$", "ResultSelector": {"e.$": "$.echo"},
                     "ResultPath": "$.t", "TimeoutSeconds": 5,
                     "Retry": [{"ErrorEquals": ["ValueError"], "IntervalSeconds": 1, "MaxAttempts": 2,
                                "BackoffRate": 2.0, "MaxDelaySeconds": 3}],
                     "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Par"}],
                     "Next": "Par"},
            "Par": {"Type": "Parallel", "ResultPath": "$.par", "Branches": [
                {"StartAt": "B1", "States": {"B1": {"Type": "Task", "Resource": "g", "End": True}}},
                {"StartAt": "B2", "States": {"B2": {"Type": "Wait", "SecondsPath": "$.w", "Next": "B3"},
                                             "B3": {"Type": "Succeed"}}},
            ], "Next": "Map"},
            "Map": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                    "ItemSelector": {"i.$": "$$.Map.Item.Index", "val.$": "$$.Map.Item.Value", "a.$": "$a"},
                    "ItemProcessor": {"StartAt": "M1", "States": {
                        "M1": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:h",
                               "ResultPath": "$.r", "End": True}}},
                    "ResultPath": "$.mapped", "Next": "Final"},
            "Final": {"Type": "Choice", "Choices": [{"Variable": "$.v", "IsNull": True, "Next": "Bad"}],
                      "Default": "Good"},
            "Bad": {"Type": "Fail", "Error": "Bad", "CausePath": "$.s"},
            "Good": {"Type": "Succeed", "OutputPath": "$"},
        },
    },
    {
        "StartAt": "Lam",
        "TimeoutSeconds": 60,
        "States": {
            "Lam": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "g", "Payload.$": "$"}, "OutputPath": "$.Payload", "Next": "Legacy"},
            "Legacy": {"Type": "Map", "ItemsPath": "$[0].items", "Parameters": {"x.$": "$$.Map.Item.Value"},
                       "Iterator": {"StartAt": "I", "States": {
                           "I": {"Type": "Wait", "TimestampPath": "$.x", "Next": "J"},
                           "J": {"Type": "Pass", "Result": {"ok": True}, "End": True}}},
                       "Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "F"}, {"ErrorEquals": ["States.ALL"], "Next": "F"}], "Next": "S"},
            "F": {"Type": "Fail", "ErrorPath": "$.Error", "Cause": "caught"},
            "S": {"Type": "Pass", "InputPath": None, "Result": {"x": 1}, "ResultPath": "$.y", "End": True},
        },
    },
    {
        "StartAt": "Loop",
        "States": {
            "Loop": {"Type": "Pass", "Assign": {"n.$": "States.MathAdd($n, 1)"}, "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$n", "NumericGreaterThanEquals": 5, "Next": "Done"}],
                      "Default": "Loop"},
            "Done": {"Type": "Pass", "Parameters": {"n.$": "$n", "arr.$": "States.ArrayRange(1, $n, 1)",
                                                    "h.$": "States.Hash('abc', 'SHA-256')"}, "End": True},
        },
    },
]
BASES[2]["States"] = {"Init": {"Type": "Pass", "Assign": {"n": 0}, "Next": "Loop"}, **BASES[2]["States"]}
BASES[2]["StartAt"] = "Init"

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False, width=32), st.text(max_size=12))
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(["v", "s", "w", "items", "boom", "fail", "x", "a"])
                                               | st.text(max_size=5), children, max_size=4)),
    max_leaves=12,
)

shaped_inputs = st.fixed_dictionaries(
    {"v": st.integers(-3, 3) | json_values, "s": st.text(max_size=4) | json_values, "w": st.integers(0, 5),
     "items": st.lists(st.integers(0, 3) | st.just("2020-01-01T00:00:00Z") | json_values, max_size=4)},
    optional={"boom": st.booleans(), "fail": json_values})

PATH_CHARS = "$.[]*?@()'\"0123456789abvsxyz:,<>=!-_ \\"
path_like = st.one_of(
    st.sampled_from(["$", "$$", "$.v", "$.items", "$..v", "$.items[*]", "$.items[0]", "$.items[-1]",
                     "$.items[?(@.x > 1)]", "$.items[0:2]", "$$.Map.Item.Index", "$$.Execution.Input",
                     "$a", "$n.x", "$nope", "$['v']", "$.a.b.c", "$[", "$.", "$..", "$.v[", "$$.", "@.x"]),
    st.text(alphabet=PATH_CHARS, max_size=15).map(lambda s: "$" + s),
)
INTRINSICS = ["Format", "StringToJson", "JsonToString", "Array", "ArrayPartition", "ArrayContains", "ArrayRange",
              "ArrayGetItem", "ArrayLength", "ArrayUnique", "Base64Encode", "Base64Decode", "Hash", "JsonMerge",
              "MathRandom", "MathAdd", "StringSplit", "UUID", "Bogus"]
intrinsic_arg = st.one_of(st.sampled_from(["'a'", "'{}'", "1", "-2.5", "null", "true", "$.v", "$.items", "$a", "$$",
                                           "'\\\\'", "'x\\'y'", "", "States.Array(1)", "States.UUID()"]),
                          st.text(alphabet="'{}\\,()$.abc123 ", max_size=8))
intrinsic_like = st.builds(
    lambda name, args: f"States.{name}({', '.join(args)})",
    st.sampled_from(INTRINSICS), st.lists(intrinsic_arg, max_size=4),
) | st.text(alphabet="States.()',$ {}\\1", max_size=20)

random_value = st.one_of(json_values, path_like, intrinsic_like)


def locations(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key/index) in the definition tree."""
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            locations(node[k], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            locations(node[i], out)
    return out


def state_objects(node: Any, out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if "Type" in node:
            out.append(node)
        for v in node.values():
            state_objects(v, out)
    elif isinstance(node, list):
        for v in node:
            state_objects(v, out)
    return out


FIELDS = ["InputPath", "OutputPath", "ResultPath", "ItemsPath", "SecondsPath", "TimestampPath", "ErrorPath",
          "CausePath", "Next", "Default", "End", "Type", "Resource", "Parameters", "ResultSelector", "Assign",
          "ItemSelector", "Seconds", "Timestamp", "TimeoutSeconds", "MaxConcurrency", "Retry", "Catch",
          "Branches", "ItemProcessor", "Choices", "Error", "Cause", "Result", "QueryLanguage", "Variable"]


@st.composite
def mutated_definitions(draw: st.DrawFn) -> Any:
    d = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3, 5]))):
        op = draw(st.sampled_from(["delete", "retype", "swap", "path", "intrinsic", "field", "template"]))
        locs = locations(d, [])
        if op in ("delete", "retype", "swap", "path", "intrinsic") and locs:
            container, key = locs[draw(st.integers(0, len(locs) - 1))]
            if key not in (container if isinstance(container, dict) else range(len(container))):
                continue
            if op == "delete":
                if isinstance(container, dict):
                    del container[key]
                else:
                    container.pop(key)
            elif op == "retype":
                container[key] = draw(json_values)
            elif op == "swap":
                c2, k2 = locs[draw(st.integers(0, len(locs) - 1))]
                try:
                    container[key], c2[k2] = c2[k2], container[key]
                except (KeyError, IndexError):
                    pass
                if _cyclic(d):
                    return draw(st.sampled_from(BASES))
            elif op == "path":
                container[key] = draw(path_like)
            else:
                container[key] = draw(intrinsic_like)
        elif op in ("field", "template"):
            states = state_objects(d, [])
            if not states:
                continue
            s = states[draw(st.integers(0, len(states) - 1))]
            if op == "field":
                s[draw(st.sampled_from(FIELDS))] = draw(random_value)
            else:
                key = draw(st.sampled_from(["Parameters", "ResultSelector", "ItemSelector", "Assign"]))
                s[key] = {draw(st.sampled_from(["a.$", "b", "c.$", "d.$"])): draw(random_value),
                          "e.$": draw(st.one_of(path_like, intrinsic_like))}
    depth = draw(st.sampled_from([0, 0, 0, 1, 3, 20, 60]))
    if depth:
        d = nest(d, depth, draw(st.lists(st.sampled_from(["Parallel", "Map"]), min_size=depth, max_size=depth)))
    return d


def _cyclic(d: Any) -> bool:
    try:
        orjson.dumps(d)
        return False
    except (TypeError, orjson.JSONEncodeError):
        return True


def nest(inner: Any, depth: int, kinds: list[str]) -> Any:
    """Wrap ``inner`` (a {StartAt, States} block) in ``depth`` levels of Parallel/Map."""
    block = inner if isinstance(inner, dict) else {"StartAt": "X", "States": {}}
    block = {k: v for k, v in block.items() if k in ("StartAt", "States")}
    for level, kind in enumerate(kinds):
        name = f"Nest{level}"
        if kind == "Parallel":
            state = {"Type": "Parallel", "Branches": [block], "End": True}
        else:
            state = {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"items.$": "$$.Map.Item.Value"},
                     "ItemProcessor": block, "End": True}
        block = {"StartAt": name, "States": {name: state}}
    return block


def execute_bounded(machine: express.Machine, data: Any) -> express.ExecutionResult:
    async def go() -> express.ExecutionResult:
        return await asyncio.wait_for(machine.execute(data), WALL_LIMIT_S)

    return asyncio.run(go())


def check(definition: Any, data: Any) -> None:
    engine = express.Engine(functions=FUNCTIONS, clock=express.VirtualClock(), max_duration_s=MAX_DURATION_S)
    try:
        machine = engine.compile(definition)
    except express.DefinitionError as e:
        assert e.problems, "a DefinitionError must list at least one problem"
        return
    t0 = time.monotonic()
    result = execute_bounded(machine, data)
    assert time.monotonic() - t0 < WALL_LIMIT_S
    assert result.status in STATUSES, result
    if result.status == "SUCCEEDED":
        orjson.dumps(result.output)
        assert result.error is None
    else:
        assert result.output is None
        assert result.error is None or isinstance(result.error, str)
        assert result.cause is None or isinstance(result.cause, str)
        # The engine reports its own defects as "Internal error while executing ...": never expected.
        assert not (result.cause or "").startswith("Internal error"), result.cause


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(definition=mutated_definitions(), data=json_values | shaped_inputs)
def test_mutated_definitions_never_crash(definition: Any, data: Any) -> None:
    check(definition, data)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.fixed_dictionaries({"v": json_values, "s": json_values, "w": json_values,
                                   "items": st.lists(json_values, max_size=4) | json_values,
                                   "boom": st.booleans()}))
def test_valid_definitions_with_random_inputs(data: Any) -> None:
    for base in BASES:
        check(base, data)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=60) | st.binary(max_size=60).map(bytes))
def test_random_definition_text(text: Any) -> None:
    try:
        express.Engine().compile(text)
    except express.DefinitionError:
        pass


def test_base_definitions_are_valid():
    engine = express.Engine(functions=FUNCTIONS, clock=express.VirtualClock(), max_duration_s=MAX_DURATION_S)
    inp = {"v": 2, "s": "q", "w": 0, "items": [{"x": "2020-01-01T00:00:00Z"}]}
    for base in BASES:
        r = execute_bounded(engine.compile(base), inp)
        assert r.status in ("SUCCEEDED", "FAILED"), r


def test_deep_nesting_60_levels_runs():
    inner = {"StartAt": "Leaf", "States": {"Leaf": {"Type": "Pass", "Result": "leaf", "End": True}}}
    d = nest(inner, 60, ["Parallel"] * 60)
    engine = express.Engine(clock=express.VirtualClock(), max_duration_s=MAX_DURATION_S)
    r = execute_bounded(engine.compile(d), {})
    assert r.status == "SUCCEEDED"
    out = r.output
    for _ in range(60):
        assert isinstance(out, list) and len(out) == 1
        out = out[0]
    assert out == "leaf"


def test_very_deep_nesting_is_rejected_or_runs():
    inner = {"StartAt": "Leaf", "States": {"Leaf": {"Type": "Pass", "End": True}}}
    d = nest(inner, 400, ["Map", "Parallel"] * 200)
    engine = express.Engine(clock=express.VirtualClock(), max_duration_s=MAX_DURATION_S)
    try:
        m = engine.compile(d)
    except express.DefinitionError:
        return
    r = execute_bounded(m, {"items": [1]})
    assert r.status in STATUSES
