"""JSONata states (``"QueryLanguage": "JSONata"``) end to end through Engine.compile/execute.

Expected errors and causes marked "AWS-recorded" are copied from the conformance recordings.
"""
from __future__ import annotations

import hashlib
import re

import pytest

import express
from tests.support import machine, run, single

JSONATA = {"QueryLanguage": "JSONata"}
QEE = "States.QueryEvaluationError"


def jmachine(states: dict, start: str | None = None, **top: object) -> dict:
    """A machine whose top-level QueryLanguage is JSONata."""
    return machine(states, start, QueryLanguage="JSONata", **top)


def jsingle(state: dict) -> dict:
    d = single(state)
    d["QueryLanguage"] = "JSONata"
    return d


def problems(definition: dict) -> list[express.Problem]:
    with pytest.raises(express.DefinitionError) as ei:
        express.Engine(clock=express.VirtualClock()).compile(definition)
    return ei.value.problems


def pointers(definition: dict) -> list[str]:
    return [p.pointer for p in problems(definition)]


# =============================================================================== QueryLanguage

async def test_top_level_query_language_jsonata_evaluates_output():
    r = await run(jsingle({"Type": "Pass", "Output": "{% $states.input.a * 2 %}"}), {"a": 21})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == 42


async def test_per_state_query_language_jsonata_in_jsonpath_machine():
    r = await run(single({"Type": "Pass", "QueryLanguage": "JSONata",
                          "Output": {"sum": "{% $states.input.a + $states.input.b %}"}}), {"a": 1, "b": 2})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"sum": 3}


async def test_jsonpath_state_does_not_evaluate_jsonata_strings():
    # In a JSONPath state a "{% %}" string is plain data (Result is literal).
    r = await run(single({"Type": "Pass", "Result": {"x": "{% 1 + 1 %}"}}), {})
    assert r.output == {"x": "{% 1 + 1 %}"}


async def test_machine_mixing_jsonpath_and_jsonata_states():
    d = machine({
        "P1": {"Type": "Pass", "Parameters": {"v.$": "$.n"}, "Assign": {"fromPath.$": "$.v"}, "Next": "J"},
        "J": {"Type": "Pass", "QueryLanguage": "JSONata",
              "Output": {"w": "{% $states.input.v + $fromPath %}"},
              "Assign": {"fromJsonata": "{% $states.input.v * 10 %}"}, "Next": "P2"},
        "P2": {"Type": "Pass", "Parameters": {"w.$": "$.w", "z.$": "$fromJsonata"}, "End": True},
    })
    r = await run(d, {"n": 3})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"w": 6, "z": 30}


# =============================================================================== Arguments

async def test_task_arguments_are_what_the_function_receives():
    seen = []

    def f(event):
        seen.append(event)
        return {"ok": True}

    d = jsingle({"Type": "Task", "Resource": "f",
                 "Arguments": {"name": "{% $uppercase($states.input.who) %}", "fixed": [1, "two"]}})
    r = await run(d, {"who": "bob"}, functions={"f": f})
    assert r.status == "SUCCEEDED", r.cause
    assert seen == [{"name": "BOB", "fixed": [1, "two"]}]
    assert r.output == {"ok": True}  # no Output: the result is the state output


async def test_task_arguments_whole_expression():
    d = jsingle({"Type": "Task", "Resource": "f", "Arguments": "{% $states.input.items[1] %}"})
    r = await run(d, {"items": [{"a": 1}, {"a": 2}]}, functions={"f": lambda e: e})
    assert r.output == {"a": 2}


async def test_task_without_arguments_receives_state_input():
    d = jsingle({"Type": "Task", "Resource": "f"})
    r = await run(d, {"k": "v"}, functions={"f": lambda e: {"got": e}})
    assert r.output == {"got": {"k": "v"}}


async def test_parallel_arguments_are_the_branch_input():
    d = jsingle({"Type": "Parallel", "Arguments": {"x": "{% $states.input.a %}"},
                 "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}]})
    r = await run(d, {"a": 7, "other": 0})
    assert r.output == [{"x": 7}]


# =============================================================================== Output

@pytest.mark.parametrize("state", [
    {"Type": "Pass"},
    {"Type": "Succeed"},
    {"Type": "Wait", "Seconds": 1},
    {"Type": "Task", "Resource": "f"},
    {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}]},
    {"Type": "Map", "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}},
     "Items": [1]},
])
async def test_output_replaces_state_output_for_every_state_type(state):
    d = jsingle({**state, "Output": {"in": "{% $states.input.v %}", "t": state["Type"]}})
    r = await run(d, {"v": 5}, functions={"f": lambda e: "result"})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"in": 5, "t": state["Type"]}


