"""Tests for express.asl.intrinsic_parser: the one grammar of intrinsic calls, which the validator
and the compiler both read (so they accept exactly the same calls)."""
from __future__ import annotations

from typing import Any

import pytest

from express.asl import intrinsics
from express.asl.intrinsic_parser import (
    ARITY,
    Call,
    IntrinsicSyntaxError,
    Literal,
    PathArgument,
    is_intrinsic,
    parse_intrinsic,
)
from express.asl.intrinsics import compile_intrinsic
from express.asl.validation import validate


def pass_with(value: str) -> dict[str, Any]:
    return {"StartAt": "S", "States": {"S": {"Type": "Pass", "Parameters": {"a.$": value}, "End": True}}}


# ----------------------------------------------------------------------------------------------
# is_intrinsic: a value written as a call (then parsed as one, and reported as a bad call)


@pytest.mark.parametrize("text", [
    "States.UUID()", "  States.Format('x')  ", "\tStates.Array($.a, States.Array(1))",
    "States.Foo(1)",  # looks like one; the parser rejects it
    "States.Format",  # an attempted call with no parentheses
])
def test_is_intrinsic_true(text: str) -> None:
    assert is_intrinsic(text)


@pytest.mark.parametrize("text", ["$.a", "$$.Execution.Id", "Format('x')", "states.Format('x')",
                                  "hello", "", "{% $x %}", None, 12])
def test_is_intrinsic_false(text: Any) -> None:
    assert not is_intrinsic(text)


# ----------------------------------------------------------------------------------------------
# the tree


def test_tree_of_a_nested_call() -> None:
    call = parse_intrinsic("States.Format('{} is {}', $.a['b c'], States.MathAdd($v, -1))")
    assert call.name == "States.Format"
    template, path, inner = call.args
    assert template == Literal("{} is {}", ("", " is ", ""))
    assert path == PathArgument("$.a['b c']", 26)
    assert isinstance(inner, Call) and inner.name == "States.MathAdd"
    assert inner.args == (PathArgument("$v", 53), Literal(-1))
    assert call.paths() == ["$.a['b c']", "$v"]
    assert call.escape_error() is None


def test_literals() -> None:
    call = parse_intrinsic("States.Array(1, -2.5, 2e3, null, true, false, 'it\\'s \\{\\} \\\\')")
    assert [a.value for a in call.args if isinstance(a, Literal)] == [
        1, -2.5, 2000.0, None, True, False, "it's {} \\"]


def test_open_escape_stays_in_the_tree() -> None:
    call = parse_intrinsic("States.Array(States.Format('a\\qb'))")
    assert call.escape_error() == "Invalid escape sequence '\\q' in string literal"
    inner = call.args[0]
    assert isinstance(inner, Call) and inner.args == (
        Literal("a\\qb", ("a\\qb",), None, "Invalid escape sequence '\\q' in string literal"),)


def test_path_runs_to_the_comma_outside_brackets_and_parentheses() -> None:
    call = parse_intrinsic("States.Array($.a[?(@.n, 1)], $.b.length() , $.c[','])")
    assert call.paths() == ["$.a[?(@.n, 1)]", "$.b.length()", "$.c[',']"]


@pytest.mark.parametrize("text, fragment", [
    ("States.Nope(1)", "unknown intrinsic function 'States.Nope' at position 0"),
    ("States.ArrayRange(1, 2)", "States.ArrayRange takes 3 argument(s) but 2 were given"),
    ("States.UUID(1)", "States.UUID takes 0 argument(s) but 1 were given"),
    ("States.Format()", "States.Format takes at least 1 argument(s) but 0 were given"),
    ("States.MathRandom(1, 2, 3, 4)", "States.MathRandom takes 2 to 3 argument(s) but 4 were given"),
    ("States.Array(States.Nope())", "unknown intrinsic function 'States.Nope' at position 13"),
    ("States.Format", "expected '(' after States.Format"),
    ("States.Array(1,)", "unexpected argument"),
    ("States.Array('x", "unterminated string literal at position 13"),
    ("States.Array(1) x", "unexpected text 'x' after the function call at position 16"),
    ("States.Array(" * 11 + ")" * 11, "nest more than 10 deep"),
    (" $.a", "expected 'States.<Function>(' at position 1"),
])
def test_syntax_errors_name_the_position(text: str, fragment: str) -> None:
    with pytest.raises(IntrinsicSyntaxError) as info:
        parse_intrinsic(text)
    assert fragment in str(info.value)


def test_every_function_has_a_builder() -> None:
    assert intrinsics._BUILDERS.keys() == ARITY.keys()


# ----------------------------------------------------------------------------------------------
# one grammar: whatever the validator accepts compiles, whatever it rejects does not


AGREEMENT = [
    "States.Array( 1 ,\t2\n,\r3 )",
    " \n States.UUID() \t",
    "States.Format ('x')",  # white space between the name and '('
    "States.Array(1,\u00a02)",  # not JSON white space
    "States.Array(1,\x0c2)",
    "\u2003States.UUID()",
    "States.UUID()\u00a0",
    "States.Array(truex)",
    "States.Array(nullnull)",
    "States.Array(1e5, -0.5, 3)",
    "States.Array(+1)",
    "States.Array(.5)",
    "States.Array(States.UUID)",
    "States.ArrayRange(1, 2)",
    "States.JsonMerge($.a, $.b)",
    "States.Format('a', $.x",
    "States.Array(" * 10 + ")" * 10,
    "States.Array(" * 11 + ")" * 11,
    "States.Array($.a[?(@.n > 1)], $.b)",
    "States.Array($.a b)",
]


@pytest.mark.parametrize("text", AGREEMENT)
def test_validator_and_compiler_agree(text: str) -> None:
    try:
        compile_intrinsic(text)
        compiles = True
    except ValueError:
        compiles = False
    assert (validate(pass_with(text)) == []) is compiles


@pytest.mark.parametrize("text", [
    "States.Array( 1 ,\t2\n,\r3 )", " \n States.UUID() \t", "States.Format ('x')",
])
def test_json_white_space_is_accepted(text: str) -> None:
    assert validate(pass_with(text)) == []
    compile_intrinsic(text)


@pytest.mark.parametrize("text", ["States.Array(1,\u00a02)", "States.Array(1,\x0c2)", "\u2003States.UUID()"])
def test_other_white_space_is_not(text: str) -> None:
    assert validate(pass_with(text)) != []
    with pytest.raises(ValueError):
        compile_intrinsic(text)
