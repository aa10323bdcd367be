"""JSONPath Choice Rules compiled to predicates ``(data, frame) -> bool``, with AWS's semantics.

Every rule is parsed once: literals are type-checked, timestamps and ``StringMatches`` patterns are
pre-parsed, and each data-test rule becomes one generated Python function whose body inlines the
``Variable`` lookup (``d['a']['b']``) and the comparison. ``And``/``Or``/``Not`` become a generated
function that calls its children with Python's own short-circuiting ``and``/``or``/``not``.

Semantics (ASL spec, and AWS where the spec is silent):

* A value of the wrong type makes the comparison false, never an error: ``NumericEquals`` on a
  string, ``StringEquals`` on a number, a ``Timestamp*`` on a string that is not RFC 3339... JSON
  booleans are not numbers (Python's ``True == 1`` is kept out by exact type tests).
* ``IsPresent`` never fails. Any other operator whose ``Variable`` (or ``*Path`` operand) selects
  nothing fails the execution with ``States.Runtime``.
* String comparisons are ordinal, without normalisation or case folding, in UTF-16 code-unit order
  (AWS runs on the JVM); it only differs from code-point order for characters above U+FFFF.
* ``StringMatches`` knows one wildcard, ``*`` (any run of characters, newlines included), and two
  escapes, ``\\*`` and ``\\\\``.
* Timestamps compare as instants: offsets are applied and fractional seconds are compared exactly.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from express.asl.errors import RUNTIME, ASLError, PathMissing
from express.asl.jsonpath import _exec, compile_getter, parse_path, python_expr
from express.asl.timestamps import parse_timestamp

Predicate = Callable[[Any, Any], bool]

# Keys a rule may carry that play no part in its truth value.
_IGNORED = frozenset({"Next", "Assign", "Comment", "Output"})
_BOOLEAN_OPS = ("And", "Or", "Not")

_CMP = {"Equals": "==", "LessThan": "<", "GreaterThan": ">", "LessThanEquals": "<=",
        "GreaterThanEquals": ">="}
_KINDS = ("String", "Numeric", "Timestamp")

# operator name -> (kind, Python comparison operator or None, operand is a path)
_OPERATORS: dict[str, tuple[str, str | None, bool]] = {}
for _kind in _KINDS:
    for _name, _op in _CMP.items():
        _OPERATORS[_kind + _name] = (_kind, _op, False)
        _OPERATORS[_kind + _name + "Path"] = (_kind, _op, True)
_OPERATORS["BooleanEquals"] = ("Boolean", "==", False)
_OPERATORS["BooleanEqualsPath"] = ("Boolean", "==", True)
_OPERATORS["StringMatches"] = ("Matches", None, False)
for _name in ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"):
    _OPERATORS[_name] = (_name, None, False)

# Type tests on a value ``v``, as Python expressions (JSON values only come as these types).
_IS_TEST = {
    "IsNull": "v is None",
    "IsNumeric": "type(v) in _NUM",
    "IsString": "type(v) is str",
    "IsBoolean": "type(v) is bool",
    "IsTimestamp": "_ts(v) is not None",
}
_NUM = (int, float)


def invalid_path_cause(path: str) -> str:
    """AWS's cause (after the engine's 'An error occurred while executing the state ...' prefix)
    when a Choice Rule's path selects nothing."""
    return f"Invalid path '{path}': The choice state's condition path references an invalid value."


def compile_rule(rule: Any) -> Predicate:
    """A predicate ``(data, frame) -> bool`` for one JSONPath Choice Rule.

    Raises ValueError when the rule cannot be compiled (no operator or several, unknown fields,
    an operand of the wrong type, an empty ``And``/``Or``, a bad pattern or path...). At run time
    the predicate raises ASLError(States.Runtime) when a path it needs selects nothing.
    """
    return _Compiler().rule(rule, "")