async def test_choice_output_on_matched_rule_and_default():
    d = jmachine({
        "C": {"Type": "Choice",
              "Choices": [{"Condition": "{% $states.input.n > 10 %}", "Next": "Big",
                           "Output": {"rule": "big", "n": "{% $states.input.n %}"}}],
              "Default": "Small", "Output": {"rule": "default", "n": "{% $states.input.n %}"}},
        "Big": {"Type": "Succeed"},
        "Small": {"Type": "Succeed"},
    })
    r = await run(d, {"n": 11})
    assert r.output == {"rule": "big", "n": 11}
    r = await run(d, {"n": 1})
    assert r.output == {"rule": "default", "n": 1}


async def test_output_literal_values():
    r = await run(jsingle({"Type": "Pass", "Output": "plain string"}), {"a": 1})
    assert r.output == "plain string"
    r = await run(jsingle({"Type": "Pass", "Output": 12}), {"a": 1})
    assert r.output == 12


# =============================================================================== Assign

async def test_assign_then_read_in_next_state():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"x": "{% $states.input.a %}", "lit": {"k": [1, 2]}}, "Next": "B"},
        "B": {"Type": "Pass", "Output": {"x": "{% $x %}", "k": "{% $lit.k[1] %}"}, "End": True},
    })
    r = await run(d, {"a": "hello"})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"x": "hello", "k": 2}


# =============================================================================== Choice

def _choice_machine() -> dict:
    return jmachine({
        "C": {"Type": "Choice",
              "Choices": [
                  {"Condition": "{% $states.input.kind = 'a' %}", "Next": "A",
                   "Assign": {"picked": "a"}},
                  {"Condition": "{% $states.input.kind = 'b' %}", "Next": "B",
                   "Assign": {"picked": "{% 'b-' & $states.input.kind %}"}},
              ],
              "Default": "D", "Assign": {"picked": "default"}},
        "A": {"Type": "Pass", "Output": {"at": "A", "picked": "{% $picked %}"}, "End": True},
        "B": {"Type": "Pass", "Output": {"at": "B", "picked": "{% $picked %}"}, "End": True},
        "D": {"Type": "Pass", "Output": {"at": "D", "picked": "{% $picked %}"}, "End": True},
    })


@pytest.mark.parametrize("kind, expected", [
    ("a", {"at": "A", "picked": "a"}),
    ("b", {"at": "B", "picked": "b-b"}),
    ("z", {"at": "D", "picked": "default"}),
])
async def test_choice_condition_rule_assign_and_default(kind, expected):
    r = await run(_choice_machine(), {"kind": kind})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == expected


async def test_choice_default_assign_not_applied_when_a_rule_matches():
    d = jmachine({
        "Init": {"Type": "Pass", "Assign": {"v": 0}, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "E"}],
              "Default": "E", "Assign": {"v": 99}},
        "E": {"Type": "Pass", "Output": "{% $v %}", "End": True},
    })
    r = await run(d, {})
    assert r.output == 0


async def test_choice_no_match_without_default_fails():
    d = jmachine({"C": {"Type": "Choice", "Choices": [{"Condition": "{% false %}", "Next": "E"}]},
                  "E": {"Type": "Succeed"}})
    r = await run(d, {})
    assert r.error == "States.NoChoiceMatched"


async def test_choice_condition_must_be_boolean():
    d = jmachine({"C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "E"}],
                        "Default": "E"},
                  "E": {"Type": "Succeed"}})
    r = await run(d, {"n": 1})
    assert r.error == QEE
    assert "'Condition'" in r.cause and "Expected 'boolean'" in r.cause


async def test_choice_default_fail_aws_recorded():
    # AWS-recorded (test_assign_in_choice[CONDITION_FALSE]).
    d = {"QueryLanguage": "JSONata", "StartAt": "ChoiceState", "States": {
        "ChoiceState": {"Type": "Choice", "Choices": [
            {"Condition": "{% $states.input.condition %}", "Next": "ConditionTrue",
             "Assign": {"Assignment": "Condition assignment"}}],
            "Default": "DefaultState", "Assign": {"Assignment": "Default Assignment"}},
        "ConditionTrue": {"Type": "Pass", "End": True},
        "DefaultState": {"Type": "Fail", "Cause": "Condition is false"}}}
    r = await run(d, {"condition": False})
    assert (r.status, r.error, r.cause) == ("FAILED", None, "Condition is false")
    r = await run(d, {"condition": True})
    assert r.status == "SUCCEEDED"
    assert r.output == {"condition": True}


