"""variableReferences: the answers AWS recorded for these definitions (LocalStack's AWS-validated
snapshots of test_sfn_api_variable_references), then the rules beyond them."""
from __future__ import annotations

from typing import Any

import pytest

from express.asl.validation import validate
from express.asl.variable_references import jsonata_variables, variable_references


def machine(**states: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states}


def pass_(**fields: Any) -> dict[str, Any]:
    return {"Type": "Pass", "End": True, **fields}


def inline_map(inner: dict[str, Any], mode: str = "INLINE", **fields: Any) -> dict[str, Any]:
    return {"Type": "Map", "End": True, **fields,
            "ItemProcessor": {"ProcessorConfig": {"Mode": mode}, "StartAt": next(iter(inner)), "States": inner}}


# --------------------------------------------------------------------------- recorded on AWS
RECORDED: dict[str, tuple[dict[str, Any], dict[str, list[str]]]] = {
    "BASE_REFERENCE_IN_PARAMETERS": (machine(
        State0={"Type": "Pass", "Parameters": {"result": "$result"}, "Assign": {"result": "foobar"}, "Next": "State1"},
        State1=pass_(ResultPath="$.result", Parameters={"result.$": "$result"})),
        {"State1": ["result"]}),
    "BASE_REFERENCE_IN_CHOICE": (machine(
        Setup={"Type": "Pass", "Assign": {"guess": "the_guess", "answer": "the_answer"}, "Next": "CheckAnswer"},
        CheckAnswer={"Type": "Choice", "Choices": [
            {"Variable": "$guess", "StringEqualsPath": "$answer", "Next": "CorrectAnswer"}], "Default": "WrongAnswer"},
        CorrectAnswer=pass_(Result={"state": "CORRECT"}),
        WrongAnswer={"Type": "Pass", "Assign": {"guess.$": "$answer"}, "Result": {"state": "WRONG"},
                     "Next": "CheckAnswer"}),
        {"CheckAnswer": ["answer", "guess"], "WrongAnswer": ["answer"]}),
    "BASE_REFERENCE_IN_WAIT": (machine(
        Start={"Type": "Pass", "Assign": {"waitTime": 0, "startAt": "2024-11-06T09:42:03Z"},
               "Next": "WaitSecondsState"},
        WaitSecondsState={"Type": "Wait", "SecondsPath": "$waitTime", "Next": "WaitUntilState"},
        WaitUntilState={"Type": "Wait", "TimestampPath": "$startAt", "End": True}),
        {"WaitSecondsState": ["waitTime"], "WaitUntilState": ["startAt"]}),
    "BASE_REFERENCE_IN_ITERATOR_OUTER_SCOPE": (machine(
        Input={"Type": "Pass", "Result": [[9, 44, 6], [82, 25, 76]], "Assign": {"bias": 4.3}, "Next": "IterateLevels"},
        IterateLevels=inline_map({
            "AssignCurrentVector": {"Type": "Pass", "Assign": {"xCurrent.$": "$[0]", "yCurrent.$": "$[1]",
                                                               "zCurrent.$": "$[2]"}, "Next": "Calculate"},
            "Calculate": inline_map({"Summate": pass_(Assign={
                "Sum.$": "States.MathAdd(States.MathAdd(States.MathAdd($yCurrent, $xCurrent), $zCurrent), $bias)"})},
                MaxConcurrency=1)}, MaxConcurrency=1)),
        {"Summate": ["bias", "xCurrent", "yCurrent", "zCurrent"]}),
    "BASE_REFERENCE_IN_INPUTPATH": (machine(
        State0={"Type": "Pass", "Assign": {"theAnswer": 42}, "Next": "State1"},
        State1=pass_(InputPath="$theAnswer")),
        {"State1": ["theAnswer"]}),
    "BASE_REFERENCE_IN_OUTPUTPATH": (machine(
        State0={"Type": "Pass", "Result": {"answer": 42}, "Assign": {"theAnswer.$": "$.answer"}, "Next": "State1"},
        State1=pass_(OutputPath="$theAnswer")),
        {"State1": ["theAnswer"]}),
    "BASE_REFERENCE_IN_INTRINSIC_FUNCTION": (machine(
        State0={"Type": "Pass", "Assign": {"rawString": "Hello", "json1": {"a": 1}, "json2": {"c": 3}, "name": "J",
                                           "place": "L", "csvString": "a,b"}, "Next": "State1"},
        State1=pass_(Parameters={
            "encodingOps": {"encoded.$": "States.Base64Encode($rawString)"},
            "jsonOps": {"mergedJson.$": "States.JsonMerge($json1, $json2, false)"},
            "stringOps": {"splitString.$": "States.StringSplit($csvString, ',')",
                          "formattedString.$": "States.Format('Hello {}, welcome to {}!', $name, $place)"},
            "uuidOp": {"uniqueId.$": "States.UUID()"}})),
        {"State1": ["csvString", "json1", "json2", "name", "place", "rawString"]}),
    "BASE_REFERENCE_IN_FAIL": (machine(
        Pass={"Type": "Pass", "Assign": {"errorVar": "Exception", "causeVar": "An Exception"}, "Next": "Fail"},
        Fail={"Type": "Fail", "CausePath": "$causeVar", "ErrorPath": "$errorVar"}),
        {"Fail": ["causeVar", "errorVar"]}),
    "BASE_ASSIGN_FROM_PARAMETERS": (machine(
        State0={"Type": "Pass", "Parameters": {"input": "PENDING"}, "Assign": {"result.$": "$.input"},
                "Next": "State1"},
        State1=pass_(Assign={"result": "SUCCESS", "originalResult.$": "$.input"})),
        {}),
    "BASE_ASSIGN_FROM_INTRINSIC_FUNCTION": (machine(
        State0=pass_(Result={"inputArray": [1, 2], "name": "J"}, Assign={
            "arrayOps": {"partitionedArray.$": "States.ArrayPartition($.inputArray, 2)"},
            "stringOps": {"formattedString.$": "States.Format('Hello {}!', $.name)"}})),
        {}),
    "BASE_EVALUATION_ORDER_PASS_STATE": (machine(
        State0={"Type": "Pass", "Result": {"theQuestion": "?"}, "Assign": {"question.$": "$.theQuestion", "answer": 42},
                "Next": "State1"},
        State1=pass_(InputPath="$answer", ResultPath="$.theAnswer", OutputPath="$answer",
                     Assign={"answer": "<omitted>"})),
        {"State1": ["answer"]}),
    "MAP_STATE_REFERENCE_IN_INTRINSIC_FUNCTION": (machine(
        Start={"Type": "Pass", "Assign": {"AnswerTemplate": "It's {}!", "Question": "Who?"}, "Result": ["a", "b"],
               "Next": "MapIterateState"},
        MapIterateState=inline_map(
            {"Pass": pass_(Parameters={"Question.$": "$Question", "Answer.$": "$.AnnouncePokemon"})},
            MaxConcurrency=1,
            ItemSelector={"AnnouncePokemon.$": "States.Format($AnswerTemplate, $$.Map.Item.Value)"})),
        {"MapIterateState": ["AnswerTemplate"], "Pass": ["Question"]}),
    "MAP_STATE_REFERENCE_IN_ITEMS_PATH": (machine(
        Start={"Type": "Pass", "Assign": {"Question": "Who?", "PokemonList": ["a"]}, "Next": "MapIterateState"},
        MapIterateState=inline_map(
            {"Pass": pass_(Parameters={"Question.$": "$Question", "Answer.$": "$.AnnouncePokemon"})},
            ItemsPath="$PokemonList",
            ItemSelector={"AnnouncePokemon.$": "States.Format($.AnswerTemplate, $$.Map.Item.Value)"})),
        {"MapIterateState": ["PokemonList"], "Pass": ["Question"]}),
    "MAP_STATE_REFERENCE_IN_MAX_CONCURRENCY_PATH": (machine(
        Start={"Type": "Pass", "Assign": {"maxConcurrency": "1"}, "Result": {"Values": [1]}, "Next": "MapState"},
        MapState=inline_map({"HandleItem": pass_()}, ItemsPath="$.Values", MaxConcurrencyPath="$maxConcurrency")),
        {"MapState": ["maxConcurrency"]}),
    "MAP_STATE_REFERENCE_IN_TOLERATED_FAILURE_PATH": (machine(
        Start={"Type": "Pass", "Assign": {"toleratedFailurePercentage": "1", "toleratedFailureCount": "1"},
               "Next": "MapState"},
        MapState=inline_map({"HandleItem": pass_()}, mode="DISTRIBUTED", ItemsPath="$.Values",
                            ToleratedFailurePercentagePath="$toleratedFailurePercentage",
                            ToleratedFailureCountPath="$toleratedFailureCount")),
        {"MapState": ["toleratedFailureCount", "toleratedFailurePercentage"]}),
    "MAP_STATE_REFERENCE_IN_ITEM_SELECTOR": (machine(
        Start={"Type": "Pass", "Assign": {"bucket": "test-name"}, "Next": "MapState"},
        MapState=inline_map({"MapPass": pass_()}, mode="DISTRIBUTED", ItemsPath="$.Values",
                            ItemSelector={"value.$": "$$.Map.Item.Value", "bucketName": "$bucket"})),
        {}),
    "MAP_STATE_REFERENCE_IN_MAX_ITEMS_PATH": (machine(
        Start={"Type": "Pass", "Assign": {"maxItems": "2"}, "Next": "MapState"},
        MapState=inline_map({"PassItem": pass_()}, mode="DISTRIBUTED", ItemReader={
            "ReaderConfig": {"InputType": "JSON", "MaxItemsPath": "$maxItems"},
            "Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket.$": "$.Bucket", "Key.$": "$.Key"}})),
        {"MapState": ["maxItems"]}),
    "CHOICE_CONDITION_CONSTANT_JSONATA": ({
        "QueryLanguage": "JSONata", "StartAt": "ChoiceState", "States": {
            "ChoiceState": {"Type": "Choice", "Choices": [
                {"Condition": "{% $states.input.condition %}", "Next": "ConditionTrue",
                 "Assign": {"Assignment": "Condition assignment"}}],
                "Default": "DefaultState", "Assign": {"Assignment": "Default Assignment"}},
            "ConditionTrue": pass_(),
            "DefaultState": {"Type": "Fail", "Cause": "Condition is false"}}},
        {}),
    "CHOICE_STATE_UNSORTED_CHOICE_PARAMETERS_JSONATA": (machine(
        CheckResult={"Type": "Choice", "QueryLanguage": "JSONata", "Choices": [
            {"Condition": "{% $states.input.result.done %}", "Next": "FinishTrue"},
            {"Condition": "{% $not($states.input.result.done) %}", "Next": "FinishFalse"}]},
        FinishTrue=pass_(), FinishFalse=pass_()),
        {}),
}


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_as_aws_recorded(case: str) -> None:
    definition, expected = RECORDED[case]
    assert validate(definition) == []  # the walk assumes a valid definition, as create checks it first
    assert variable_references(definition) == expected