class _Compiler:
    """Builds the generated functions of one rule tree; ``env`` collects the objects they use."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"_NUM": _NUM, "_ts": _ts_key, "_u16": _utf16}
        self.count = 0

    def bind(self, value: Any) -> str:
        name = f"_k{self.count}"
        self.count += 1
        self.env[name] = value
        return name

    def rule(self, rule: Any, where: str) -> Predicate:
        if not isinstance(rule, dict):
            raise ValueError(f"{_at(where)}a Choice Rule must be an object")  # noqa: TRY004 - API
        keys = [k for k in rule if k not in _IGNORED]
        boolean = [k for k in keys if k in _BOOLEAN_OPS]
        operators = [k for k in keys if k in _OPERATORS]
        unknown = [k for k in keys if k not in _OPERATORS and k not in _BOOLEAN_OPS and k != "Variable"]
        if unknown:
            raise ValueError(f"{_at(where)}unknown Choice Rule field(s): {', '.join(unknown)}")
        if boolean:
            if len(boolean) > 1 or operators or "Variable" in rule:
                raise ValueError(f"{_at(where)}a Choice Rule must have exactly one of And, Or, Not, "
                                 "or a Variable with one comparison operator")
            return self.boolean(boolean[0], rule[boolean[0]], where)
        if not operators:
            raise ValueError(f"{_at(where)}Choice Rule has no comparison operator")
        if len(operators) > 1:
            raise ValueError(f"{_at(where)}Choice Rule has more than one comparison operator: "
                             + ", ".join(operators))
        if "Variable" not in rule:
            raise ValueError(f"{_at(where)}Choice Rule with {operators[0]} has no Variable")
        return self.data_test(rule["Variable"], operators[0], rule[operators[0]], where)

    def boolean(self, op: str, value: Any, where: str) -> Predicate:
        if op == "Not":
            child = self.rule(value, f"{where}/Not")
            return _generate("pred", f"    return not {self.bind(child)}(d, f)\n", self.env)
        if not isinstance(value, list) or not value:
            raise ValueError(f"{_at(where)}{op} must be a non-empty array of Choice Rules")
        children = [self.bind(self.rule(r, f"{where}/{op}/{i}")) for i, r in enumerate(value)]
        if len(children) == 1:
            return self.env[children[0]]  # type: ignore[no-any-return]
        joined = f" {op.lower()} ".join(f"{c}(d, f)" for c in children)
        return _generate("pred", f"    return {joined}\n", self.env)

    def data_test(self, variable: Any, op: str, operand: Any, where: str) -> Predicate:
        if not isinstance(variable, str):
            raise ValueError(f"{_at(where)}Variable must be a string path")  # noqa: TRY004 - API
        try:
            getter = compile_getter(variable)
        except ValueError as e:
            raise ValueError(f"{_at(where)}Variable: {e}") from None
        kind, cmp, is_path = _OPERATORS[op]

        if kind == "IsPresent":
            _expect(type(operand) is bool, where, op, "a boolean")
            expr = python_expr(parse_path(variable), "d", "f")
            if expr is None:
                return _is_present(getter, operand)
            # The inlined lookup fails exactly when the getter would raise PathMissing.
            return _generate("pred", f"    try:\n        {expr}\n"
                             f"    except (KeyError, TypeError, IndexError):\n        return {not operand}\n"
                             f"    return {operand}\n", self.env)

        fetch_w = ""
        if kind in _IS_TEST:
            _expect(type(operand) is bool, where, op, "a boolean")
            test = _IS_TEST[kind] if operand else f"not ({_IS_TEST[kind]})"
        elif is_path:
            _expect(isinstance(operand, str), where, op, "a path")
            try:
                other = compile_getter(operand)
            except ValueError as e:
                raise ValueError(f"{_at(where)}{op}: {e}") from None
            # Both paths are resolved before comparing: a missing operand fails even when the
            # Variable's type already decides the answer.
            fetch_w = f"    w = {self.bind(_strict(other, operand))}(d, f)\n"
            test = _PATH_TESTS[kind].format(cmp=cmp)
        else:
            test = self.literal_test(kind, cmp, operand, op, where)

        src = "def pred(d, f):\n" + self.fetch(variable, getter) + fetch_w + f"    return {test}\n"
        return _generate("pred", src, self.env)

    def fetch(self, text: str, getter: Callable[[Any, Any], Any]) -> str:
        """Statements that set ``v`` to the value at ``text`` or raise States.Runtime."""
        slow = self.bind(_strict(getter, text))
        path = parse_path(text)
        expr = python_expr(path, "d", "f")
        if expr is None:
            return f"    v = {slow}(d, f)\n"
        if expr == "d":
            return "    v = d\n"
        return (f"    try:\n        v = {expr}\n"
                f"    except (KeyError, TypeError, IndexError):\n        v = {slow}(d, f)\n")

    def literal_test(self, kind: str, cmp: str | None, operand: Any, op: str, where: str) -> str:
        if kind == "String":
            _expect(isinstance(operand, str), where, op, "a string")
            lit = self.bind(operand)
            if cmp == "==" or operand.isascii():
                return f"type(v) is str and v {cmp} {lit}"
            u16 = self.bind(_utf16(operand))
            return f"type(v) is str and (v {cmp} {lit} if v.isascii() else _u16(v) {cmp} {u16})"
        if kind == "Numeric":
            _expect(type(operand) in _NUM, where, op, "a number")
            return f"type(v) in _NUM and v {cmp} {self.bind(operand)}"
        if kind == "Boolean":
            _expect(type(operand) is bool, where, op, "a boolean")
            return f"v is {operand!r}"
        if kind == "Timestamp":
            key = _ts_key(operand)
            _expect(key is not None, where, op, "an RFC 3339 timestamp string")
            return f"(t := _ts(v)) is not None and t {cmp} {self.bind(key)}"
        # StringMatches
        _expect(isinstance(operand, str), where, op, "a string")
        try:
            matcher = _compile_pattern(operand)
        except ValueError as e:
            raise ValueError(f"{_at(where)}{op}: {e}") from None
        if isinstance(matcher, str):
            return f"type(v) is str and v == {self.bind(matcher)}"
        return f"type(v) is str and {self.bind(matcher)}(v)"


# Tests on ``v`` (the Variable) and ``w`` (the value at the ``*Path`` operand).
_PATH_TESTS = {
    "String": "type(v) is str and type(w) is str and "
              "(v {cmp} w if v.isascii() or w.isascii() else _u16(v) {cmp} _u16(w))",
    "Numeric": "type(v) in _NUM and type(w) in _NUM and v {cmp} w",
    "Boolean": "type(v) is bool and v is w",
    "Timestamp": "(t := _ts(v)) is not None and (u := _ts(w)) is not None and t {cmp} u",
}


def _generate(name: str, body: str, env: dict[str, Any]) -> Predicate:
    src = body if body.startswith("def ") else f"def {name}(d, f):\n{body}"
    fn: Predicate = _exec(src, name, dict(env))
    return fn


def _at(where: str) -> str:
    return f"{where}: " if where else ""


def _expect(ok: bool, where: str, op: str, what: str) -> None:
    if not ok:
        raise ValueError(f"{_at(where)}the value of {op} must be {what}")


def _strict(getter: Callable[[Any, Any], Any], text: str) -> Callable[[Any, Any], Any]:
    """``getter`` with a path that selects nothing reported as AWS does (States.Runtime)."""
    cause = invalid_path_cause(text)

    def strict(d: Any, f: Any) -> Any:
        try:
            return getter(d, f)
        except PathMissing:
            raise ASLError(RUNTIME, cause) from None

    return strict


def _is_present(getter: Callable[[Any, Any], Any], expected: bool) -> Predicate:
    missing = not expected

    def is_present(d: Any, f: Any) -> bool:
        try:
            getter(d, f)
        except PathMissing:
            return missing
        return expected

    return is_present


@lru_cache(maxsize=4096)
def _ts_key_str(text: str) -> tuple[int, str] | None:
    seconds = parse_timestamp(text)
    if seconds is None:
        return None
    dot = text.find(".")
    if dot < 0:
        return (int(seconds), "")
    end = dot + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    # Whole seconds exactly (floats are exact for integers), then the fraction as its digits
    # without trailing zeros: comparing those strings compares the fractions exactly.
    whole = parse_timestamp(text[:dot] + text[end:])
    assert whole is not None
    return (int(whole), text[dot + 1:end].rstrip("0"))


def _ts_key(value: Any) -> tuple[int, str] | None:
    """An exactly comparable key for an RFC 3339 timestamp string; None for anything else."""
    if type(value) is not str:
        return None
    return _ts_key_str(value)


def _utf16(s: str) -> bytes:
    """A key ordering strings as Java's String.compareTo does (UTF-16 code units)."""
    return s.encode("utf-16-be", "surrogatepass")