# =============================================================================== Map

_ITER = {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Pass",
         "States": {"Pass": {"Type": "Pass", "End": True}}}


async def test_map_items_literal_array():
    d = jsingle({"Type": "Map", "Items": [1, "two", {"three": 3}], "ItemProcessor": _ITER})
    r = await run(d, {"ignored": True})
    assert r.output == [1, "two", {"three": 3}]


async def test_map_items_array_with_nested_expressions():
    d = jsingle({"Type": "Map", "Items": ["{% $states.input.a %}", 2], "ItemProcessor": _ITER})
    r = await run(d, {"a": "A"})
    assert r.output == ["A", 2]


async def test_map_items_expression():
    d = jsingle({"Type": "Map", "Items": "{% $states.input.list[$ > 1] %}", "ItemProcessor": _ITER})
    r = await run(d, {"list": [1, 2, 3]})
    assert r.output == [2, 3]


async def test_map_without_items_iterates_the_input():
    d = jsingle({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Output": "{% $states.input * 10 %}", "End": True}}}})
    r = await run(d, [1, 2, 3])
    assert r.output == [10, 20, 30]


@pytest.mark.parametrize("expr, tail", [
    ("{% 1 %}", "The JSONata expression '1' specified for the field 'Items' returned an unexpected "
                "result type. Expected 'array', but was 'number' for value: 1"),
    ("{% 'string' %}", "The JSONata expression ''string'' specified for the field 'Items' returned an "
                       "unexpected result type. Expected 'array', but was 'string' for value: \"string\""),
    ("{% {'foo': 'bar'} %}", "The JSONata expression '{'foo': 'bar'}' specified for the field 'Items' "
                             "returned an unexpected result type. Expected 'array', but was 'object' for "
                             "value: {\"foo\":\"bar\"}"),
    ("{% null %}", "The JSONata expression 'null' specified for the field 'Items' returned an unexpected "
                   "result type. Expected 'array', but was 'null' for value: null"),
])
async def test_map_items_non_array_error_aws_recorded(expr, tail):
    # AWS-recorded (test_map_state_items_eval_jsonata_fail[...]).
    d = {"Comment": "MAP_STATE_ITEMS_LITERAL", "QueryLanguage": "JSONata", "StartAt": "MapIterateState",
         "States": {"MapIterateState": {"Type": "Map", "MaxConcurrency": 1, "Items": expr,
                                        "ItemProcessor": _ITER, "End": True}}}
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == QEE
    assert r.cause == ("An error occurred while executing the state 'MapIterateState' (entered at the event "
                       "id #2). " + tail)


async def test_map_input_not_array_without_items_aws_recorded():
    d = {"QueryLanguage": "JSONata", "StartAt": "Start", "States": {
        "Start": {"Type": "Pass", "Output": "{% $states.input.items %}", "Next": "MapIterateState"},
        "MapIterateState": {"Type": "Map", "MaxConcurrency": 1, "ItemProcessor": _ITER, "End": True}}}
    r = await run(d, {"items": {"foo": "bar"}})
    assert r.error == QEE
    assert r.cause == ("An error occurred while executing the state 'MapIterateState' (entered at the event "
                       "id #4). Map state input must be an array but was: {\"foo\":\"bar\"}")


async def test_map_item_selector_jsonata():
    d = jsingle({"Type": "Map", "Items": "{% $states.input.xs %}",
                 "ItemSelector": {"value": "{% $states.context.Map.Item.Value %}",
                                  "index": "{% $states.context.Map.Item.Index %}",
                                  "tag": "{% $states.input.tag %}", "lit": True},
                 "ItemProcessor": _ITER})
    r = await run(d, {"xs": ["a", "b"], "tag": "T"})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [{"value": "a", "index": 0, "tag": "T", "lit": True},
                        {"value": "b", "index": 1, "tag": "T", "lit": True}]


# =============================================================================== TimeoutSeconds

def _slow_task_machine(timeout: object) -> tuple[dict, express.VirtualClock, dict]:
    clock = express.VirtualClock(start=1_000_000_000)

    async def slow(event):
        await clock.sleep(10)
        return "done"

    d = jsingle({"Type": "Task", "Resource": "slow", "TimeoutSeconds": timeout})
    return d, clock, {"slow": slow}


async def test_timeout_seconds_expression_times_out():
    d, clock, fns = _slow_task_machine("{% $states.input.t %}")
    r = await run(d, {"t": 3}, functions=fns, clock=clock)
    assert r.status == "FAILED"
    assert r.error == "States.Timeout"


async def test_timeout_seconds_expression_long_enough():
    d, clock, fns = _slow_task_machine("{% $states.input.t * 10 %}")
    r = await run(d, {"t": 3}, functions=fns, clock=clock)
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == "done"


@pytest.mark.parametrize("value", ["'five'", "0", "-1"])
async def test_timeout_seconds_expression_bad_value(value):
    d, clock, fns = _slow_task_machine("{% " + value + " %}")
    r = await run(d, {}, functions=fns, clock=clock)
    assert r.error == QEE


# =============================================================================== Wait

async def test_wait_seconds_expression():
    r = await run(jsingle({"Type": "Wait", "Seconds": "{% $states.input.s + 1 %}"}), {"s": 41})
    assert r.status == "SUCCEEDED", r.cause
    assert r.duration_s == pytest.approx(42)
    assert r.output == {"s": 41}


async def test_wait_seconds_expression_negative_is_query_evaluation_error():
    r = await run(jsingle({"Type": "Wait", "Seconds": "{% $states.input.s %}"}), {"s": -5})
    assert r.error == QEE


async def test_wait_timestamp_expression():
    clock = express.VirtualClock(start=1_000_000_000)  # 2001-09-09T01:46:40Z
    d = jsingle({"Type": "Wait", "Timestamp": "{% $states.input.date & 'T01:47:40Z' %}"})
    r = await run(d, {"date": "2001-09-09"}, clock=clock)
    assert r.status == "SUCCEEDED", r.cause
    assert r.duration_s == pytest.approx(60)


@pytest.mark.parametrize("value", ["2016-12-05 21:29:29Z", "2016-13-05T21:29:29Z", "2016-12-05T25:29:29Z"])
async def test_wait_timestamp_invalid_aws_recorded(value):
    # AWS-recorded (test_wait_timestamp_jsonata[NO_T / INVALID_DATE / INVALID_TIME]).
    d = {"Comment": "WAIT_TIMESTAMP_JSONATA", "QueryLanguage": "JSONata", "StartAt": "WaitState",
         "States": {"WaitState": {"Type": "Wait", "Timestamp": "{% $states.input.TimestampValue %}",
                                  "End": True}}}
    r = await run(d, {"TimestampValue": value})
    assert r.error == QEE
    assert r.cause == ("An error occurred while executing the state 'WaitState' (entered at the event id #2). "
                       "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format "
                       f"string: {value}")


# =============================================================================== Fail

async def test_fail_error_and_cause_expressions():
    d = jsingle({"Type": "Fail", "Error": "{% $states.input.error %}",
                 "Cause": "{% 'because ' & $states.input.why %}"})
    r = await run(d, {"error": "Custom.Error", "why": "reasons"})
    assert r.status == "FAILED"
    assert (r.error, r.cause) == ("Custom.Error", "because reasons")


async def test_fail_error_expression_aws_recorded():
    d = {"Comment": "RAISE_FAILURE_ERROR_JSONATA", "QueryLanguage": "JSONata", "StartAt": "FailState",
         "States": {"FailState": {"Type": "Fail", "Error": "{% $states.input.error %}"}}}
    r = await run(d, {"error": "Exception"})
    assert r.status == "FAILED"
    assert r.error == "Exception"
    assert not r.cause


async def test_fail_error_expression_not_string():
    r = await run(jsingle({"Type": "Fail", "Error": "{% $states.input.n %}"}), {"n": 3})
    assert r.error == QEE
    assert "Expected 'string'" in r.cause


# =============================================================================== templates

async def test_templates_nested_in_objects_and_arrays():
    d = jsingle({"Type": "Pass", "Output": {
        "list": ["{% 1 + 1 %}", {"deep": "{% $states.input.x %}"}, "literal", 3, None],
        "obj": {"a": {"b": "{% $states.input.x & '!' %}"}, "n": 1.5, "t": True},
        "not an expression": " {% 1 %}",
    }})
    r = await run(d, {"x": "hi"})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {
        "list": [2, {"deep": "hi"}, "literal", 3, None],
        "obj": {"a": {"b": "hi!"}, "n": 1.5, "t": True},
        "not an expression": " {% 1 %}",
    }


async def test_template_results_are_fresh_per_execution():
    m = express.Engine(clock=express.VirtualClock()).compile(
        jsingle({"Type": "Pass", "Output": {"l": [1, "{% 2 %}"]}}))
    r1 = await m.execute({})
    r1.output["l"].append(3)
    r2 = await m.execute({})
    assert r2.output == {"l": [1, 2]}


# =============================================================================== $states

async def test_states_result_in_task_output_and_assign():
    d = jmachine({
        "T": {"Type": "Task", "Resource": "f", "Arguments": {"n": "{% $states.input.n %}"},
              "Output": {"r": "{% $states.result.doubled %}", "in": "{% $states.input.n %}"},
              "Assign": {"saved": "{% $states.result.doubled + 1 %}"}, "Next": "E"},
        "E": {"Type": "Pass", "Output": {"prev": "{% $states.input %}", "saved": "{% $saved %}"}, "End": True},
    })
    r = await run(d, {"n": 4}, functions={"f": lambda e: {"doubled": e["n"] * 2}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"prev": {"r": 8, "in": 4}, "saved": 9}


async def test_states_result_in_map_output_and_assign():
    d = jmachine({
        "M": {"Type": "Map", "Items": "{% $states.input.xs %}",
              "ItemProcessor": {"StartAt": "P", "States": {
                  "P": {"Type": "Pass", "Output": "{% $states.input * $states.input %}", "End": True}}},
              "Output": {"squares": "{% $states.result %}"},
              "Assign": {"total": "{% $sum($states.result) %}"}, "Next": "E"},
        "E": {"Type": "Pass", "Output": {"o": "{% $states.input %}", "total": "{% $total %}"}, "End": True},
    })
    r = await run(d, {"xs": [1, 2, 3]})
    assert r.output == {"o": {"squares": [1, 4, 9]}, "total": 14}


async def test_states_result_in_parallel_output_and_assign():
    d = jmachine({
        "P": {"Type": "Parallel", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "a", "End": True}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": "b", "End": True}}}],
            "Output": {"joined": "{% $join($states.result, '+') %}"},
            "Assign": {"first": "{% $states.result[0] %}"}, "Next": "E"},
        "E": {"Type": "Pass", "Output": {"o": "{% $states.input %}", "first": "{% $first %}"}, "End": True},
    })
    r = await run(d, {})
    assert r.output == {"o": {"joined": "a+b"}, "first": "a"}


async def test_states_error_output_in_catch_output_and_assign():
    def boom(event):
        raise ValueError("bad value")

    d = jmachine({
        "T": {"Type": "Task", "Resource": "boom", "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H",
                         "Output": {"err": "{% $states.errorOutput.Error %}", "in": "{% $states.input.k %}"},
                         "Assign": {"caughtCause": "{% $parse($states.errorOutput.Cause).errorMessage %}"}}]},
        "H": {"Type": "Pass", "Output": {"o": "{% $states.input %}", "c": "{% $caughtCause %}"}, "End": True},
    })
    r = await run(d, {"k": "v"}, functions={"boom": boom})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"o": {"err": "ValueError", "in": "v"}, "c": "bad value"}