# --------------------------------------------------------------------------- beyond the recordings
def test_jsonata_expressions_count_except_states_functions_and_local_names() -> None:
    definition = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Output": {"total": "{% $sum($prices) * $rate %}", "n": "{% $count($states.input) %}",
                                         "literal": "$notAVariable"},
              "Assign": {"seen": "{% $seen + 1 %}"}, "Next": "B"},
        "B": {"Type": "Pass", "Output": "{% ($x := $base; $map($items, function($v) { $v * $x })) %}", "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% $flag = 'on' %}", "Next": "D",
                                             "Assign": {"y": "{% $z %}"}}], "Default": "D"},
        "D": {"Type": "Task", "Resource": "fn", "Arguments": {"k": "{% $key %}"}, "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "E", "Output": "{% $fallback %}"}]},
        "E": {"Type": "Fail", "Error": "{% $code %}", "Cause": "{% 'costs $5' %}"},
    }}
    assert validate(definition) == []
    assert variable_references(definition) == {
        "A": ["prices", "rate", "seen"], "B": ["base", "items"], "C": ["flag", "z"], "D": ["fallback", "key"],
        "E": ["code"]}


@pytest.mark.parametrize(("body", "names"), [
    ("$x + $y", {"x", "y"}),
    ("$not($states.input.done)", {"states"}),
    ("'$no' & \"$nor\" & $yes", {"yes"}),
    ("`$field` & $x.y[0].$z", {"x", "z"}),
    ("/* $comment */ $d", {"d"}),
    ("($a := 1; $a + $b)", {"b"}),
    ("λ($p){$p + $q}", {"q"}),
    ("$count($items) ~> $string", {"items"}),
    ("$$.a + $ + $café", {"café"}),
    ("$uuid() & $random()", set()),
])
def test_jsonata_variables(body: str, names: set[str]) -> None:
    assert jsonata_variables(body) == names


