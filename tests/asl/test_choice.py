from __future__ import annotations

from typing import Any

import pytest

from express.asl.choice import compile_rule
from express.asl.errors import RUNTIME, ASLError
from tests.support import FakeFrame


def check(rule: dict[str, Any], data: Any, frame: FakeFrame | None = None) -> bool:
    return compile_rule(rule)(data, frame or FakeFrame())


def evaluate(op: str, operand: Any, value: Any) -> bool:
    return check({"Variable": "$.v", op: operand, "Next": "X"}, {"v": value})


# Values of every JSON type, for type-mismatch sweeps.
SAMPLES: list[Any] = [None, True, False, 0, 1, 0.0, 1.5, -1, "", "a", "1", "2012-10-09T19:00:55Z", [], [1],
                      {}, {"a": 1}]


# --- each operator: true, false, type mismatch ----------------------------------------------------

@pytest.mark.parametrize(("op", "operand", "value", "expected"), [
    ("StringEquals", "Hello", "Hello", True),
    ("StringEquals", "Hello", "hello", False),
    ("StringEquals", "\t\r\n", "\t\n", False),
    ("StringEquals", "     ", " ", False),
    ("StringLessThan", "B", "A", True),
    ("StringLessThan", "A", "A", False),
    ("StringLessThan", "a", "B", True),  # ordinal: "B" (66) < "a" (97)
    ("StringGreaterThan", "A", "AB", True),
    ("StringGreaterThan", "", "", False),
    ("StringLessThanEquals", "A", "A", True),
    ("StringLessThanEquals", "A", "B", False),
    ("StringGreaterThanEquals", "", "", True),
    ("StringGreaterThanEquals", "AB", "A", False),
    ("StringGreaterThanEquals", "A", "AB", True),
    ("NumericEquals", 1, 1, True),
    ("NumericEquals", 1.0, 1, True),
    ("NumericEquals", 0, 0.0, True),
    ("NumericEquals", 0, -0.0, True),
    ("NumericEquals", 2.22, 2.22, True),
    ("NumericEquals", 1, 1.1, False),
    ("NumericEquals", 10**20, 10**20, True),
    ("NumericEquals", 10**20, 10**20 + 1, False),
    ("NumericLessThan", 1, 0, True),
    ("NumericLessThan", 1, 1, False),
    ("NumericLessThan", 0, -0.5, True),
    ("NumericGreaterThan", 0, 1, True),
    ("NumericGreaterThan", 1, 1, False),
    ("NumericGreaterThan", 0, 0.0, False),
    ("NumericLessThanEquals", 0, 0, True),
    ("NumericLessThanEquals", 0, 1, False),
    ("NumericGreaterThanEquals", 0, 0.0, True),
    ("NumericGreaterThanEquals", 1, 0, False),
    ("BooleanEquals", True, True, True),
    ("BooleanEquals", False, False, True),
    ("BooleanEquals", True, False, False),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", False),
    ("TimestampLessThan", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", True),
    ("TimestampLessThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", False),
    ("TimestampGreaterThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", True),
    ("TimestampGreaterThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", False),
    ("TimestampLessThanEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
    ("TimestampLessThanEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", False),
    ("TimestampGreaterThanEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
    ("TimestampGreaterThanEquals", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", False),
    ("StringMatches", "log-*.txt", "log-2024.txt", True),
    ("StringMatches", "log-*.txt", "log-2024.csv", False),
    ("IsNull", True, None, True),
    ("IsNull", True, 0, False),
    ("IsNull", False, "", True),
    ("IsNumeric", True, 1.1, True),
    ("IsNumeric", True, "1", False),
    ("IsNumeric", True, True, False),
    ("IsNumeric", False, False, True),
    ("IsString", True, "", True),
    ("IsString", True, None, False),
    ("IsString", False, [], True),
    ("IsBoolean", True, False, True),
    ("IsBoolean", True, 0, False),
    ("IsBoolean", False, "true", True),
    ("IsTimestamp", True, "2012-10-09T19:00:55Z", True),
    ("IsTimestamp", True, "2012-10-09T19:00:55+01:00", True),
    ("IsTimestamp", True, "2012-10-09T19:00:55", False),
    ("IsTimestamp", True, "2023-02-24", False),
    ("IsTimestamp", True, "2012-10-09t19:00:55z", False),
    ("IsTimestamp", True, 1349809255, False),
    ("IsTimestamp", False, "HelloWorld", True),
])
def test_operator(op: str, operand: Any, value: Any, expected: bool) -> None:
    assert evaluate(op, operand, value) is expected


def test_ordinal_string_order() -> None:
    assert evaluate("StringLessThan", "a", "B") is True
    assert evaluate("StringGreaterThan", "B", "a") is True
    assert evaluate("StringLessThan", "é", "z") is True
    assert evaluate("StringLessThan", "ab", "a") is True


def test_string_order_is_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair (D83D DE00) in UTF-16, which sorts below U+FF61.
    assert evaluate("StringLessThan", "\uff61", "\U0001f600") is True
    assert evaluate("StringGreaterThan", "\U0001f600", "\uff61") is True
    rule = {"Variable": "$.a", "StringLessThanPath": "$.b"}
    assert check(rule, {"a": "x\U0001f600", "b": "x\uff61"}) is True
    assert check(rule, {"a": "x\uff61", "b": "x\U0001f600"}) is False


@pytest.mark.parametrize(("op", "operand", "matching"), [
    ("StringEquals", "a", ["a"]),
    ("StringLessThan", "b", ["", "a", "1", "2012-10-09T19:00:55Z"]),
    ("StringMatches", "*", ["", "a", "1", "2012-10-09T19:00:55Z"]),
    ("NumericEquals", 1, [1]),
    ("NumericEquals", 0, [0, 0.0]),
    ("NumericGreaterThan", 0, [1, 1.5]),
    ("NumericLessThan", 1, [0, 0.0, -1]),
    ("BooleanEquals", True, [True]),
    ("BooleanEquals", False, [False]),
    ("TimestampEquals", "2012-10-09T19:00:55Z", ["2012-10-09T19:00:55Z"]),
])
def test_type_mismatch_is_false(op: str, operand: Any, matching: list[Any]) -> None:
    for value in SAMPLES:
        expected = any(value == m and type(value) is type(m) for m in matching)
        assert evaluate(op, operand, value) is expected, value


def test_booleans_are_not_numbers() -> None:
    assert evaluate("NumericEquals", 1, True) is False
    assert evaluate("NumericEquals", 0, False) is False
    assert evaluate("NumericGreaterThan", 0, True) is False
    assert evaluate("BooleanEquals", True, 1) is False
    assert evaluate("BooleanEquals", False, 0) is False
    assert check({"Variable": "$.a", "NumericEqualsPath": "$.b"}, {"a": 1, "b": True}) is False
    assert check({"Variable": "$.a", "BooleanEqualsPath": "$.b"}, {"a": 1, "b": True}) is False


# --- *Path forms -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("op", "a", "b", "expected"), [
    ("StringEqualsPath", "x", "x", True),
    ("StringEqualsPath", " ", "     ", False),
    ("StringEqualsPath", 1, "1", False),
    ("StringLessThanPath", "a", "b", True),
    ("StringGreaterThanPath", "", "", False),
    ("StringGreaterThanPath", "b", "a", True),
    ("StringLessThanEqualsPath", "a", "a", True),
    ("StringGreaterThanEqualsPath", "", "", True),
    ("StringGreaterThanEqualsPath", "a", 1, False),
    ("NumericEqualsPath", 1, 1.0, True),
    ("NumericEqualsPath", 1, "1", False),
    ("NumericLessThanPath", 0, 1, True),
    ("NumericLessThanPath", 0.0, 0, False),
    ("NumericGreaterThanPath", 2, 1, True),
    ("NumericLessThanEqualsPath", 0, 0, True),
    ("NumericLessThanEqualsPath", 1, 0, False),
    ("NumericGreaterThanEqualsPath", 0.0, 0, True),
    ("NumericGreaterThanEqualsPath", 0, 1, False),
    ("BooleanEqualsPath", True, True, True),
    ("BooleanEqualsPath", False, False, True),
    ("BooleanEqualsPath", False, True, False),
    ("BooleanEqualsPath", None, False, False),
    ("BooleanEqualsPath", "true", True, False),
    ("BooleanEqualsPath", [], False, False),
    ("TimestampEqualsPath", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
    ("TimestampEqualsPath", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", False),
    ("TimestampEqualsPath", "2012-10-09T19:00:55Z", "nope", False),
    ("TimestampLessThanPath", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", True),
    ("TimestampGreaterThanPath", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", True),
    ("TimestampLessThanEqualsPath", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", False),
    ("TimestampGreaterThanEqualsPath", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", False),
])
def test_path_operators(op: str, a: Any, b: Any, expected: bool) -> None:
    assert check({"Variable": "$.Variable", op: "$.Value", "Next": "X"}, {"Variable": a, "Value": b}) is expected


def test_workflow_variables_and_context_object() -> None:
    frame = FakeFrame(vars={"guess": "the_answer", "answer": "the_answer", "n": {"k": [5, 6]}},
                      context={"Execution": {"Input": {"input-value": 0}}})
    assert check({"Variable": "$guess", "StringEqualsPath": "$answer"}, {}, frame) is True
    assert check({"Variable": "$n.k[1]", "NumericEquals": 6}, {}, frame) is True
    assert check({"Variable": "$$.Execution.Input.input-value", "NumericLessThanEquals": 0}, {}, frame) is True
    assert check({"Variable": "$.x", "NumericEqualsPath": "$n.k[0]"}, {"x": 5}, frame) is True


def test_root_and_nested_paths() -> None:
    assert check({"Variable": "$", "NumericEquals": 3}, 3) is True
    assert check({"Variable": "$", "IsString": True}, "s") is True
    assert check({"Variable": "$.a.b[1].c", "StringEquals": "x"}, {"a": {"b": [{}, {"c": "x"}]}}) is True
    assert check({"Variable": "$['a b']", "BooleanEquals": True}, {"a b": True}) is True


# --- And / Or / Not ----------------------------------------------------------------------------------

def test_and_or_not_nesting() -> None:
    rule = {
        "And": [
            {"Variable": "$.value", "NumericGreaterThanEquals": 20},
            {"Or": [
                {"Variable": "$.type", "StringEquals": "Public"},
                {"Not": {"Variable": "$.type", "StringEquals": "Private"}},
            ]},
        ],
        "Next": "X",
    }
    assert check(rule, {"value": 22, "type": "Public"}) is True
    assert check(rule, {"value": 22, "type": "Other"}) is True
    assert check(rule, {"value": 22, "type": "Private"}) is False
    assert check(rule, {"value": 19, "type": "Public"}) is False


def test_singleton_and_or() -> None:
    assert check({"And": [{"Variable": "$.t", "StringEquals": "a"}]}, {"t": "a"}) is True
    assert check({"Or": [{"Variable": "$.t", "StringEquals": "a"}]}, {"t": "b"}) is False


def test_and_or_short_circuit() -> None:
    missing = {"Variable": "$.missing", "NumericEquals": 1}
    assert check({"Or": [{"Variable": "$.a", "IsPresent": True}, missing]}, {"a": 1}) is True
    assert check({"And": [{"Variable": "$.a", "IsPresent": False}, missing]}, {"a": 1}) is False
    with pytest.raises(ASLError):
        check({"And": [{"Variable": "$.a", "IsPresent": True}, missing]}, {"a": 1})


def test_map_break_condition_scenario() -> None:
    pred = compile_rule({"And": [{"IsPresent": True, "Variable": "$"},
                                 {"And": [{"IsNumeric": True, "Variable": "$"},
                                          {"NumericEquals": 3, "Variable": "$"}]}], "Next": "Break"})
    items = [1, "Hello", {}, 3.3, 3, 4, 5]
    assert [pred(i, FakeFrame()) for i in items] == [False, False, False, False, True, False, False]


# --- presence -----------------------------------------------------------------------------------------

def test_is_present() -> None:
    assert check({"Variable": "$.a", "IsPresent": True}, {"a": None}) is True
    assert check({"Variable": "$.a", "IsPresent": True}, {}) is False
    assert check({"Variable": "$.a", "IsPresent": False}, {}) is True
    assert check({"Variable": "$.a.b", "IsPresent": True}, {"a": "str"}) is False
    assert check({"Variable": "$.a[3]", "IsPresent": True}, {"a": [1]}) is False
    assert check({"Variable": "$nope", "IsPresent": True}, {}) is False
    assert check({"Variable": "$$.Map.Item", "IsPresent": False}, {}) is True


CAUSE = "Invalid path '{}': The choice state's condition path references an invalid value."


@pytest.mark.parametrize(("rule", "path"), [
    ({"Variable": "$.foo", "NumericEquals": 1}, "$.foo"),
    ({"Variable": "$.a.b", "StringEquals": "x"}, "$.a.b"),
    ({"Variable": "$.arr[5]", "IsNull": True}, "$.arr[5]"),
    ({"Variable": "$.foo", "IsNull": False}, "$.foo"),
    ({"Variable": "$.foo", "IsString": False}, "$.foo"),
    ({"Variable": "$undefinedVariable", "BooleanEquals": True}, "$undefinedVariable"),
    ({"Variable": "$.a", "StringEqualsPath": "$.nope"}, "$.nope"),
    ({"Variable": "$.a", "NumericLessThanPath": "$.nope"}, "$.nope"),
    ({"Not": {"Variable": "$.foo", "TimestampEquals": "2012-10-09T19:00:55Z"}}, "$.foo"),
])
def test_missing_path_fails_with_runtime_error(rule: dict[str, Any], path: str) -> None:
    with pytest.raises(ASLError) as info:
        check(rule, {"a": "str", "arr": [1]})
    assert info.value.error == RUNTIME
    assert info.value.cause == CAUSE.format(path)


def test_missing_operand_path_fails_even_on_type_mismatch() -> None:
    with pytest.raises(ASLError):
        check({"Variable": "$.a", "NumericEqualsPath": "$.nope"}, {"a": "not a number"})


# --- StringMatches -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("*", "", True),
    ("*", "anything\nat all", True),
    ("abc", "abc", True),
    ("abc", "abcd", False),
    ("a*", "a", True),
    ("a*", "ba", False),
    ("*a", "ba", True),
    ("*a", "ab", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "aXbYc", True),
    ("a*b*c", "acb", False),
    ("ab*ba", "aba", False),
    ("a**b", "ab", True),
    ("*.log", "x.log.bak", False),
    ("a*a*a*a*a*b", "a" * 5000, False),
    ("foo?", "foo?", True),
    ("foo?", "foox", False),
    ("[ab]", "[ab]", True),
    ("[ab]", "a", False),
    ("a.c", "abc", False),
    (r"\*", "*", True),
    (r"\*", "x", False),
    (r"a\*b", "a*b", True),
    (r"a\*b", "aXb", False),
    (r"a\**", "a*bc", True),
    (r"a\**", "abc", False),
    ("\\\\", "\\", True),
    ("x\\\\*", "x\\yz", True),
    ("x\\\\*", "xyz", False),
])
def test_string_matches(pattern: str, value: str, expected: bool) -> None:
    assert evaluate("StringMatches", pattern, value) is expected


def test_string_matches_type_mismatch() -> None:
    values: list[Any] = [None, 1, True, [], {}]
    for value in values:
        assert evaluate("StringMatches", "*", value) is False


@pytest.mark.parametrize("pattern", ["abc\\", "a\\b", "\\n"])
def test_string_matches_bad_escape(pattern: str) -> None:
    with pytest.raises(ValueError, match="escape"):
        compile_rule({"Variable": "$.v", "StringMatches": pattern})


# --- timestamps -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "op", "b", "expected"), [
    ("2012-10-09T19:00:55+01:00", "TimestampEquals", "2012-10-09T18:00:55Z", True),
    ("2012-10-09T19:00:55+01:00", "TimestampLessThan", "2012-10-09T18:30:00Z", True),
    ("2012-10-09T19:00:55-05:30", "TimestampGreaterThan", "2012-10-10T00:00:00Z", True),
    ("2012-10-10T00:00:00+00:00", "TimestampEquals", "2012-10-10T00:00:00Z", True),
    ("2012-10-09T23:59:59-01:00", "TimestampEquals", "2012-10-10T00:59:59Z", True),
    ("2012-10-09T19:00:55.5Z", "TimestampGreaterThan", "2012-10-09T19:00:55Z", True),
    ("2012-10-09T19:00:55.500Z", "TimestampEquals", "2012-10-09T19:00:55.5Z", True),
    ("2012-10-09T19:00:55.25Z", "TimestampLessThan", "2012-10-09T19:00:55.3Z", True),
    ("2012-10-09T19:00:55.000000001Z", "TimestampGreaterThan", "2012-10-09T19:00:55Z", True),
    ("2012-10-09T19:00:55.123456789Z", "TimestampLessThan", "2012-10-09T19:00:55.12345679Z", True),
    ("2012-10-09T20:00:55.75+01:00", "TimestampEquals", "2012-10-09T19:00:55.750Z", True),
    ("2012-10-09T19:00:55.999Z", "TimestampLessThan", "2012-10-09T19:00:56Z", True),
    ("1969-12-31T23:59:59.5Z", "TimestampLessThan", "1970-01-01T00:00:00Z", True),
    ("2012-10-09 19:00:55Z", "TimestampEquals", "2012-10-09T19:00:55Z", False),
    ("2012-10-09T19:00:55", "TimestampLessThanEquals", "2099-01-01T00:00:00Z", False),
    ("2012-02-30T19:00:55Z", "TimestampLessThan", "2099-01-01T00:00:00Z", False),
])
def test_timestamps(a: str, op: str, b: str, expected: bool) -> None:
    assert evaluate(op, b, a) is expected
    assert check({"Variable": "$.a", op + "Path": "$.b"}, {"a": a, "b": b}) is expected


# --- malformed rules --------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", [
    {"Variable": "$.a", "Next": "X"},
    {"Variable": "$.a", "StringEqual": "x"},
    {"Variable": "$.a", "StringEquals": "x", "NumericEquals": 1},
    {"StringEquals": "x"},
    {"And": []},
    {"Or": {"Variable": "$.a", "IsNull": True}},
    {"And": [{"Variable": "$.a", "IsNull": True}], "Variable": "$.a"},
    {"And": [{"Variable": "$.a", "IsNull": True}], "Or": [{"Variable": "$.a", "IsNull": True}]},
    {"And": [{"Variable": "$.a"}]},
    {"Not": [{"Variable": "$.a", "IsNull": True}]},
    {"Not": {"Variable": "$.a", "Bogus": True}},
    {"Variable": "a.b", "IsNull": True},
    {"Variable": 5, "IsNull": True},
    {"Variable": "$.a", "IsNull": "true"},
    {"Variable": "$.a", "IsPresent": 1},
    {"Variable": "$.a", "StringEquals": 5},
    {"Variable": "$.a", "NumericEquals": "5"},
    {"Variable": "$.a", "NumericEquals": True},
    {"Variable": "$.a", "BooleanEquals": "true"},
    {"Variable": "$.a", "BooleanEquals": 1},
    {"Variable": "$.a", "TimestampEquals": "yesterday"},
    {"Variable": "$.a", "TimestampEquals": 1349809255},
    {"Variable": "$.a", "StringEqualsPath": "b"},
    {"Variable": "$.a", "StringEqualsPath": 3},
    {"Variable": "$.a", "StringMatches": 3},
    "not a rule",
])
def test_malformed_rules_raise_value_error(rule: Any) -> None:
    with pytest.raises(ValueError):
        compile_rule(rule)


def test_ignored_keys() -> None:
    rule = {"Variable": "$.a", "IsNull": True, "Next": "X", "Comment": "c", "Assign": {"x": 1}}
    assert check(rule, {"a": None}) is True