async def test_catch_without_output_passes_error_output():
    def boom(event):
        raise KeyError("x")

    d = jmachine({
        "T": {"Type": "Task", "Resource": "boom", "End": True,
              "Catch": [{"ErrorEquals": ["KeyError"], "Next": "H"}]},
        "H": {"Type": "Pass", "Output": "{% $states.input.Error %}", "End": True},
    })
    r = await run(d, {}, functions={"boom": boom})
    assert r.output == "KeyError"


async def test_states_context_execution_and_state_name():
    m = express.Engine(clock=express.VirtualClock()).compile(jmachine({
        "First State": {"Type": "Pass", "Output": {
            "exec": "{% $states.context.Execution.Name %}",
            "state": "{% $states.context.State.Name %}",
            "input": "{% $states.context.Execution.Input %}"}, "End": True},
    }))
    r = await m.execute({"a": 1}, name="my-execution")
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"exec": "my-execution", "state": "First State", "input": {"a": 1}}


async def test_states_input_is_the_raw_state_input():
    d = jmachine({
        "A": {"Type": "Pass", "Output": {"x": 1, "y": [2]}, "Next": "B"},
        "B": {"Type": "Pass", "Output": "{% $states.input %}", "End": True},
    })
    r = await run(d, {"ignored": True})
    assert r.output == {"x": 1, "y": [2]}


