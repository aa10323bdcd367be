from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from express.asl.errors import QUERY_EVALUATION_ERROR, ASLError
from express.asl.jsonata import compile_template, expression_text
from express.asl.query_language import is_jsonata


class Frame:
    def __init__(self, vars: dict[str, Any] | None = None) -> None:
        self.vars = vars or {}


INPUT = {
    "a": 1,
    "name": "World",
    "items": [{"price": 2.5, "n": 1}, {"price": 4, "n": 2}],
    "nothing": None,
    "obj": {"k": [7], "deep": {"x": "y"}},
}
CONTEXT = {"Execution": {"Name": "exec"}, "State": {"Name": "S"}, "Map": {"Item": {"Index": 0, "Value": "v"}}}


def ev(value: Any, vars: dict[str, Any] | None = None, field: str = "Output", **states: Any) -> Any:
    st = {"input": INPUT, "context": CONTEXT, **states}
    return compile_template(value, field)(st, Frame(vars))


def error_of(value: Any, vars: dict[str, Any] | None = None, field: str = "Output", **states: Any) -> str:
    with pytest.raises(ASLError) as exc:
        ev(value, vars, field, **states)
    assert exc.value.error == QUERY_EVALUATION_ERROR
    assert exc.value.cause is not None
    return exc.value.cause


# --- recognising expressions -------------------------------------------------------------------

@pytest.mark.parametrize("s, expected", [
    ("{% $x %}", True),
    ("{%$x%}", True),
    (" {% $x %}", False),
    ("{% $x %} ", False),
    ("$states.input", False),
    ("{%}", False),
    (1, False),
    (None, False),
])
def test_is_jsonata(s: Any, expected: bool) -> None:
    assert is_jsonata(s) is expected


# --- expressions and templates -----------------------------------------------------------------

def test_arithmetic_and_object_constructor() -> None:
    assert ev("{% $states.input.a + 1 %}") == 2
    assert ev("{% {'x': $states.input.items[0].price * 2} %}") == {"x": 5}
    assert ev("{% 'Hello ' & $states.input.name %}") == "Hello World"


def test_numbers_are_json_numbers() -> None:
    result = ev("{% $states.input.items[0].price * 2 %}")
    assert result == 5 and type(result) is int
    assert ev("{% 0.1 + 0.2 %}") == pytest.approx(0.3)
    assert ev("{% $string(1.0) %}") == "1"


def test_paths_sequences_and_arrays() -> None:
    assert ev("{% $states.input.items.price %}") == [2.5, 4]
    assert ev("{% $states.input.items[n = 2].price %}") == 4
    assert ev("{% $states.input.obj.k %}") == [7]
    assert ev("{% $states.input.obj.k[0] %}") == 7
    assert ev("{% $states.input.items %}") == INPUT["items"]
    assert ev("{% $states.input %}") == INPUT


def test_null_is_a_value() -> None:
    assert ev("{% $states.input.nothing %}") is None
    assert ev("{% null %}") is None
    assert ev({"k": "{% $states.input.nothing %}"}) == {"k": None}
    assert ev("{% $v = null %}", {"v": None}) is True


def test_template_evaluates_nested_strings() -> None:
    template = {
        "lit": "plain",
        "num": 1.5,
        "list": [1, "{% $states.input.a %}", {"deep": "{% $states.input.name %}"}],
        "not_expr": " {% $states.input %} ",
        "jsonpath_like": "$.a",
        "empty": {},
    }
    assert ev(template) == {
        "lit": "plain",
        "num": 1.5,
        "list": [1, 1, {"deep": "World"}],
        "not_expr": " {% $states.input %} ",
        "jsonpath_like": "$.a",
        "empty": {},
    }


def test_literal_templates_are_fresh_copies() -> None:
    definition = {"a": [1, {"b": 2}], "c": None}
    fn = compile_template(definition, "Output")
    first = fn({"input": {}, "context": {}}, Frame())
    assert first == definition
    first["a"][1]["b"] = 99
    first["new"] = 1
    assert definition == {"a": [1, {"b": 2}], "c": None}
    assert fn({"input": {}, "context": {}}, Frame()) == definition
    assert ev(True, field="Condition") is True
    assert ev("text") == "text"
    assert ev(None) is None


