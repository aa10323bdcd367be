"""Tests for express.asl.intrinsics: the 18 ASL intrinsic functions (JSONPath dialect).

The ``RECORDED`` table copies input/output pairs that AWS produced (LocalStack's AWS-validated
snapshots, as collected in the project's conformance cases) for single Pass states whose
Parameters call an intrinsic.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from express.asl.errors import ASLError
from express.asl.intrinsics import JavaRandom, compile_intrinsic, dumps, java_double


class FakeFrame:
    def __init__(self, vars: dict[str, Any] | None = None,
                 context: dict[str, Any] | None = None) -> None:
        self.vars = vars or {}
        self._context = context or {}

    def context_object(self) -> dict[str, Any]:
        return self._context


def run(expr: str, data: Any = None, vars: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None) -> Any:
    return compile_intrinsic(expr)(data if data is not None else {}, FakeFrame(vars, context))


def fails(expr: str, data: Any = None, vars: dict[str, Any] | None = None,
          context: dict[str, Any] | None = None) -> str:
    """The cause of the ASLError ``expr`` raises (error must be States.Runtime)."""
    with pytest.raises(ASLError) as info:
        run(expr, data, vars, context)
    assert info.value.error == "States.Runtime"
    assert info.value.cause is not None
    return info.value.cause


def invalid(expr: str, data: Any = None, **kw: Any) -> None:
    name = re.match(r"States\.\w+", expr.strip()).group()  # type: ignore[union-attr]
    assert fails(expr, data, **kw) == (
        f"The function '{expr.strip()}' had the following error: Invalid arguments in {name}")


# ----------------------------------------------------------------------------------------------
# recorded AWS behaviour: (expression, FunctionInput, expected FunctionResult)

ONE = "States.{}($.FunctionInput)"
TWO = "States.{}($.FunctionInput.fst, $.FunctionInput.snd)"

RECORDED: list[tuple[str, Any, Any]] = [
    # States.Array
    (TWO.format("Array"), {"fst": "", "snd": ""}, ["", ""]),
    (TWO.format("Array"), {"fst": None, "snd": None}, [None, None]),
    (TWO.format("Array"), {"fst": 1.1, "snd": 1.1}, [1.1, 1.1]),
    (TWO.format("Array"), {"fst": {"Arg1": 1, "Arg2": []}, "snd": {"Arg1": 1, "Arg2": []}},
     [{"Arg1": 1, "Arg2": []}, {"Arg1": 1, "Arg2": []}]),
    # States.ArrayPartition
    (TWO.format("ArrayPartition"), {"fst": [], "snd": 1}, []),
    (TWO.format("ArrayPartition"), {"fst": [0], "snd": 5}, [[0]]),
    (TWO.format("ArrayPartition"), {"fst": [0, 1], "snd": 1}, [[0], [1]]),
    (TWO.format("ArrayPartition"), {"fst": [0, 1, 2], "snd": 2}, [[0, 1], [2]]),
    (TWO.format("ArrayPartition"), {"fst": [0, 1, 2, 3], "snd": 3}, [[0, 1, 2], [3]]),
    (TWO.format("ArrayPartition"), {"fst": [0, 1, 2, 3], "snd": 4}, [[0, 1, 2, 3]]),
    # States.ArrayRange
    ("States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)",
     {"fst": 0, "snd": 9, "trd": 3}, [0, 3, 6, 9]),
    ("States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)",
     {"fst": 0, "snd": 10, "trd": 3}, [0, 3, 6, 9]),
    ("States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)",
     {"fst": 1, "snd": 9, "trd": 9}, [1]),
    ("States.ArrayRange($.FunctionInput.fst, $.FunctionInput.snd, $.FunctionInput.trd)",
     {"fst": 1, "snd": 9, "trd": 2}, [1, 3, 5, 7, 9]),
    # States.ArrayGetItem / ArrayLength
    (TWO.format("ArrayGetItem"), {"fst": [1, 2, 3, 4, 5, 6, 7, 8, 9], "snd": 5}, 6),
    (ONE.format("ArrayLength"), [1, 2, 3, 4, 5, 6, 7, 8, 9], 9),
    # States.Base64Encode / Base64Decode
    (ONE.format("Base64Encode"), "", ""),
    (ONE.format("Base64Encode"), "Data to encode", "RGF0YSB0byBlbmNvZGU="),
    (ONE.format("Base64Decode"), "", ""),
    (ONE.format("Base64Decode"), "RGF0YSB0byBlbmNvZGU=", "Data to encode"),
    # States.Format
    ("States.Format('Formatting argument {}.', $.FunctionInput)", "", "Formatting argument ."),
    ("States.Format('Formatting argument {}.', $.FunctionInput)", None, "Formatting argument null."),
    ("States.Format('Formatting argument {}.', $.FunctionInput)", 1, "Formatting argument 1."),
    ("States.Format('Formatting argument {}.', $.FunctionInput)", 1.1, "Formatting argument 1.1."),
    ("States.Format('Formatting argument {}.', $.FunctionInput)", "{\"Arg1\": 1, \"Arg2\": []}",
     "Formatting argument {\"Arg1\": 1, \"Arg2\": []}."),
    ("States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, "
     "$.FunctionInput.snd)", {"fst": " ", "snd": " "}, "Formatting arguments fst=  and snd= ."),
    ("States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, "
     "$.FunctionInput.snd)", {"fst": None, "snd": None},
     "Formatting arguments fst=null and snd=null."),
    ("States.Format('Formatting arguments fst={} and snd={}.', $.FunctionInput.fst, "
     "$.FunctionInput.snd)", {"fst": {"Arg1": 1, "Arg2": []}, "snd": {"Arg1": 1, "Arg2": []}},
     "Formatting arguments fst={Arg1=1, Arg2=[]} and snd={Arg1=1, Arg2=[]}."),
    # States.Hash
    (TWO.format("Hash"), {"fst": "input data", "snd": "MD5"}, "812f45842bc6d66ee14572ce20db8e86"),
    (TWO.format("Hash"), {"fst": "input data", "snd": "SHA-1"},
     "aaff4a450a104cd177d28d18d74485e8cae074b7"),
    (TWO.format("Hash"), {"fst": "input data", "snd": "SHA-256"},
     "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"),
    (TWO.format("Hash"), {"fst": "input data", "snd": "SHA-384"},
     "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562"),
    (TWO.format("Hash"), {"fst": "input data", "snd": "SHA-512"},
     "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce2deba23bf2954f0f1d593fc5028"
     "3731a533d30d425402d4f91316d871303aac4"),
    # States.StringToJson
    (ONE.format("StringToJson"), "", None),
    (ONE.format("StringToJson"), " ", None),
    (ONE.format("StringToJson"), "null", None),
    (ONE.format("StringToJson"), "-0", 0),
    (ONE.format("StringToJson"), "1.1", 1.1),
    (ONE.format("StringToJson"), "true", True),
    (ONE.format("StringToJson"), "\"HelloWorld\"", "HelloWorld"),
    (ONE.format("StringToJson"), "[1, 2, \"HelloWorld\"]", [1, 2, "HelloWorld"]),
    (ONE.format("StringToJson"), "{\"Arg1\": 1, \"Arg2\": []}", {"Arg1": 1, "Arg2": []}),
    # States.JsonMerge (shallow: the second object's "a" replaces the first's)
    ("States.JsonMerge($.FunctionInput.fst, $.FunctionInput.snd, false)",
     {"fst": {"a": {"a1": 1, "a2": 2}, "b": 2, "d": 3}, "snd": {"a": {"a3": 1, "a4": 2}, "c": 3, "d": 4}},
     {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3, "d": 4}),
    # States.MathAdd: non-integers rounded like Java's Math.round (halves toward +infinity)
    (TWO.format("MathAdd"), {"fst": -9, "snd": 3}, -6),
    (TWO.format("MathAdd"), {"fst": 1.49, "snd": 1.5}, 3),
    (TWO.format("MathAdd"), {"fst": 1.5, "snd": 1.51}, 4),
    (TWO.format("MathAdd"), {"fst": -1.49, "snd": -1.5}, -2),
    (TWO.format("MathAdd"), {"fst": -1.5, "snd": -1.51}, -3),
    (TWO.format("MathAdd"), {"fst": 1.49, "snd": -1.49}, 0),
    (TWO.format("MathAdd"), {"fst": -0.5, "snd": 0.5}, 1),
    (TWO.format("MathAdd"), {"fst": -0.5, "snd": 0}, 0),
    (TWO.format("MathAdd"), {"fst": 2.5, "snd": 0}, 3),
    (TWO.format("MathAdd"), {"fst": -2.5, "snd": 0}, -2),
    (TWO.format("MathAdd"), {"fst": -3.5, "snd": 0}, -3),
    # States.StringSplit: every delimiter character splits; empty pieces are dropped
    (TWO.format("StringSplit"), {"fst": " ", "snd": ","}, [" "]),
    (TWO.format("StringSplit"), {"fst": " , ", "snd": ","}, [" ", " "]),
    (TWO.format("StringSplit"), {"fst": ", , ,", "snd": ","}, [" ", " "]),
    (TWO.format("StringSplit"), {"fst": ",,,,", "snd": ","}, []),
    (TWO.format("StringSplit"), {"fst": "1,2,3,4,5", "snd": ","}, ["1", "2", "3", "4", "5"]),
    (TWO.format("StringSplit"), {"fst": "This.is+a,test=string", "snd": ".+,="},
     ["This", "is", "a", "test", "string"]),
    (TWO.format("StringSplit"), {"fst": "split on T and \nnew line", "snd": "T\n"},
     ["split on ", " and ", "new line"]),
]


@pytest.mark.parametrize(("expr", "function_input", "expected"), RECORDED)
def test_recorded_aws_results(expr: str, function_input: Any, expected: Any) -> None:
    result = run(expr, {"FunctionInput": function_input})
    assert result == expected
    assert type(result) is type(expected)  # e.g. MathAdd gives 3, never 3.0


def test_recorded_string_split_of_context_input() -> None:
    text = "Value1,Value2,Value3\nValue4,Value5,Value6\n,,,\ntrue,1,'HelloWorld'\nNull,None,\n   \n"
    ctx = {"Execution": {"Input": {"FunctionInput": text}}}
    assert run("States.StringSplit($$.Execution.Input.FunctionInput, ',')", {}, context=ctx) == [
        "Value1", "Value2", "Value3\nValue4", "Value5", "Value6\n", "\ntrue", "1",
        "'HelloWorld'\nNull", "None", "\n   \n"]


def test_recorded_json_merge_of_literal_and_context() -> None:
    ctx = {"Execution": {"Input": {"input_field": {"constant_input_field": "constant_value"}}}}
    expr = ("States.JsonMerge(States.StringToJson('{\"constant_in_literal\": \"false\"}'), "
            "$$.Execution.Input.input_field, false)")
    assert run(expr, {}, context=ctx) == {
        "constant_input_field": "constant_value", "constant_in_literal": "false"}


def test_recorded_fail_state_paths() -> None:
    data = {"Error": "error string", "Cause": "cause string"}
    assert run("States.Format('{}', $.Error)", data) == "error string"
    assert run("States.Format('This is a custom error message for {}, caused by {}.', "
               "$.Error, $.Cause)", data) == (
        "This is a custom error message for error string, caused by cause string.")


def test_recorded_nested_math_add_with_variables() -> None:
    expr = "States.MathAdd(States.MathAdd(States.MathAdd($yCurrent, $xCurrent), $zCurrent), $bias)"
    assert run(expr, {}, vars={"xCurrent": 9, "yCurrent": 44, "zCurrent": 6, "bias": 4.3}) == 63


def test_recorded_assign_from_intrinsics() -> None:
    data = {"inputArray": [1, 2, 3, 4, 5, 6], "duplicateArray": [1, 2, 2, 3, 3, 4],
            "rawString": "Hello World", "encodedString": "SGVsbG8gV29ybGQ=",
            "json1": {"a": 1, "b": 2}, "json2": {"c": 3, "d": 4},
            "jsonString": "{\"key\":\"value\"}", "jsonObject": {"test": "object"},
            "value1": 5, "value2": 3, "csvString": "a,b,c,d,e", "name": "John",
            "place": "LocalStack"}
    assert run("States.Array('a', 'b', 'c')", data) == ["a", "b", "c"]
    assert run("States.ArrayPartition($.inputArray, 2)", data) == [[1, 2], [3, 4], [5, 6]]
    assert run("States.ArrayContains($.inputArray, 5)", data) is True
    assert run("States.ArrayRange(1, 10, 2)", data) == [1, 3, 5, 7, 9]
    assert run("States.ArrayGetItem($.inputArray, 2)", data) == 3
    assert run("States.ArrayLength($.inputArray)", data) == 6
    assert run("States.ArrayUnique($.duplicateArray)", data) == [1, 2, 3, 4]
    assert run("States.Base64Encode($.rawString)", data) == "SGVsbG8gV29ybGQ="
    assert run("States.Base64Decode($.encodedString)", data) == "Hello World"
    assert run("States.JsonMerge($.json1, $.json2, false)", data) == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert run("States.StringToJson($.jsonString)", data) == {"key": "value"}
    assert run("States.JsonToString($.jsonObject)", data) == '{"test":"object"}'
    assert run("States.MathAdd($.value1, $.value2)", data) == 8
    assert run("States.StringSplit($.csvString, ',')", data) == ["a", "b", "c", "d", "e"]
    assert run("States.Format('Hello {}, welcome to {}!', $.name, $.place)", data) == (
        "Hello John, welcome to LocalStack!")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        run("States.UUID()", data))


# ----------------------------------------------------------------------------------------------
# parsing (the grammar itself: test_intrinsic_parser.py)


@pytest.mark.parametrize("text", [
    "States.Nope(1)",  # unknown function
    "States.format('x')",  # names are case-sensitive
    "States.Format()",  # Format needs a template
    "States.ArrayRange(1, 5)",
    "States.ArrayRange(1, 5, 1, 99)",
    "States.ArrayGetItem($.arr)",
    "States.ArrayGetItem($.arr, 1, 999)",
    "States.MathRandom(1)",
    "States.MathRandom(1, 10, 5, 99)",
    "States.UUID(1)",
    "States.JsonMerge($.a, $.b)",
    "States.StringToJson()",
    "States.Format('x'",  # unclosed call
    "States.Format('x) ",  # unterminated literal
    "States.Format('x') trailing",
    "States.Array(1,)",  # empty argument slot
    "States.ArrayGetItem($.arr, )",
    "States.Array(bogus)",
    "States.Array(1 2)",
    "States.Format('abc\\')",  # the backslash escapes the closing quote
    "Format('x')",
])
def test_syntax_errors_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        compile_intrinsic(text)


def test_non_string_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        compile_intrinsic({"a": 1})  # type: ignore[arg-type]


def test_nesting_limit_is_ten() -> None:
    ten = "States.Array(" * 10 + ")" * 10
    assert run(ten) == [[[[[[[[[[]]]]]]]]]]
    with pytest.raises(ValueError, match="nest"):
        compile_intrinsic("States.Array(" * 11 + ")" * 11)


def test_literals() -> None:
    assert run("States.Array(1, -2, 1.5, -0.25, 2e3, null, true, false, 'x')") == [
        1, -2, 1.5, -0.25, 2000.0, None, True, False, "x"]
    assert type(run("States.Array(1)")[0]) is int
    assert run("States.Array( 'a' ,   2 )") == ["a", 2]


def test_string_literal_escapes() -> None:
    assert run(r"States.Array('it\'s', '\{\}', 'back\\slash')") == ["it's", "{}", "back\\slash"]
    # braces and commas need no escape outside a Format template
    assert run("States.Array('{a, b}')") == ["{a, b}"]
    assert run("States.StringToJson('{\"a\": [1, 2]}')") == {"a": [1, 2]}


def test_open_escape_backslash_is_a_runtime_error() -> None:
    fn = compile_intrinsic(r"States.Array('a\b')")  # compiles ...
    with pytest.raises(ASLError) as info:  # ... but fails when run
        fn({}, FakeFrame())
    assert info.value.error == "States.Runtime"
    assert "Invalid escape sequence" in (info.value.cause or "")


def test_path_arguments() -> None:
    data = {"abc": {"def ghi": 1, "x": [10, 20]}, "n": None}
    assert run("States.Array($.abc.['def ghi'], $.abc['def ghi'], $.abc.x[1], $.n)", data) == [
        1, 1, 20, None]
    assert run("States.JsonToString($)", {"a": 1}) == '{"a":1}'
    assert run("States.Array($$.Execution.Id)", context={"Execution": {"Id": "arn:x"}}) == ["arn:x"]
    assert run("States.Array($v, $v.k)", vars={"v": {"k": "val"}}) == [{"k": "val"}, "val"]
    # indefinite paths yield their matches as a list
    assert run("States.ArrayLength($.items[?(@.n > 1)])", {"items": [{"n": 1}, {"n": 2}, {"n": 3}]}) == 2
    assert run("States.ArrayLength($.items[*].nope)", {"items": [1, 2]}) == 0


def test_compiled_once_and_reusable() -> None:
    fn = compile_intrinsic("States.Format('{}-{}', $.a, $.b)")
    assert compile_intrinsic("States.Format('{}-{}', $.a, $.b)") is fn
    frame = FakeFrame()
    assert fn({"a": 1, "b": 2}, frame) == "1-2"
    assert fn({"a": "x", "b": True}, frame) == "x-true"


def test_inputs_are_not_mutated() -> None:
    data = {"a": {"x": 1}, "b": {"y": 2}, "arr": [3, 1, 3]}
    snapshot = repr(data)
    run("States.JsonMerge($.a, $.b, false)", data)
    run("States.ArrayUnique($.arr)", data)
    run("States.ArrayPartition($.arr, 2)", data)
    run("States.Array($.arr, $.a)", data)
    assert repr(data) == snapshot


# ----------------------------------------------------------------------------------------------
# missing paths


def test_missing_path_cause() -> None:
    assert fails("States.Format('{}', $.nope)", {"other": 1}) == (
        "The function 'States.Format('{}', $.nope)' had the following error: The JsonPath "
        "argument for the field '$.nope' could not be found in the input '{\"other\":1}'")


def test_missing_path_names_whole_expression_as_written() -> None:
    assert fails("States.Format('{}',States.Format('{}', $.a.b))", {"other": 1}) == (
        "The function 'States.Format('{}',States.Format('{}', $.a.b))' had the following error: "
        "The JsonPath argument for the field '$.a.b' could not be found in the input "
        "'{\"other\":1}'")


def test_missing_path_index_out_of_range() -> None:
    cause = fails("States.Format('{}', $.items[5])", {"items": [1, 2]})
    assert cause.endswith("field '$.items[5]' could not be found in the input '{\"items\":[1,2]}'")


def test_missing_context_path_is_reported_against_dollar() -> None:
    cause = fails("States.Format('{}', $$.Nope.Deep)", {"other": 1}, context={"State": {}})
    assert cause.endswith("field '$.Nope.Deep' could not be found in the input '{\"other\":1}'")


def test_missing_variable() -> None:
    cause = fails("States.Array($nosuch)", {"a": 1})
    assert "'$nosuch' could not be found" in cause


@pytest.mark.parametrize("expr", [
    "States.ArrayLength($.nope)", "States.Array(1, $.nope)", "States.JsonToString($.nope)",
    "States.StringToJson($.nope)", "States.MathAdd($.nope, 1)", "States.ArrayContains($.nope, 1)",
    "States.JsonMerge($.nope, $.other, false)",
])
def test_every_function_fails_on_missing_path(expr: str) -> None:
    assert fails(expr, {"other": 1}) == (
        f"The function '{expr}' had the following error: The JsonPath argument for the field "
        "'$.nope' could not be found in the input '{\"other\":1}'")


# ----------------------------------------------------------------------------------------------
# States.Format


def test_format_values() -> None:
    data = {"s": "x", "i": 2, "f": 3.5, "t": True, "n": None, "big": 1e20, "o": {"k": [1, "a", None]},
            "a": [1, [2.0, "b"]]}
    assert run("States.Format('{}|{}|{}|{}|{}|{}', $.s, $.i, $.f, $.t, $.n, $.big)", data) == (
        "x|2|3.5|true|null|1.0E20")
    assert run("States.Format('{} {}', $.o, $.a)", data) == "{k=[1, a, null]} [1, [2.0, b]]"


def test_format_template_forms() -> None:
    assert run("States.Format('no placeholders')") == "no placeholders"
    assert run("States.Format('  {}  ', 'x')") == "  x  "
    assert run(r"States.Format('\{\} is {}', 1)") == "{} is 1"
    assert run(r"States.Format('Name: \'{}\'', 'G')") == "Name: 'G'"
    assert run("States.Format($.t, $.n)", {"t": "Hello, my name is {}.", "n": "Arnav"}) == (
        "Hello, my name is Arnav.")
    assert run("States.Format('{}:{}', 'a', States.JsonToString($.o))", {"o": {"k": 1}}) == (
        'a:{"k":1}')


def test_format_argument_count_mismatch() -> None:
    assert fails("States.Format('{} {}', 'x')").endswith(
        "Invalid arguments in States.Format: number of arguments do not match the occurrences of {}.")
    assert "number of arguments" in fails("States.Format('{}', 'x', 'y')")
    assert "number of arguments" in fails("States.Format($.t, 1, 2)", {"t": "{}"})


@pytest.mark.parametrize("expr", ["States.Format('Hello {', 'x')", "States.Format('Hello {{}}', 'x')",
                                  "States.Format('}')"])
def test_format_bad_template(expr: str) -> None:
    assert "Invalid template in States.Format" in fails(expr)


def test_format_non_string_template() -> None:
    invalid("States.Format($.t, 'x')", {"t": 123})


# ----------------------------------------------------------------------------------------------
# JSON functions


def test_string_to_json() -> None:
    assert run("States.StringToJson($.s)", {"s": "{\"foo\": \"bar\"}"}) == {"foo": "bar"}
    assert run("States.StringToJson($.s)", {"s": "123456789012345678901234567890"}) == (
        123456789012345678901234567890)
    invalid("States.StringToJson($.s)", {"s": "{not json"})
    invalid("States.StringToJson($.s)", {"s": "NaN"})
    invalid("States.StringToJson($.s)", {"s": "[12345678901234567890123, NaN]"})
    invalid("States.StringToJson($.s)", {"s": 5})
    invalid("States.StringToJson($.s)", {"s": {"a": 1}})


def test_json_to_string() -> None:
    data = {"o": {"name": "Foo", "year": 2020, "f": 1.0, "u": "é\n", "l": [None, True]}}
    assert run("States.JsonToString($.o)", data) == (
        '{"name":"Foo","year":2020,"f":1.0,"u":"é\\n","l":[null,true]}')
    assert run("States.JsonToString($.s)", {"s": "x"}) == '"x"'
    assert run("States.JsonToString($.n)", {"n": 1e20}) == "1.0E20"


def test_json_merge() -> None:
    data = {"a": {"x": 1, "n": {"p": 1}}, "b": {"y": 2, "n": {"q": 2}}}
    assert run("States.JsonMerge($.a, $.b, false)", data) == {"x": 1, "n": {"q": 2}, "y": 2}
    invalid("States.JsonMerge($.a, $.b, true)", data)  # AWS only merges shallowly
    invalid("States.JsonMerge($.a, $.b, 'false')", data)
    invalid("States.JsonMerge($.a, 1, false)", data)
    invalid("States.JsonMerge(States.Array(1), $.b, false)", data)


# ----------------------------------------------------------------------------------------------
# array functions


def test_array() -> None:
    assert run("States.Array()") == []
    assert run("States.Array($.id)", {"id": 123456}) == [123456]
    assert run("States.Array('a', States.Array(1, 2), $.o)", {"o": {"k": 1}}) == [
        "a", [1, 2], {"k": 1}]


def test_array_partition() -> None:
    assert run("States.ArrayPartition($.a, 4)", {"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]}) == [
        [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert run("States.ArrayPartition($.a, 2.9)", {"a": [1, 2, 3]}) == [[1, 2], [3]]
    for bad in ("0", "-1", "0.49", "'2'", "null"):
        invalid(f"States.ArrayPartition($.a, {bad})", {"a": [1, 2, 3]})
    invalid("States.ArrayPartition($.a, 2)", {"a": "abc"})


def test_array_contains() -> None:
    data = {"a": [1, 2, "3", {"k": [1]}, None, True]}
    assert run("States.ArrayContains($.a, 2)", data) is True
    assert run("States.ArrayContains($.a, '3')", data) is True
    assert run("States.ArrayContains($.a, 3)", data) is False
    assert run("States.ArrayContains($.a, $.o)", {**data, "o": {"k": [1]}}) is True
    assert run("States.ArrayContains($.a, null)", data) is True
    assert run("States.ArrayContains($.a, true)", data) is True
    assert run("States.ArrayContains($.b, true)", {"b": [1]}) is False  # true is not 1
    invalid("States.ArrayContains($.s, 1)", {"s": "abc"})


def test_array_range() -> None:
    assert run("States.ArrayRange(1, 9, 2)") == [1, 3, 5, 7, 9]
    assert run("States.ArrayRange(-2, 2, 2)") == [-2, 0, 2]
    assert run("States.ArrayRange(5, 1, -2)") == [5, 3, 1]
    assert run("States.ArrayRange(3, 3, -1)") == [3]
    assert run("States.ArrayRange(5, 1, 1)") == []
    assert run("States.ArrayRange(1, 5, -1)") == []
    # AWS drops fractions (toward zero) before building the range
    assert run("States.ArrayRange(1.4, 5.6, 2.2)") == [1, 3, 5]
    assert run("States.ArrayRange(1.6, 1.4, 1)") == [1]
    assert run("States.ArrayRange(5.4, -0.6, -2.4)") == [5, 3, 1]
    assert len(run("States.ArrayRange(1, 1000, 1)")) == 1000
    assert len(run("States.ArrayRange(1000, 1, -1)")) == 1000
    for bad in ("1, 1001, 1", "1001, 1, -1", "1, 10, 0", "1, 10, 0.49", "'a', 5, 1", "1, 'b', 1",
                "1, 5, 'c'", "1, 5, null"):
        invalid(f"States.ArrayRange({bad})")
    assert run("States.ArrayRange(States.MathAdd($.b, 1), States.MathAdd($.b, 5), 2)", {"b": 0}) == [
        1, 3, 5]


def test_array_get_item() -> None:
    data = {"arr": [10, 20, 30], "objs": [{"a": 1}, {"b": 2}], "empty": []}
    assert run("States.ArrayGetItem($.arr, 0)", data) == 10
    assert run("States.ArrayGetItem($.objs, 1)", data) == {"b": 2}
    assert run("States.ArrayGetItem($.arr, 1.2)", data) == 20  # fraction dropped
    assert run("States.ArrayGetItem(States.Array('x', 'y', 'z'), 1)", data) == "y"
    assert run("States.ArrayGetItem($.empty, 999)", data) is None  # as observed on AWS
    for bad in ("$.arr, 3", "$.arr, -1", "$.arr, '1'", "'not-array', 0", "$.arr, null"):
        invalid(f"States.ArrayGetItem({bad})", data)


def test_array_length() -> None:
    assert run("States.ArrayLength($.a)", {"a": []}) == 0
    assert run("States.ArrayLength(States.Array(1, 2))") == 2
    invalid("States.ArrayLength($.a)", {"a": "abc"})
    invalid("States.ArrayLength($.a)", {"a": {"k": 1}})


def test_array_unique() -> None:
    assert run("States.ArrayUnique($.a)", {"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]}) == [1, 2, 3, 4]
    assert run("States.ArrayUnique($.a)", {"a": [3, 1, 3, 2, 1]}) == [3, 1, 2]
    assert run("States.ArrayUnique($.a)", {"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}, [1], [1], "1", 1,
                                                 True, None, None]}) == [
        {"x": 1, "y": 2}, [1], "1", 1, True, None]
    invalid("States.ArrayUnique($.a)", {"a": "aab"})


# ----------------------------------------------------------------------------------------------
# encoding, hashing


def test_base64() -> None:
    assert run("States.Base64Encode('>>>')") == "Pj4+"
    assert run("States.Base64Encode('é')") == "w6k="
    long = run("States.Base64Encode($.s)", {"s": "a" * 10_000})
    assert len(long) == 13_336 and "\n" not in long
    invalid("States.Base64Encode($.s)", {"s": "a" * 10_001})
    invalid("States.Base64Encode($.s)", {"s": 5})
    assert run("States.Base64Decode(States.Base64Encode('round trip'))") == "round trip"
    assert run("States.Base64Decode('w6k')") == "é"  # padding optional
    invalid("States.Base64Decode('not base64!!!')")
    invalid("States.Base64Decode($.s)", {"s": "A" * 10_004})
    invalid("States.Base64Decode($.s)", {"s": None})


def test_hash() -> None:
    assert run("States.Hash('input data', 'SHA-1')") == "aaff4a450a104cd177d28d18d74485e8cae074b7"
    assert run("States.Hash($.s, 'MD5')", {"s": "a" * 10_000})
    invalid("States.Hash($.s, 'MD5')", {"s": "a" * 10_001})
    for alg in ("'SHA256'", "'sha-256'", "'SHA-224'", "1", "null"):
        invalid(f"States.Hash('x', {alg})")


# ----------------------------------------------------------------------------------------------
# math, strings, uuid


def test_math_add() -> None:
    assert run("States.MathAdd(111, -1)") == 110
    assert run("States.MathAdd($.a, 1)", {"a": 2147483646}) == 2147483647
    assert run("States.MathAdd(-2147483648, 0)") == -2147483648
    invalid("States.MathAdd(2147483648, 0)")
    invalid("States.MathAdd(2147483647, 1)")
    invalid("States.MathAdd('1', 1)")
    invalid("States.MathAdd(true, 1)")
    invalid("States.MathAdd(null, 1)")


def test_math_random() -> None:
    for _ in range(50):
        v = run("States.MathRandom(1, 3)")
        assert type(v) is int and 1 <= v < 3
    assert run("States.MathRandom(1, 2)") == 1  # end is exclusive
    seeded = {run("States.MathRandom(1, 1000, 42)") for _ in range(5)}
    assert len(seeded) == 1 and 1 <= seeded.pop() < 1000
    assert 1 <= run("States.MathRandom(1.6, 5.4)") < 5
    assert 2147483640 <= run("States.MathRandom($.s, $.e, 1)", {"s": 2147483640, "e": 2147483647}) < (
        2147483647)
    for bad in ("1, 1", "10, 5", "1.4, 1.6", "'a', 10", "1, 'b'", "1, 10, 'seed'", "1, 10, null"):
        invalid(f"States.MathRandom({bad})")


def test_java_random_matches_java() -> None:
    # new java.util.Random(42).nextInt() == -1170105035, so next(31) == 1562431130
    assert JavaRandom(42).next(32) == -1170105035
    assert JavaRandom(42).next(31) == 1562431130
    assert JavaRandom(42).next_int(10) == 0
    assert JavaRandom(42).next_int(100) == 30
    assert JavaRandom(0).next_int(10) == 0
    assert JavaRandom(42).next_int(16) == ((16 * (JavaRandom(42).next(31))) >> 31)


def test_string_split() -> None:
    assert run("States.StringSplit('1,2,3,4,5', ',')") == ["1", "2", "3", "4", "5"]
    assert run("States.StringSplit('This.is+a,test=string', '.+,=')") == [
        "This", "is", "a", "test", "string"]
    assert run("States.StringSplit(',,a,,b,,', ',')") == ["a", "b"]
    assert run("States.StringSplit('a[b]c', '[]')") == ["a", "b", "c"]
    assert run("States.StringSplit('abc', '')") == ["abc"]
    assert run("States.StringSplit('', ',')") == []
    invalid("States.StringSplit($.n, ',')", {"n": 7})
    invalid("States.StringSplit('a', 1)")
    assert run("States.ArrayGetItem(States.StringSplit('2020-05-27T08:00:00.000Z', 'T'), 0)") == (
        "2020-05-27")


def test_uuid_is_v4_and_fresh() -> None:
    a, b = run("States.UUID()"), run("States.UUID()")
    assert a != b
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", a)


# ----------------------------------------------------------------------------------------------
# number formatting helpers


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1.0"), (1.1, "1.1"), (-0.0, "-0.0"), (0.001, "0.001"), (0.0001, "1.0E-4"),
    (9999999.0, "9999999.0"), (1e7, "1.0E7"), (12345678.5, "1.23456785E7"), (1e20, "1.0E20"),
    (-2.5e-30, "-2.5E-30"),
])
def test_java_double(value: float, text: str) -> None:
    assert java_double(value) == text


def test_dumps_matches_jackson_numbers() -> None:
    assert dumps({"a": [1, 1.0, 1e20, 0.5, "1e20, 12345678.0"]}) == (
        '{"a":[1,1.0,1.0E20,0.5,"1e20, 12345678.0"]}')
    assert dumps(2**70) == str(2**70)
    assert dumps(None) == "null"