# =============================================================================== AWS functions

async def test_partition():
    r = await run(jsingle({"Type": "Pass", "Output": "{% $partition([1,2,3,4,5], 2) %}"}), {})
    assert r.output == [[1, 2], [3, 4], [5]]


@pytest.mark.parametrize("expr, expected", [
    ("$range(0, 10, 5)", [0, 5, 10]),
    ("$range(1, 3)", [1, 2, 3]),
    ("$range(5, 1, -2)", [5, 3, 1]),
])
async def test_range(expr, expected):
    r = await run(jsingle({"Type": "Pass", "Output": "{% " + expr + " %}"}), {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == expected


@pytest.mark.parametrize("alg, name", [("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"),
                                       ("SHA-384", "sha384"), ("SHA-512", "sha512")])
async def test_hash(alg, name):
    r = await run(jsingle({"Type": "Pass", "Output": "{% $hash($states.input.s, '" + alg + "') %}"}),
                  {"s": "hello"})
    assert r.output == hashlib.new(name, b"hello").hexdigest()


async def test_hash_unknown_algorithm_fails():
    r = await run(jsingle({"Type": "Pass", "Output": "{% $hash('x', 'CRC32') %}"}), {})
    assert r.error == QEE


async def test_random_with_seed_is_repeatable_and_in_range():
    d = jsingle({"Type": "Pass", "Output": {"a": "{% $random(42) %}", "b": "{% $random(42) %}",
                                             "c": "{% $random(7) %}", "u": "{% $random() %}"}})
    r1 = await run(d, {})
    r2 = await run(d, {})
    assert r1.status == "SUCCEEDED", r1.cause
    out = r1.output
    assert out["a"] == out["b"] == r2.output["a"]
    assert out["c"] == r2.output["c"]
    assert out["a"] != out["c"]
    for k in "acu":
        assert 0 <= out[k] < 1


async def test_uuid_is_v4_and_unique():
    r = await run(jsingle({"Type": "Pass", "Output": ["{% $uuid() %}", "{% $uuid() %}"]}), {})
    a, b = r.output
    v4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert v4.match(a) and v4.match(b)
    assert a != b


async def test_parse():
    r = await run(jsingle({"Type": "Pass", "Output": "{% $parse($states.input.s) %}"}),
                  {"s": "{\"a\": [1, {\"b\": null}]}"})
    assert r.output == {"a": [1, {"b": None}]}


async def test_parse_invalid_json_fails():
    r = await run(jsingle({"Type": "Pass", "Output": "{% $parse('{not json') %}"}), {})
    assert r.error == QEE


async def test_eval_is_not_available():
    r = await run(jsingle({"Type": "Pass", "Output": "{% $eval('1 + 1') %}"}), {})
    assert r.status == "FAILED"
    assert r.error == QEE
    assert "$eval('1 + 1')" in r.cause


async def test_standard_jsonata_builtins_work():
    r = await run(jsingle({"Type": "Pass", "Output": {
        "s": "{% $sum($states.input.xs) %}", "m": "{% $map($states.input.xs, function($v){$v*2}) %}",
        "j": "{% $string({'a': 1}) %}"}}), {"xs": [1, 2, 3]})
    assert r.output == {"s": 6, "m": [2, 4, 6], "j": "{\"a\":1}"}


# =============================================================================== errors

_PREFIX = "An error occurred while executing the state '{}' (entered at the event id #{}). "


async def test_undefined_output_aws_recorded():
    d = {"Comment": "BASE_UNDEFINED_OUTPUT", "StartAt": "State0", "QueryLanguage": "JSONata",
         "States": {"State0": {"Type": "Pass", "Output": "{% $doesNotExist %}", "End": True}}}
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == QEE
    assert r.cause == (_PREFIX.format("State0", 2) + "The JSONata expression '$doesNotExist' specified for "
                       "the field 'Output' returned nothing (undefined).")


async def test_undefined_output_field_later_state_aws_recorded():
    d = {"Comment": "BASE_UNDEFINED_MULTIPLE_STATES", "StartAt": "State0", "QueryLanguage": "JSONata",
         "States": {"State0": {"Type": "Pass", "Next": "State1"}, "State1": {"Type": "Pass", "Next": "State2"},
                    "State2": {"Type": "Pass", "Output": {"result": "{% $doesNotExist %}"}, "End": True}}}
    r = await run(d, {})
    assert r.error == QEE
    assert r.cause == (_PREFIX.format("State2", 6) + "The JSONata expression '$doesNotExist' specified for "
                       "the field 'Output/result' returned nothing (undefined).")


async def test_undefined_assign_aws_recorded():
    d = {"Comment": "BASE_UNDEFINED_ASSIGN", "StartAt": "State0", "QueryLanguage": "JSONata",
         "States": {"State0": {"Type": "Pass", "Assign": {"result": "{% $doesNotExist %}"}, "End": True}}}
    r = await run(d, {})
    assert r.error == QEE
    assert r.cause == (_PREFIX.format("State0", 2) + "The JSONata expression '$doesNotExist' specified for "
                       "the field 'Assign/result' returned nothing (undefined).")


async def test_undefined_arguments_field():
    d = jsingle({"Type": "Task", "Resource": "f", "Arguments": {"FunctionName": "{% $doesNotExist %}"}})
    r = await run(d, {}, functions={"f": lambda e: e})
    assert r.error == QEE
    assert r.cause == (_PREFIX.format("S", 2) + "The JSONata expression '$doesNotExist' specified for "
                       "the field 'Arguments/FunctionName' returned nothing (undefined).")


async def test_undefined_missing_input_field():
    r = await run(jsingle({"Type": "Pass", "Output": {"v": "{% $states.input.nope %}"}}), {"a": 1})
    assert r.error == QEE
    assert "'$states.input.nope' specified for the field 'Output/v' returned nothing (undefined)" in r.cause


async def test_type_error_is_query_evaluation_error():
    r = await run(jsingle({"Type": "Pass", "Output": "{% $states.input.a + 'x' %}"}), {"a": 1})
    assert r.status == "FAILED"
    assert r.error == QEE
    assert r.cause.startswith(_PREFIX.format("S", 2) + "The JSONata expression '$states.input.a + 'x'' "
                              "specified for the field 'Output' threw an error during evaluation")
    assert "T2002" in r.cause


@pytest.mark.parametrize("error_equals", [["States.QueryEvaluationError"], ["States.ALL"]])
async def test_query_evaluation_error_is_catchable(error_equals):
    d = jmachine({
        "T": {"Type": "Task", "Resource": "f", "Output": "{% $states.result.n + 'x' %}", "End": True,
              "Catch": [{"ErrorEquals": error_equals, "Next": "H"}]},
        "H": {"Type": "Pass", "Output": {"caught": "{% $states.input.Error %}"}, "End": True},
    })
    r = await run(d, {}, functions={"f": lambda e: {"n": 1}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"caught": QEE}


async def test_query_evaluation_error_in_arguments_is_retried():
    calls = []

    def f(event):
        calls.append(event)
        return event

    d = jsingle({"Type": "Task", "Resource": "f", "Arguments": "{% $undefinedVar %}",
                 "Retry": [{"ErrorEquals": ["States.QueryEvaluationError"], "MaxAttempts": 2,
                            "IntervalSeconds": 1}]})
    r = await run(d, {}, functions={"f": f})
    assert r.error == QEE
    assert calls == []
    assert r.duration_s == pytest.approx(3)  # 1 s + 2 s of retry delays


# =============================================================================== compile-time rejection

@pytest.mark.parametrize("state, field", [
    ({"Type": "Task", "Resource": "f", "Arguments": {"a": 1}, "End": True}, "Arguments"),
    ({"Type": "Pass", "Output": {"a": 1}, "End": True}, "Output"),
    ({"Type": "Map", "Items": [1], "ItemProcessor": _ITER, "End": True}, "Items"),
])
def test_jsonata_fields_rejected_in_jsonpath_state(state, field):
    ps = problems(machine({"S": state}))
    assert [p.pointer for p in ps] == ["/States/S"]
    assert f"'{field}'" in ps[0].message and "JSONPath" in ps[0].message


def test_condition_rejected_in_jsonpath_choice_rule():
    d = machine({"C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "E"}]},
                 "E": {"Type": "Succeed"}})
    ps = problems(d)
    assert "/States/C/Choices/0" in [p.pointer for p in ps]
    assert any("'Condition'" in p.message for p in ps)


def test_catcher_output_rejected_in_jsonpath_state():
    d = machine({"T": {"Type": "Task", "Resource": "f", "End": True,
                       "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "E", "Output": {"a": 1}}]},
                 "E": {"Type": "Succeed"}})
    assert "/States/T/Catch/0" in pointers(d)


@pytest.mark.parametrize("state, field", [
    ({"Type": "Pass", "InputPath": "$.a", "End": True}, "InputPath"),
    ({"Type": "Pass", "Parameters": {"a": 1}, "End": True}, "Parameters"),
    ({"Type": "Pass", "ResultPath": "$.r", "End": True}, "ResultPath"),
    ({"Type": "Pass", "OutputPath": "$.a", "End": True}, "OutputPath"),
    ({"Type": "Task", "Resource": "f", "ResultSelector": {"a": 1}, "End": True}, "ResultSelector"),
    ({"Type": "Task", "Resource": "f", "TimeoutSecondsPath": "$.t", "End": True}, "TimeoutSecondsPath"),
    ({"Type": "Map", "ItemsPath": "$.xs", "ItemProcessor": _ITER, "End": True}, "ItemsPath"),
    ({"Type": "Map", "MaxConcurrencyPath": "$.m", "ItemProcessor": _ITER, "End": True}, "MaxConcurrencyPath"),
    ({"Type": "Wait", "SecondsPath": "$.s", "End": True}, "SecondsPath"),
    ({"Type": "Wait", "TimestampPath": "$.t", "End": True}, "TimestampPath"),
    ({"Type": "Fail", "ErrorPath": "$.e"}, "ErrorPath"),
    ({"Type": "Fail", "CausePath": "$.c"}, "CausePath"),
])
def test_jsonpath_fields_rejected_in_jsonata_state(state, field):
    ps = problems(jmachine({"S": state}))
    assert "/States/S" in [p.pointer for p in ps]
    assert any(f"'{field}'" in p.message and "JSONata" in p.message for p in ps)


def test_jsonpath_field_rejected_in_state_level_jsonata_state():
    ps = problems(machine({"S": {"Type": "Pass", "QueryLanguage": "JSONata", "ResultPath": "$.r", "End": True}}))
    assert [p.pointer for p in ps] == ["/States/S"]


def test_catcher_result_path_rejected_in_jsonata_state():
    d = jmachine({"T": {"Type": "Task", "Resource": "f", "End": True,
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "E", "ResultPath": "$.e"}]},
                  "E": {"Type": "Succeed"}})
    assert "/States/T/Catch/0" in pointers(d)


def test_jsonpath_choice_rule_rejected_in_jsonata_state():
    d = jmachine({"C": {"Type": "Choice", "Choices": [
        {"Variable": "$.a", "NumericEquals": 1, "Next": "E"}], "Default": "E"},
        "E": {"Type": "Succeed"}})
    assert "/States/C/Choices/0" in pointers(d)


def test_state_query_language_jsonpath_rejected_in_jsonata_machine():
    d = jmachine({"A": {"Type": "Pass", "Next": "B"},
                  "B": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}})
    ps = problems(d)
    assert [p.pointer for p in ps] == ["/States/B"]
    assert "QueryLanguage" in ps[0].message


def test_jsonata_expression_syntax_error_rejected_at_compile():
    with pytest.raises(express.DefinitionError):
        express.Engine().compile(jsingle({"Type": "Pass", "Output": {"a": "{% 1 + %}"}}))


def test_unclosed_jsonata_expression_rejected_with_pointer():
    assert "/States/S/Output/a" in pointers(jsingle({"Type": "Pass", "Output": {"a": "{% 1 + 1"}}))


def test_invalid_top_level_query_language_rejected():
    assert "/QueryLanguage" in pointers(machine({"S": {"Type": "Succeed"}}, QueryLanguage="XPath"))


# =============================================================================== sequences

@pytest.mark.parametrize("expr, expected", [
    # JSONata: a sequence of one value is that value ("Sequences", JSONata processing model)
    ("$filter($states.input.items, function($v) { $v.n = 2 })", {"n": 2}),
    ("$map([5], function($v) { $v * 2 })", 10),
    ("$keys({'only': 1})", "only"),
    ("$states.input.items[n = 1].n", 1),
    ("$states.input.one.name", "x"),
    ("$lookup($states.input.one, 'name')", "x"),
    ("$each({'a': 1}, function($v, $k) { $k })", "a"),
    # ... unless kept as an array: the [] operator, an array constructor, array-returning functions
    ("$states.input.one.name[]", ["x"]),
    ("[$states.input.one.name]", ["x"]),
    ("$sort($states.input.one.name)", ["x"]),
    ("$append([], 1)", [1]),
    ("$partition([1], 1)", [[1]]),
    ("$range(1, 1)", [1]),
    ("$states.input.nested.list", [7]),
])
async def test_one_item_sequences_are_their_item(expr, expected):
    inp = {"items": [{"n": 1}, {"n": 2}], "one": [{"name": "x"}], "nested": {"list": [7]}}
    r = await run(jsingle({"Type": "Pass", "Output": "{% " + expr + " %}"}), inp)
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == expected


async def test_one_item_sequence_is_not_an_array_for_map_items():
    d = jsingle({"Type": "Map", "Items": "{% $filter($states.input, function($v) { $v > 2 }) %}",
                 "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}})
    r = await run(d, [1, 2, 3])
    assert r.status == "FAILED" and r.error == QEE
    assert "Expected 'array', but was 'number'" in r.cause
    d["States"]["S"]["Items"] = "{% $filter($states.input, function($v) { $v > 2 })[] %}"
    assert (await run(d, [1, 2, 3])).output == [3]