def test_template_results_do_not_share_literal_containers() -> None:
    fn = compile_template({"x": "{% $states.input.a %}", "l": [1]}, "Output")
    one = fn({"input": INPUT, "context": {}}, Frame())
    two = fn({"input": INPUT, "context": {}}, Frame())
    assert one == two == {"x": 1, "l": [1]}
    assert one["l"] is not two["l"]


def test_undefined_inside_object_constructor_drops_key() -> None:
    assert ev("{% {'k': $missing, 'j': 1} %}") == {"j": 1}
    assert ev("{% [$missing, 1] %}") == [1]


# --- $states bindings --------------------------------------------------------------------------

def test_states_bindings() -> None:
    assert ev("{% $states.context.Execution.Name %}") == "exec"
    assert ev("{% $states.context.Map.Item.Value %}") == "v"
    assert ev("{% $states.result.Payload %}", result={"Payload": 3}) == 3
    assert ev("{% $states.errorOutput.Error %}", errorOutput={"Error": "E", "Cause": "c"}) == "E"
    assert ev("{% $keys($states) %}") == ["input", "context"]
    assert ev("{% $states.input.a + $count($keys($states.input)) %}") == 1 + len(INPUT)


def test_input_that_is_not_an_object() -> None:
    assert ev("{% $states.input %}", input=[1, 2]) == [1, 2]
    assert ev("{% $states.input.a %}", input=[{"a": 1}, {"a": 2}]) == [1, 2]
    assert ev("{% $states.input = '\"' %}", input='"') is True


def test_result_absent_is_undefined() -> None:
    assert "returned nothing (undefined)" in error_of("{% $states.result %}")


# --- workflow variables ------------------------------------------------------------------------

def test_variables() -> None:
    vars = {"count": 3, "user": {"name": "ann", "tags": ["a", "b"]}, "list": [{"v": 1}, {"v": 2}]}
    assert ev("{% $count + 1 %}", vars) == 4
    assert ev("{% $user.name %}", vars) == "ann"
    assert ev("{% $user.tags %}", vars) == ["a", "b"]
    assert ev("{% $list.v %}", vars) == [1, 2]
    assert ev({"n": "{% $user.name %}", "s": "{% $sum($list.v) %}"}, vars) == {"n": "ann", "s": 3}


def test_local_assignment_does_not_leak() -> None:
    vars = {"x": 1}
    assert ev("{% ($x := 5; $x * 2) %}", vars) == 10
    assert vars == {"x": 1}
    assert ev("{% $x %}", vars) == 1


# --- AWS-added functions -----------------------------------------------------------------------

def test_partition() -> None:
    assert ev("{% $partition([1, 2, 3, 4, 5], 2) %}") == [[1, 2], [3, 4], [5]]
    assert ev("{% $partition([0], 1) %}") == [[0]]
    assert ev("{% $partition([0, 1], 5) %}") == [[0, 1]]
    assert "threw an error during evaluation" in error_of("{% $partition([1], 0) %}")


def test_range() -> None:
    assert ev("{% $range(0, 10, 2) %}") == [0, 2, 4, 6, 8, 10]
    assert ev("{% $range(5, 1, -2) %}") == [5, 3, 1]
    assert ev("{% $range(1, 3, 1) %}") == [1, 2, 3]
    assert "threw an error during evaluation" in error_of("{% $range(1, 3, 0) %}")


@pytest.mark.parametrize("alg, name", [
    ("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"), ("SHA-384", "sha384"), ("SHA-512", "sha512"),
])
def test_hash(alg: str, name: str) -> None:
    assert ev(f"{{% $hash('input data', '{alg}') %}}") == hashlib.new(name, b"input data").hexdigest()


def test_hash_known_value_and_bad_algorithm() -> None:
    assert ev("{% $hash('input data', 'SHA-1') %}") == "aaff4a450a104cd177d28d18d74485e8cae074b7"
    assert "SHA-3" in error_of("{% $hash('x', 'SHA-3') %}")


def test_random() -> None:
    for _ in range(20):
        n = ev("{% $random() %}")
        assert 0 <= n < 1
    seeded = ev("{% $random(42) %}")
    assert 0 <= seeded < 1
    assert ev("{% $random(42) %}") == seeded
    assert ev("{% $random(43) %}") != seeded


def test_uuid() -> None:
    a, b = ev("{% $uuid() %}"), ev("{% $uuid() %}")
    pattern = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    assert pattern.fullmatch(a) and pattern.fullmatch(b) and a != b


