"""Static ASL validation: one minimal broken definition per rule, plus valid machines."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from express.asl.errors import Problem
from express.asl.validation import validate

SCHEMA = "SCHEMA_VALIDATION_FAILED"
TARGET = "MISSING_TRANSITION_TARGET"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:f"


def machine(states: dict[str, Any], start: str | None = None, **top: Any) -> dict[str, Any]:
    return {"StartAt": start or next(iter(states)), "States": states, **top}


def one(**state: Any) -> dict[str, Any]:
    """A machine with the single state ``S`` (given fields), ending unless Next/Choice says so."""
    if state.get("Type") not in ("Choice", "Succeed", "Fail") and "Next" not in state:
        state.setdefault("End", True)
    return machine({"S": state})


def found(definition: Any) -> set[tuple[str, str]]:
    return {(p.code, p.pointer) for p in validate(definition)}


def assert_problem(definition: Any, code: str, pointer: str, fragment: str = "") -> None:
    problems = validate(definition)
    matching = [p for p in problems if p.code == code and p.pointer == pointer]
    assert matching, f"expected {code} at {pointer!r}, got {[str(p) for p in problems]}"
    if fragment:
        assert any(fragment in p.message for p in matching), [str(p) for p in matching]


# ------------------------------------------------------------------------------------------
# valid definitions


BIG_VALID: dict[str, Any] = {
    "Comment": "every state type, both query languages",
    "Version": "1.0",
    "TimeoutSeconds": 300,
    "StartAt": "Init",
    "States": {
        "Init": {
            "Type": "Pass",
            "Parameters": {
                "now.$": "$$.Execution.StartTime",
                "items.$": "States.ArrayRange(1, 10, 1)",
                "msg.$": "States.Format('hi {} \\'x\\'', $.name)",
                "nested": {"deep.$": "States.JsonToString($.a['b c'])", "lit": [1, {"x.$": "$.y"}]},
                "h.$": "States.Hash(States.Format('{}', $.v), 'SHA-256')",
                "var.$": "$myVar",
            },
            "ResultPath": "$.init",
            "Assign": {"counter": 0, "first.$": "$.init.items[0]", "obj": {"k.$": "$.x"}},
            "Next": "Check",
        },
        "Check": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.n", "NumericGreaterThan": 3, "Next": "Work",
                 "Assign": {"big": True}},
                {"And": [{"Variable": "$.s", "StringMatches": "a*"},
                         {"Not": {"Variable": "$.b", "IsPresent": True}}],
                 "Next": "Delay"},
                {"Or": [{"Variable": "$.t", "TimestampLessThan": "2016-03-14T01:59:00Z"},
                        {"Variable": "$.u", "StringEqualsPath": "$.v"}],
                 "Next": "Fan"},
            ],
            "Default": "Done",
        },
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": LAMBDA, "Payload.$": "$"},
            "ResultSelector": {"body.$": "$.Payload"},
            "ResultPath": "$.work",
            "OutputPath": "$",
            "InputPath": "$",
            "TimeoutSeconds": 30,
            "HeartbeatSeconds": 10,
            "Retry": [
                {"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 1, "MaxAttempts": 2,
                 "BackoffRate": 1.5, "MaxDelaySeconds": 5, "JitterStrategy": "FULL"},
                {"ErrorEquals": ["States.ALL"]},
            ],
            "Catch": [
                {"ErrorEquals": ["Custom"], "Next": "Failed", "ResultPath": "$.err"},
                {"ErrorEquals": ["States.ALL"], "Next": "Done", "ResultPath": None},
            ],
            "Next": "Fan",
        },
        "Delay": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Fan"},
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "B1", "States": {"B1": {"Type": "Wait", "Seconds": 0, "End": True}}},
                {"StartAt": "B2", "States": {
                    "B2": {"Type": "Pass", "Result": {"x": 1}, "Next": "B3"},
                    "B3": {"Type": "Succeed"}}},
            ],
            "ResultSelector": {"first.$": "$[0]"},
            "Next": "Loop",
        },
        "Loop": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
            "MaxConcurrency": 0,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Item",
                "States": {"Item": {"Type": "Pass", "End": True}},
            },
            "Next": "Legacy",
        },
        "Legacy": {
            "Type": "Map",
            "Iterator": {"StartAt": "LegacyItem",
                         "States": {"LegacyItem": {"Type": "Pass", "End": True}}},
            "Parameters": {"v.$": "$$.Map.Item.Value"},
            "Next": "Lata",
        },
        "Lata": {
            "Type": "Task",
            "QueryLanguage": "JSONata",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {"FunctionName": LAMBDA, "Payload": "{% $states.input %}"},
            "Output": "{% $states.result.Payload %}",
            "Assign": {"r": "{% $states.result %}"},
            "TimeoutSeconds": "{% $timeout %}",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done",
                       "Output": "{% $states.errorOutput %}"}],
            "Next": "LataChoice",
        },
        "LataChoice": {
            "Type": "Choice",
            "QueryLanguage": "JSONata",
            "Choices": [{"Condition": "{% $r > 1 %}", "Next": "LataMap", "Output": {"a": 1}}],
            "Default": "Done",
        },
        "LataMap": {
            "Type": "Map",
            "QueryLanguage": "JSONata",
            "Items": "{% $states.input.items %}",
            "ItemSelector": "{% $states.context.Map.Item.Value %}",
            "MaxConcurrency": "{% 2 %}",
            "ItemProcessor": {"StartAt": "LataItem",
                              "States": {"LataItem": {"Type": "Pass", "End": True}}},
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "ErrorPath": "$.err.Error",
                   "CausePath": "States.Format('bad: {}', $.err.Cause)"},
    },
}


def test_big_valid_definition_has_no_problems() -> None:
    assert validate(BIG_VALID) == []


def test_validate_does_not_mutate() -> None:
    before = copy.deepcopy(BIG_VALID)
    validate(BIG_VALID)
    assert BIG_VALID == before


def test_jsonata_machine_valid() -> None:
    d = machine({
        "A": {"Type": "Pass", "Output": {"x": "{% $states.input.x %}"}, "Assign": {"v": 1},
              "Next": "W"},
        "W": {"Type": "Wait", "Seconds": "{% $v %}", "Next": "F"},
        "F": {"Type": "Fail", "Error": "{% 'E' %}", "Cause": "c"},
    }, QueryLanguage="JSONata")
    assert validate(d) == []


def test_distributed_map_with_reader_is_accepted() -> None:
    d = one(Type="Map", Label="MyMap", MaxConcurrency=5, ToleratedFailurePercentage=10,
            ItemReader={"Resource": "arn:aws:states:::s3:getObject",
                        "ReaderConfig": {"InputType": "JSON"},
                        "Parameters": {"Bucket": "b", "Key.$": "$.key"}},
            ItemBatcher={"MaxItemsPerBatch": 10, "BatchInput": {"x.$": "$.x"}},
            ItemProcessor={"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                           "StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}})
    assert validate(d) == []


# ------------------------------------------------------------------------------------------
# top level


def test_definition_not_an_object() -> None:
    assert found([1, 2]) == {(SCHEMA, "")}
    assert found("x") == {(SCHEMA, "")}


def test_missing_states() -> None:
    assert_problem({"StartAt": "A"}, SCHEMA, "", "These fields are required: [States]")


def test_missing_start_at() -> None:
    assert_problem({"States": {"A": {"Type": "Succeed"}}}, SCHEMA, "", "These fields are required: [StartAt]")


def test_start_at_names_no_state() -> None:
    d = machine({"A": {"Type": "Succeed"}}, start="Nope")
    assert_problem(d, TARGET, "/StartAt", "Missing 'Next' target: Nope")


def test_unknown_top_level_field() -> None:
    d = machine({"A": {"Type": "Succeed"}}, Coment="typo")
    assert_problem(d, SCHEMA, "", 'The field "Coment" is not supported by Step Functions')


def test_top_level_query_language_enum() -> None:
    assert_problem(machine({"A": {"Type": "Succeed"}}, QueryLanguage="XPath"),
                   SCHEMA, "/QueryLanguage")


def test_top_level_timeout_seconds_type() -> None:
    assert_problem(machine({"A": {"Type": "Succeed"}}, TimeoutSeconds="10"),
                   SCHEMA, "/TimeoutSeconds")
    assert_problem(machine({"A": {"Type": "Succeed"}}, TimeoutSeconds=True),
                   SCHEMA, "/TimeoutSeconds")


def test_comment_and_version_must_be_strings() -> None:
    d = machine({"A": {"Type": "Succeed"}}, Comment=1, Version=2)
    assert {(SCHEMA, "/Comment"), (SCHEMA, "/Version")} <= found(d)


def test_states_must_be_object() -> None:
    assert_problem({"StartAt": "A", "States": []}, SCHEMA, "/States")


# ------------------------------------------------------------------------------------------
# transitions, names, reachability


def test_missing_next_target() -> None:
    d = machine({"pass1": {"Type": "Pass", "Next": "pass3"}, "pass2": {"Type": "Succeed"}})
    problems = [str(p) for p in validate(d)]
    assert "MISSING_TRANSITION_TARGET: Missing 'Next' target: pass3 at /States/pass1/Next" in problems
    assert 'MISSING_TRANSITION_TARGET: State "pass2" is not reachable. at /States/pass2' in problems


def test_unreachable_state() -> None:
    d = machine({"A": {"Type": "Succeed"}, "B": {"Type": "Pass", "End": True}})
    assert validate(d) == [Problem("/States/B", TARGET, 'State "B" is not reachable.')]


def test_reachability_follows_choice_default_and_catch() -> None:
    d = machine({
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "T"}],
              "Default": "D"},
        "D": {"Type": "Succeed"},
        "T": {"Type": "Task", "Resource": LAMBDA, "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}]},
        "H": {"Type": "Fail"},
    })
    assert validate(d) == []


def test_no_terminal_state() -> None:
    d = machine({"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}})
    assert found(d) == {("MISSING_END_STATE", "")}


def test_duplicate_state_name_across_branches() -> None:
    d = machine({
        "P": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}},
            {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}},
        ]},
    })
    assert_problem(d, "DUPLICATE_STATE_NAME", "/States/P/Branches/1/States/X",
                   "Duplicate State name: X")


def test_state_name_too_long() -> None:
    name = "n" * 81
    assert_problem(machine({name: {"Type": "Succeed"}}), SCHEMA, f"/States/{name}")


def test_pointer_escapes_slash_and_tilde() -> None:
    d = machine({"a/b~c": {"Type": "Pass", "Next": "nope"}})
    assert_problem(d, TARGET, "/States/a~1b~0c/Next")


def test_next_and_end_both() -> None:
    d = machine({"A": {"Type": "Pass", "Next": "B", "End": True}, "B": {"Type": "Succeed"}})
    assert_problem(d, SCHEMA, "/States/A", "Only one of 'Next' or 'End'")


def test_neither_next_nor_end() -> None:
    d = machine({"A": {"Type": "Pass"}, "B": {"Type": "Succeed"}})
    assert_problem(d, SCHEMA, "/States/A", "Either 'Next' or 'End'")


def test_end_must_be_boolean() -> None:
    assert_problem(one(Type="Pass", End="yes"), SCHEMA, "/States/S/End")


def test_succeed_cannot_have_next() -> None:
    d = machine({"A": {"Type": "Succeed", "Next": "B"}, "B": {"Type": "Succeed"}})
    assert_problem(d, SCHEMA, "/States/A", "Field 'Next' is not supported")


def test_choice_cannot_have_end() -> None:
    d = one(Type="Choice", End=True, Choices=[{"Variable": "$.x", "IsNull": True, "Next": "S"}],
            Default="S")
    assert_problem(d, SCHEMA, "/States/S", "Field 'End' is not supported")


def test_branch_transitions_stay_in_branch() -> None:
    d = machine({
        "P": {"Type": "Parallel", "Next": "Out", "Branches": [
            {"StartAt": "In", "States": {"In": {"Type": "Pass", "Next": "Out"}}}]},
        "Out": {"Type": "Succeed"},
    })
    assert_problem(d, TARGET, "/States/P/Branches/0/States/In/Next", "Missing 'Next' target: Out")


# ------------------------------------------------------------------------------------------
# state types and fields


def test_missing_type() -> None:
    assert_problem(machine({"A": {"End": True}}), SCHEMA, "/States/A", "These fields are required: [Type]")


def test_invalid_type() -> None:
    assert_problem(one(Type="Lambda"), SCHEMA, "/States/S/Type")


def test_unknown_state_field() -> None:
    assert_problem(one(Type="Pass", Foo=1), SCHEMA, "/States/S",
                   'The field "Foo" is not supported by Step Functions')


def test_field_not_allowed_for_type() -> None:
    assert_problem(one(Type="Pass", Retry=[]), SCHEMA, "/States/S", "Field 'Retry' is not supported")
    assert_problem(one(Type="Map", TimeoutSeconds=5, ItemProcessor={
        "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}),
        SCHEMA, "/States/S", "Field 'TimeoutSeconds' is not supported")
    assert_problem(one(Type="Fail", OutputPath="$"), SCHEMA, "/States/S")
    assert_problem(one(Type="Wait", Seconds=1, ResultPath="$.x"), SCHEMA, "/States/S")


def test_jsonata_field_in_jsonpath_state() -> None:
    assert_problem(one(Type="Pass", Output={"a": 1}), SCHEMA, "/States/S",
                   "The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported "
                   "for the 'JSONata' QueryLanguage")


def test_jsonpath_field_in_jsonata_state() -> None:
    assert_problem(one(Type="Pass", QueryLanguage="JSONata", InputPath="$.x"), SCHEMA, "/States/S",
                   "field 'InputPath' is only supported for the 'JSONPath' QueryLanguage")


def test_state_jsonpath_under_jsonata_machine() -> None:
    d = machine({"S": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}},
                QueryLanguage="JSONata")
    assert_problem(d, SCHEMA, "/States/S",
                   "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine")


def test_inner_states_inherit_machine_language_not_map_language() -> None:
    d = one(Type="Map", QueryLanguage="JSONata", ItemProcessor={
        "StartAt": "P", "States": {"P": {"Type": "Pass", "Output": "{% 1 %}", "End": True}}})
    assert_problem(d, SCHEMA, "/States/S/ItemProcessor/States/P", "'Output'")


def test_processor_cannot_set_query_language() -> None:
    d = one(Type="Map", ItemProcessor={
        "QueryLanguage": "JSONPath", "StartAt": "P", "States": {"P": {"Type": "Succeed"}}})
    assert_problem(d, SCHEMA, "/States/S/ItemProcessor", "Field 'QueryLanguage' is not supported")


def test_state_must_be_object() -> None:
    assert_problem(machine({"A": "Pass"}), SCHEMA, "/States/A")


# ------------------------------------------------------------------------------------------
# paths and payload templates


def test_invalid_json_path() -> None:
    assert_problem(one(Type="Pass", InputPath="x.y"), "INVALID_JSON_PATH", "/States/S/InputPath")


def test_result_path_must_be_reference_path() -> None:
    assert_problem(one(Type="Pass", ResultPath="$.a[*]"), "INVALID_REFERENCE_PATH",
                   "/States/S/ResultPath")


def test_result_path_cannot_target_context_or_variable() -> None:
    assert_problem(one(Type="Pass", ResultPath="$$.x"), "INVALID_REFERENCE_PATH",
                   "/States/S/ResultPath")
    assert_problem(one(Type="Pass", ResultPath="$var.x"), "INVALID_REFERENCE_PATH",
                   "/States/S/ResultPath")


def test_null_paths_allowed() -> None:
    assert validate(one(Type="Pass", InputPath=None, OutputPath=None, ResultPath=None)) == []


def test_items_path_must_be_reference_path() -> None:
    d = one(Type="Map", ItemsPath="$..x", ItemProcessor={
        "StartAt": "I", "States": {"I": {"Type": "Succeed"}}})
    assert_problem(d, "INVALID_REFERENCE_PATH", "/States/S/ItemsPath")


def test_template_value_must_be_string() -> None:
    assert_problem(one(Type="Pass", Parameters={"a.$": 3}), SCHEMA, "/States/S/Parameters/a.$")


def test_template_value_must_be_path_or_intrinsic() -> None:
    # AWS reports it at the template field, not at the key
    assert_problem(one(Type="Pass", Parameters={"a": {"b.$": "hello"}}), SCHEMA,
                   "/States/S/Parameters",
                   "must be a valid JSONPath or a valid intrinsic function call")


def test_template_invalid_path_in_list() -> None:
    assert_problem(one(Type="Pass", Parameters={"l": [{"x.$": "$.a["}]}), "INVALID_JSON_PATH",
                   "/States/S/Parameters/l/0/x.$")


def test_template_duplicate_key_after_stripping() -> None:
    assert_problem(one(Type="Pass", Parameters={"a": 1, "a.$": "$.a"}), SCHEMA,
                   "/States/S/Parameters/a.$", "more than once")


def test_parameters_must_be_object() -> None:
    assert_problem(one(Type="Pass", Parameters="x"), SCHEMA, "/States/S/Parameters")


@pytest.mark.parametrize("expr", [
    "States.Nope($.x)",
    "States.Format('a', $.x",
    "States.Format('unterminated)",
    "States.Array(1 2)",
    "States.Array(foo)",
    "States.ArrayRange(1, 5)",  # argument counts are checked here, not only when compiling
    "States.UUID(1)",
    "States.Format",
])
def test_invalid_intrinsic(expr: str) -> None:
    assert_problem(one(Type="Pass", Parameters={"a.$": expr}), "INVALID_INTRINSIC_FUNCTION",
                   "/States/S/Parameters/a.$")


def test_intrinsic_nesting_limit() -> None:
    expr = "States.Array(" * 11 + ")" * 11
    assert_problem(one(Type="Pass", Parameters={"a.$": expr}), "INVALID_INTRINSIC_FUNCTION",
                   "/States/S/Parameters/a.$", "nest")
    ok = "States.Array(" * 10 + ")" * 10
    assert validate(one(Type="Pass", Parameters={"a.$": ok})) == []


def test_valid_intrinsics() -> None:
    params = {
        "a.$": "States.Format('{} and {}', $.a, $$.Execution.Id)",
        "b.$": "States.StringSplit($.s, ', ')",
        "c.$": "States.MathAdd($.n, -1.5)",
        "d.$": "States.JsonMerge($.a, $.b, false)",
        "e.$": "States.UUID()",
        "f.$": "States.ArrayGetItem($.list[0,1], 0)",
        "g.$": "States.Format('esc \\{\\} \\\\ \\'q\\'')",
        "h.$": "States.Array($myvar, null, true)",
    }
    assert validate(one(Type="Pass", Parameters=params)) == []


# ------------------------------------------------------------------------------------------
# Assign


def test_assign_invalid_variable_name() -> None:
    assert_problem(one(Type="Pass", Assign={"x.y": 1}), SCHEMA, "/States/S/Assign/x.y")
    assert_problem(one(Type="Pass", Assign={"1x": 1}), SCHEMA, "/States/S/Assign/1x")


def test_assign_reserved_states() -> None:
    assert_problem(one(Type="Pass", Assign={"states": 1}), SCHEMA, "/States/S/Assign/states",
                   "reserved")


def test_assign_value_path() -> None:
    assert_problem(one(Type="Pass", Assign={"v.$": "nope"}), SCHEMA, "/States/S/Assign")


def test_assign_not_on_succeed() -> None:
    assert_problem(one(Type="Succeed", Assign={"v": 1}), SCHEMA, "/States/S",
                   "Field 'Assign' is not supported")


# ------------------------------------------------------------------------------------------
# Choice


def choice(*rules: Any, **extra: Any) -> dict[str, Any]:
    return machine({"C": {"Type": "Choice", "Choices": list(rules), "Default": "D", **extra},
                    "D": {"Type": "Succeed"}})


def test_choice_requires_choices() -> None:
    assert_problem(machine({"C": {"Type": "Choice", "Default": "D"}, "D": {"Type": "Succeed"}}),
                   SCHEMA, "/States/C", "These fields are required: [Choices]")
    assert_problem(choice(), SCHEMA, "/States/C/Choices")


def test_choice_rule_requires_next() -> None:
    assert_problem(choice({"Variable": "$.x", "IsNull": True}), SCHEMA, "/States/C/Choices/0",
                   "These fields are required: [Next]")


def test_choice_rule_next_target_missing() -> None:
    assert_problem(choice({"Variable": "$.x", "IsNull": True, "Next": "Z"}), TARGET,
                   "/States/C/Choices/0/Next")


def test_choice_default_target_missing() -> None:
    d = machine({"C": {"Type": "Choice", "Default": "Z",
                       "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "D"}]},
                 "D": {"Type": "Succeed"}})
    assert_problem(d, TARGET, "/States/C/Default", "Missing 'Next' target: Z")


def test_choice_rule_without_operator() -> None:
    assert_problem(choice({"Variable": "$.x", "Next": "D"}), SCHEMA, "/States/C/Choices/0")


def test_choice_rule_two_operators() -> None:
    assert_problem(choice({"Variable": "$.x", "IsNull": True, "IsString": True, "Next": "D"}),
                   SCHEMA, "/States/C/Choices/0", "exactly one")


def test_choice_operator_value_types() -> None:
    assert_problem(choice({"Variable": "$.x", "NumericEquals": "3", "Next": "D"}), SCHEMA,
                   "/States/C/Choices/0/NumericEquals")
    assert_problem(choice({"Variable": "$.x", "BooleanEquals": 1, "Next": "D"}), SCHEMA,
                   "/States/C/Choices/0/BooleanEquals")
    assert_problem(choice({"Variable": "$.x", "StringEquals": 1, "Next": "D"}), SCHEMA,
                   "/States/C/Choices/0/StringEquals")
    assert_problem(choice({"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "D"}), SCHEMA,
                   "/States/C/Choices/0/TimestampEquals")
    assert_problem(choice({"Variable": "$.x", "NumericEqualsPath": "y", "Next": "D"}),
                   "INVALID_JSON_PATH", "/States/C/Choices/0/NumericEqualsPath")


def test_choice_variable_required_and_valid() -> None:
    assert_problem(choice({"IsNull": True, "Next": "D"}), SCHEMA, "/States/C/Choices/0",
                   "These fields are required: [Variable]")
    assert_problem(choice({"Variable": "x", "IsNull": True, "Next": "D"}), "INVALID_JSON_PATH",
                   "/States/C/Choices/0/Variable")


def test_choice_and_must_be_non_empty_list() -> None:
    assert_problem(choice({"And": [], "Next": "D"}), SCHEMA, "/States/C/Choices/0/And")
    assert_problem(choice({"Or": {"Variable": "$.x", "IsNull": True}, "Next": "D"}), SCHEMA,
                   "/States/C/Choices/0/Or")


def test_choice_nested_rule_cannot_have_next() -> None:
    rule = {"Not": {"Variable": "$.x", "IsNull": True, "Next": "D"}, "Next": "D"}
    assert_problem(choice(rule), SCHEMA, "/States/C/Choices/0/Not")


def test_choice_nested_rule_checked() -> None:
    rule = {"And": [{"Variable": "$.x", "IsNull": True}, {"Variable": "$.y"}], "Next": "D"}
    assert_problem(choice(rule), SCHEMA, "/States/C/Choices/0/And/1")


def test_jsonata_choice_rule_needs_condition() -> None:
    d = choice({"Next": "D"}, QueryLanguage="JSONata")
    assert_problem(d, SCHEMA, "/States/C/Choices/0", "These fields are required: [Condition]")
    d = choice({"Condition": "$x > 1", "Next": "D"}, QueryLanguage="JSONata")
    assert_problem(d, SCHEMA, "/States/C/Choices/0/Condition")


def test_condition_in_jsonpath_rule() -> None:
    assert_problem(choice({"Condition": True, "Next": "D"}), SCHEMA, "/States/C/Choices/0",
                   "'Condition' is only supported for the 'JSONata' QueryLanguage")


# ------------------------------------------------------------------------------------------
# Wait / Fail / Task


def test_wait_needs_exactly_one_duration() -> None:
    assert_problem(one(Type="Wait"), SCHEMA, "/States/S", "Exactly one of")
    assert_problem(one(Type="Wait", Seconds=1, SecondsPath="$.s"), SCHEMA, "/States/S",
                   "Exactly one of")


def test_wait_values() -> None:
    assert_problem(one(Type="Wait", Seconds=-1), SCHEMA, "/States/S/Seconds")
    assert_problem(one(Type="Wait", Seconds="5"), SCHEMA, "/States/S/Seconds")
    assert_problem(one(Type="Wait", Timestamp="2016-03-14 01:59:00"), SCHEMA, "/States/S/Timestamp")
    assert_problem(one(Type="Wait", TimestampPath="$.a[*]"), "INVALID_REFERENCE_PATH",
                   "/States/S/TimestampPath")


def test_fail_error_and_error_path() -> None:
    assert_problem(one(Type="Fail", Error="E", ErrorPath="$.e"), SCHEMA, "/States/S",
                   "'Error' and 'ErrorPath'")
    assert_problem(one(Type="Fail", Cause="C", CausePath="$.c"), SCHEMA, "/States/S",
                   "'Cause' and 'CausePath'")
    assert_problem(one(Type="Fail", Error=5), SCHEMA, "/States/S/Error")


def test_task_requires_resource() -> None:
    assert_problem(one(Type="Task"), SCHEMA, "/States/S", "These fields are required: [Resource]")
    assert_problem(one(Type="Task", Resource=5), SCHEMA, "/States/S/Resource")


def test_task_timeout_and_heartbeat() -> None:
    assert_problem(one(Type="Task", Resource=LAMBDA, TimeoutSeconds=5, TimeoutSecondsPath="$.t"),
                   SCHEMA, "/States/S", "'TimeoutSeconds' and 'TimeoutSecondsPath'")
    assert_problem(one(Type="Task", Resource=LAMBDA, TimeoutSeconds=5, HeartbeatSeconds=5),
                   SCHEMA, "/States/S/HeartbeatSeconds")
    assert_problem(one(Type="Task", Resource=LAMBDA, TimeoutSeconds=0), SCHEMA,
                   "/States/S/TimeoutSeconds")


@pytest.mark.parametrize("resource,fragment", [
    ("arn:aws:states:::ecs:runTask.sync", "'.sync'"),
    ("arn:aws:states:::states:startExecution.sync:2", "'.sync'"),
    ("arn:aws:states:::sqs:sendMessage.waitForTaskToken", "'.waitForTaskToken'"),
    ("arn:aws:states:us-east-1:123456789012:activity:worker", "Activity ARN"),
])
def test_express_unsupported_resources(resource: str, fragment: str) -> None:
    assert_problem(one(Type="Task", Resource=resource), SCHEMA, "/States/S/Resource", fragment)


# ------------------------------------------------------------------------------------------
# Retry / Catch


def task(**extra: Any) -> dict[str, Any]:
    return machine({"T": {"Type": "Task", "Resource": LAMBDA, "End": True, **extra},
                    "H": {"Type": "Succeed"}}, start="T")


def test_retry_error_equals_required_and_non_empty() -> None:
    assert_problem(task(Retry=[{}]), SCHEMA, "/States/T/Retry/0", "These fields are required: [ErrorEquals]")
    assert_problem(task(Retry=[{"ErrorEquals": []}]), SCHEMA, "/States/T/Retry/0/ErrorEquals")


def test_retry_states_all_alone_and_last() -> None:
    assert_problem(task(Retry=[{"ErrorEquals": ["States.ALL", "X"]}]), SCHEMA,
                   "/States/T/Retry/0/ErrorEquals", "alone")
    assert_problem(task(Retry=[{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]), SCHEMA,
                   "/States/T/Retry/0/ErrorEquals", "last")


@pytest.mark.parametrize("field,value", [
    ("IntervalSeconds", 0), ("MaxAttempts", -1), ("BackoffRate", 0.5), ("MaxDelaySeconds", 0),
    ("JitterStrategy", "HALF"), ("IntervalSeconds", "1"), ("MaxAttempts", 1.5),
])
def test_retry_field_ranges(field: str, value: Any) -> None:
    assert_problem(task(Retry=[{"ErrorEquals": ["X"], field: value}]), SCHEMA,
                   f"/States/T/Retry/0/{field}")


def test_retry_unknown_field() -> None:
    assert_problem(task(Retry=[{"ErrorEquals": ["X"], "Backoff": 2}]), SCHEMA, "/States/T/Retry/0")


def test_catch_requires_next() -> None:
    assert_problem(task(Catch=[{"ErrorEquals": ["X"]}]), SCHEMA, "/States/T/Catch/0",
                   "These fields are required: [Next]")


def test_catch_next_target_missing() -> None:
    assert_problem(task(Catch=[{"ErrorEquals": ["X"], "Next": "Z"}]), TARGET,
                   "/States/T/Catch/0/Next")


def test_catch_states_all_last() -> None:
    d = task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "H"},
                    {"ErrorEquals": ["X"], "Next": "H"}])
    assert_problem(d, SCHEMA, "/States/T/Catch/0/ErrorEquals", "last")


def test_catch_result_path() -> None:
    assert_problem(task(Catch=[{"ErrorEquals": ["X"], "Next": "H", "ResultPath": "$.a[*]"}]),
                   "INVALID_REFERENCE_PATH", "/States/T/Catch/0/ResultPath")


# ------------------------------------------------------------------------------------------
# Parallel / Map


def test_parallel_branches_required() -> None:
    assert_problem(one(Type="Parallel"), SCHEMA, "/States/S", "These fields are required: [Branches]")
    assert_problem(one(Type="Parallel", Branches=[]), SCHEMA, "/States/S/Branches")


def test_parallel_branch_validated_recursively() -> None:
    d = one(Type="Parallel", Branches=[{"States": {"X": {"Type": "Bogus"}}}])
    got = found(d)
    assert (SCHEMA, "/States/S/Branches/0") in got  # missing StartAt
    assert (SCHEMA, "/States/S/Branches/0/States/X/Type") in got


def test_map_requires_processor() -> None:
    assert_problem(one(Type="Map"), SCHEMA, "/States/S", "Field 'ItemProcessor' is required")


def test_map_processor_config_mode() -> None:
    d = one(Type="Map", ItemProcessor={"ProcessorConfig": {"Mode": "PARALLEL"}, "StartAt": "I",
                                       "States": {"I": {"Type": "Succeed"}}})
    assert_problem(d, SCHEMA, "/States/S/ItemProcessor/ProcessorConfig/Mode")


def test_map_item_selector_and_parameters() -> None:
    d = one(Type="Map", ItemSelector={}, Parameters={},
            ItemProcessor={"StartAt": "I", "States": {"I": {"Type": "Succeed"}}})
    assert_problem(d, SCHEMA, "/States/S", "'ItemSelector' and 'Parameters'")


@pytest.mark.parametrize("field,value", [
    ("MaxConcurrency", -1), ("ToleratedFailurePercentage", 101), ("ToleratedFailureCount", -2),
    ("Label", "has space"), ("Label", "x" * 41),
])
def test_map_field_values(field: str, value: Any) -> None:
    d = one(Type="Map", ItemProcessor={"StartAt": "I", "States": {"I": {"Type": "Succeed"}}},
            **{field: value})
    assert_problem(d, SCHEMA, f"/States/S/{field}")


def test_map_inner_transition_stays_inside() -> None:
    d = machine({
        "M": {"Type": "Map", "Next": "After",
              "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Next": "After"}}}},
        "After": {"Type": "Succeed"},
    })
    assert_problem(d, TARGET, "/States/M/ItemProcessor/States/I/Next")


def test_jsonata_items_type() -> None:
    d = one(Type="Map", QueryLanguage="JSONata", Items="$.x",
            ItemProcessor={"StartAt": "I", "States": {"I": {"Type": "Succeed"}}})
    assert_problem(d, SCHEMA, "/States/S/Items")


# ------------------------------------------------------------------------------------------
# everything at once


def test_all_problems_reported() -> None:
    d = {
        "StartAt": "A",
        "Extra": 1,
        "States": {
            "A": {"Type": "Pass", "Next": "Missing", "Parameters": {"x.$": "nope"}},
            "B": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                  "End": True, "Retry": [{"ErrorEquals": [], "MaxAttempts": -1}]},
            "C": {"Type": "Wait", "Next": "A"},
            "D": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "A"}]},
            "E": {"Type": "Fail", "Error": "e", "ErrorPath": "$.e"},
        },
    }
    got = found(d)
    expected = {
        (SCHEMA, ""),
        (TARGET, "/States/A/Next"),
        (SCHEMA, "/States/A/Parameters"),
        (SCHEMA, "/States/B/Resource"),
        (SCHEMA, "/States/B/Retry/0/ErrorEquals"),
        (SCHEMA, "/States/B/Retry/0/MaxAttempts"),
        (SCHEMA, "/States/C"),
        (SCHEMA, "/States/D/Choices/0"),
        (SCHEMA, "/States/E"),
        (TARGET, "/States/B"),
        (TARGET, "/States/C"),
        (TARGET, "/States/D"),
        (TARGET, "/States/E"),
    }
    assert expected <= got, sorted(expected - got)
    assert len(validate(d)) >= len(expected)


def test_large_machine_is_linear() -> None:
    n = 3000
    states = {f"s{i}": {"Type": "Pass", "Next": f"s{i + 1}"} for i in range(n)}
    states[f"s{n}"] = {"Type": "Succeed"}
    assert validate(machine(states, start="s0")) == []


def test_jsonata_expression_delimiters() -> None:
    d = one(Type="Pass", QueryLanguage="JSONata", Output={"a": ["{% $states.input"]})
    assert_problem(d, SCHEMA, "/States/S/Output/a/0", "'{%'")
    ok = one(Type="Pass", QueryLanguage="JSONata", Output={"a": "literal %}", "b": "{%1%}"})
    assert validate(ok) == []


def test_jayway_function_paths_accepted_like_aws() -> None:
    assert validate(one(Type="Pass", Parameters={"n.$": "$.jobs.sum()", "l.$": "$.a.length()"})) == []
    assert_problem(one(Type="Pass", ResultPath="$.a.length()"), "INVALID_REFERENCE_PATH",
                   "/States/S/ResultPath")


# ------------------------------------------------------------------------------------------
# AWS's wording and rules (CreateStateMachine / ValidateStateMachineDefinition)


def messages(definition: Any) -> list[tuple[str, str, str]]:
    return [(p.code, p.pointer, p.message) for p in validate(definition)]


def test_missing_top_level_fields_listed_in_one_problem() -> None:
    assert messages({"Comment": "x"}) == [(SCHEMA, "", "These fields are required: [StartAt, States]")]
    assert messages({"States": {"A": {"Type": "Succeed"}}}) == [
        (SCHEMA, "", "These fields are required: [StartAt]")]


def test_invalid_state_type_message_and_no_follow_up_problems() -> None:
    d = machine({"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "TypeThatDoesNotExist"}})
    assert messages(d) == [(SCHEMA, "/States/B/Type", "The field 'Type' should have one of these values: "
                                                    "[Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map]")]


def test_enum_fields_use_the_same_wording() -> None:
    d = one(Type="Task", Resource=LAMBDA, Retry=[{"ErrorEquals": ["States.ALL"], "JitterStrategy": "SOME"}])
    assert (SCHEMA, "/States/S/Retry/0/JitterStrategy",
            "The field 'JitterStrategy' should have one of these values: [FULL, NONE]") in messages(d)


@pytest.mark.parametrize("ts", ["2016-12-05 21:29:29Z", "2016-13-05T21:29:29Z", "2016-12-05T25:29:29Z",
                                "{% '2016-03-14T01:59:00Z' %}"])
def test_wait_timestamp_not_rfc3339(ts: str) -> None:
    assert messages(one(Type="Wait", Timestamp=ts)) == [
        (SCHEMA, "/States/S/Timestamp", "String does not match RFC3339 timestamp")]


def test_choice_timestamp_operand_not_rfc3339() -> None:
    d = one(Type="Choice", Default="D",
            Choices=[{"Variable": "$.t", "TimestampEquals": "yesterday", "Next": "D"}])
    d["States"]["D"] = {"Type": "Succeed"}
    assert messages(d) == [(SCHEMA, "/States/S/Choices/0/TimestampEquals", "String does not match RFC3339 timestamp")]


@pytest.mark.parametrize("cred", [{}, {"InvalidField": "invalid"}])
def test_credentials_need_role_arn(cred: dict) -> None:
    for lang in ("JSONata", "JSONPath"):
        state = {"Type": "Task", "Resource": LAMBDA, "Credentials": cred, "QueryLanguage": lang}
        assert (SCHEMA, "/States/S/Credentials", "The field 'RoleArn' is required but was missing") \
            in messages(one(**state))


def test_credentials_with_role_arn_accepted() -> None:
    assert validate(one(Type="Task", Resource=LAMBDA, Credentials={"RoleArn": "arn:aws:iam::1:role/r"})) == []
    assert validate(one(Type="Task", Resource=LAMBDA, Credentials={"RoleArn.$": "$.role"})) == []
    jsonata = one(Type="Task", Resource=LAMBDA, QueryLanguage="JSONata", Credentials={"RoleArn": "{% $r %}"})
    assert validate(jsonata) == []


def test_intrinsic_with_an_illegal_escape_is_not_an_intrinsic_call() -> None:
    # string literals in intrinsic calls may escape only ' { } and \\
    d = one(Type="Pass", Parameters={"parsed.$": "States.StringToJson('{\"text\":\"An \\\"q\\\" here\"}')"})
    assert messages(d) == [(SCHEMA, "/States/S/Parameters",
                            "The value for the field 'parsed.$' must be a valid JSONPath or a valid intrinsic "
                            "function call")]
    ok = one(Type="Pass", Parameters={"a.$": "States.Format('it\\'s \\{\\} \\\\', $.x)"})
    assert validate(ok) == []


def test_the_same_text_under_a_plain_key_is_just_a_string() -> None:
    d = one(Type="Pass", Result={"not_an_intrinsic.$": "States.StringToJson('\\\"')"})
    assert validate(d) == []


def test_blank_definition_is_a_schema_problem() -> None:
    import express

    for text in ("", " ", "\n\t"):
        with pytest.raises(express.DefinitionError) as ei:
            express.Engine().compile(text)
        assert [(p.code, p.message) for p in ei.value.problems] == [
            (SCHEMA, "Definition must be a valid JSON object")]


def test_catch_assign_on_parallel_and_assign_in_its_branch_are_valid() -> None:
    branch = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": LAMBDA, "End": True,
                                               "Assign": {"inputVar": "{% $states.input %}"}}}}
    d = machine({
        "P": {"Type": "Parallel", "Branches": [branch], "Next": "Done",
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Fallback",
                         "Assign": {"inputVar": "{% $states.input %}"}}]},
        "Fallback": {"Type": "Pass", "End": True},
        "Done": {"Type": "Succeed"},
    }, QueryLanguage="JSONata")
    assert validate(d) == []


def test_wait_for_task_token_message_is_awss() -> None:
    d = one(Type="Task", Resource="arn:aws:states:::sns:publish.waitForTaskToken")
    assert (SCHEMA, "/States/S/Resource",
            "Express state machine does not support '.waitForTaskToken' service integration ") in messages(d)


# ------------------------------------------------------------------------------------------
# definitions that are not JSON express can keep (express.asl.limits)

def test_values_that_are_not_json_are_reported_with_their_place_and_nothing_else() -> None:
    import math

    from express.asl.validation import MAX_JSON_PROBLEMS, json_problems

    d = one(Type="Pass", Result={"nan": math.nan, "inf": [0, -math.inf], 7: "key", "t": (1, 2),
                                 "big": 2**64, "small": -(2**63) - 1, "edge": [2**64 - 1, -(2**63)]},
            Unknown="field")
    got = {p.pointer: p.message for p in validate(d)}  # not the unknown field: only these
    assert {p.code for p in validate(d)} == {"SCHEMA_VALIDATION_FAILED"}
    assert got == {
        "/States/S/Result/nan": "The number nan is not JSON: JSON numbers are finite",
        "/States/S/Result/inf/1": "The number -inf is not JSON: JSON numbers are finite",
        "/States/S/Result": "The object key 7 is not a string: JSON object keys are strings",
        "/States/S/Result/t": "A value of Python type tuple is not JSON",
        "/States/S/Result/big": "The integer 18446744073709551616 is outside the range -9223372036854775808 to "
                                "18446744073709551615 that is kept exactly; write it as a string",
        "/States/S/Result/small": "The integer -9223372036854775809 is outside the range -9223372036854775808 to "
                                  "18446744073709551615 that is kept exactly; write it as a string"}
    many = one(Type="Pass", Result=[math.nan] * 1000)
    assert len(json_problems(many)) == MAX_JSON_PROBLEMS


def test_nesting_beyond_the_limit_is_reported_once_where_it_starts() -> None:
    from express.asl.limits import MAX_DEPTH

    deep: Any = [1]
    for _ in range(2000):
        deep = [deep]
    d = one(Type="Pass", Result={"x": deep, "y": deep})
    problems = validate(d)
    # Result's object is at depth 4, "x"'s list at 5: the list at depth 254 is 249 lists further in
    assert [(p.code, p.pointer) for p in problems] == [
        ("SCHEMA_VALIDATION_FAILED", "/States/S/Result/x" + "/0" * (MAX_DEPTH - 4)),
        ("SCHEMA_VALIDATION_FAILED", "/States/S/Result/y" + "/0" * (MAX_DEPTH - 4))]
    assert problems[0].message == ("The definition nests arrays and objects more than 253 levels deep here "
                                   "(depth 254); the limit is 253")