def _compile_pattern(pattern: str) -> str | Callable[[str], bool]:
    """StringMatches: the literal string when there is no wildcard, else a matching function."""
    pieces: list[str] = []
    literal: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
            if nxt not in ("*", "\\"):
                raise ValueError(f"invalid escape in pattern {pattern!r}: only \\* and \\\\ are allowed")
            literal.append(nxt)
            i += 2
            continue
        if c == "*":
            pieces.append("".join(literal))
            literal = []
        else:
            literal.append(c)
        i += 1
    pieces.append("".join(literal))
    if len(pieces) == 1:
        return pieces[0]
    return _glob(pieces)


def _glob(pieces: list[str]) -> Callable[[str], bool]:
    """Matches strings made of ``pieces`` in order with anything between them. Taking the leftmost
    occurrence of each middle piece is always right when the only wildcard is ``*``, so this is
    linear, unlike a backtracking regex."""
    first, last, middle = pieces[0], pieces[-1], tuple(p for p in pieces[1:-1] if p)
    shortest = len(first) + len(last) + sum(map(len, middle))
    if not middle:
        if not first and not last:
            return _anything
        return lambda s: len(s) >= shortest and s.startswith(first) and s.endswith(last)

    def match(s: str) -> bool:
        if len(s) < shortest or not s.startswith(first) or not s.endswith(last):
            return False
        pos, end = len(first), len(s) - len(last)
        for piece in middle:
            found = s.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True

    return match


def _anything(s: str) -> bool:
    return True