def test_jsonpath_rules() -> None:
    definition = machine(
        A={"Type": "Pass", "Result": {"k.$": "$literal", "KPath": "$literal2"}, "ResultPath": "$.r",
           "Parameters": {"plainPath": "$notRead", "deep": [{"read.$": "$inList"}]}, "Next": "B",
           "Comment": "$notRead"},
        B={"Type": "Task", "Resource": "fn", "TimeoutSecondsPath": "$timeout", "HeartbeatSecondsPath": "$beat",
           "ResultSelector": {"r.$": "States.JsonMerge($m1, $.x, false)"}, "Next": "C",
           "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "C",
                      "Assign": {"caught.$": "$fromCatch"}}]},
        C={"Type": "Choice", "Choices": [
            {"And": [{"Variable": "$v1", "IsPresent": True}, {"Not": {"Variable": "$.a", "StringEquals": "$lit"}}],
             "Next": "D", "Assign": {"w.$": "$fromRule"}}], "Default": "D"},
        D={"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "InBranch", "States": {"InBranch": pass_(InputPath="$outer")}}],
           "Assign": {"p.$": "$.x"}},
    )
    assert validate(definition) == []
    assert variable_references(definition) == {
        "A": ["inList"], "B": ["beat", "fromCatch", "m1", "timeout"], "C": ["fromRule", "v1"], "InBranch": ["outer"]}


def test_state_query_language_overrides_the_top_level() -> None:
    definition = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Output": "{% $j %}", "Next": "B"},
        "B": {"Type": "Pass", "QueryLanguage": "JSONPath", "InputPath": "$p", "End": True}}}
    assert variable_references(definition) == {"A": ["j"], "B": ["p"]}


def test_no_variables_no_map() -> None:
    assert variable_references(machine(A=pass_(Parameters={"a.$": "$.x", "b.$": "$$.Execution.Id"}))) == {}