@pytest.mark.parametrize("text, expected", [
    ("-0", 0), ("1", 1), ("1.1", 1.1), ("true", True), ('"HelloWorld"', "HelloWorld"),
    ('[1, 2, "HelloWorld"]', [1, 2, "HelloWorld"]), ('{"Arg1": 1, "Arg2": []}', {"Arg1": 1, "Arg2": []}),
    ("null", None),
])
def test_parse(text: str, expected: Any) -> None:
    assert ev("{% $parse($states.input) %}", input=text) == expected


def test_parse_invalid_json() -> None:
    assert "threw an error during evaluation" in error_of("{% $parse('{nope') %}")


def test_eval_is_not_available() -> None:
    cause = error_of("{% $eval('1 + 1') %}")
    assert cause == ("The JSONata expression '$eval('1 + 1')' specified for the field 'Output' threw an "
                     "error during evaluation. T1006: Attempted to invoke a non-function")


def test_now() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev("{% $now() %}"))
    assert re.fullmatch(r"\d{4}", ev("{% $now('[Y0001]') %}"))
    assert re.fullmatch(r"\d\d:\d\d", ev("{% $now('[H01]:[m01]', '+0100') %}"))


def test_expression_text() -> None:
    assert expression_text("{%  $states.input\n %}") == "$states.input"


def test_standard_functions_still_work() -> None:
    assert ev("{% $merge([{'a': 1}, {'b': 2}]) %}") == {"a": 1, "b": 2}
    assert ev("{% $contains('hello$world', /^hello\\$/) %}") is True
    assert ev("{% $number('2') %}") == 2
    assert ev("{% $uppercase($states.input.name) %}") == "WORLD"
    assert ev("{% $map([1, 2], function($v) { $v * 10 }) %}") == [10, 20]


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("template, field, path", [
    ("{% $doesNotExist %}", "Output", "Output"),
    ({"result": "{% $doesNotExist %}"}, "Output", "Output/result"),
    ({"FunctionName": "{% $doesNotExist %}"}, "Arguments", "Arguments/FunctionName"),
    ({"result": "{% $doesNotExist %}"}, "Assign", "Assign/result"),
    ({"a": {"b": [0, "{% $doesNotExist %}"]}}, "Output", "Output/a/b[1]"),
])
def test_undefined_names_the_field_path(template: Any, field: str, path: str) -> None:
    assert error_of(template, field=field) == (
        f"The JSONata expression '$doesNotExist' specified for the field '{path}' returned nothing (undefined).")


def test_undefined_from_library_expressions() -> None:
    assert error_of("{% $states.input.items[n = 9] %}") == (
        "The JSONata expression '$states.input.items[n = 9]' specified for the field 'Output' "
        "returned nothing (undefined).")
    assert "returned nothing" in error_of("{% $states.input.obj.missing.deeper %}")
    assert "returned nothing" in error_of("{% $states.input.a.b %}")


def test_function_result_is_unsupported() -> None:
    assert error_of("{% $fn := function($x){$x} %}", field="Items") == (
        "The JSONata expression '$fn := function($x){$x}' specified for the field 'Items' "
        "returned an unsupported result type.")


def test_type_error_wording() -> None:
    cause = error_of("{% $states.input.a + 'x' %}")
    assert cause.startswith("The JSONata expression '$states.input.a + 'x'' specified for the field "
                            "'Output' threw an error during evaluation. T2002: ")


def test_syntax_error_at_compile_time() -> None:
    with pytest.raises(ValueError, match="Output/x"):
        compile_template({"x": "{% 1 + %}"}, "Output")
    with pytest.raises(ValueError):
        compile_template("{% $states.input.[ %}", "Output")
    with pytest.raises(ValueError):
        compile_template("{%  %}", "Output")


def test_expression_compiled_once() -> None:
    fn = compile_template({"a": "{% $states.input.a + $n %}"}, "Output")
    for n in range(5):
        assert fn({"input": {"a": 1}, "context": {}}, Frame({"n": n})) == {"a": 1 + n}


def test_big_integers_in_bindings() -> None:
    big = 2**70
    assert ev("{% $states.input.big %}", input={"big": big}) == big  # plain path, no library
    assert ev("{% $states.input.big + 0 %}", input={"big": big}) == pytest.approx(float(big))
