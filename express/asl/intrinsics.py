"""ASL intrinsic functions (JSONPath dialect), compiled into closures.

``compile_intrinsic(text)`` compiles an invocation such as ``States.Format('{} {}', $.a, $$.B)``
(parsed by :mod:`express.asl.intrinsic_parser`) and returns ``fn(data, frame) -> value``. All
parsing (string escapes, Format templates, paths, nesting) happens at compile time; at run time
each argument is a prebuilt getter and each function a plain Python callable.

Failures, as AWS reports them (error ``States.Runtime``; the engine prefixes the cause with
``An error occurred while executing the state '<name>' (entered at the event id #<n>). ``):

* a path argument that selects nothing::

      The function '<expression as written>' had the following error: The JsonPath argument for
      the field '<path>' could not be found in the input '<state input, compact JSON>'

* an argument a function cannot take (wrong type, out of range, ...)::

      The function '<expression as written>' had the following error: Invalid arguments in States.X

Syntax errors, unknown functions, wrong argument counts and nesting deeper than 10 are found at
compile time and raise :class:`ValueError`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from express.asl.errors import RUNTIME, ASLError, PathMissing
from express.asl.intrinsic_parser import (
    WHITESPACE,
    Call,
    Literal,
    PathArgument,
    is_intrinsic,
    parse_intrinsic,
)
from express.asl.java_json import dumps, java_double
from express.asl.jsonpath import compile_getter
from express.asl.uuids import uuid4

# is_intrinsic, dumps and java_double are also this module's API (from the modules that define them)
__all__ = ["JavaRandom", "compile_intrinsic", "dumps", "is_intrinsic", "java_double"]

Getter = Callable[[Any, Any], Any]
Argument = Getter | Literal

MAX_STRING_CHARS = 10_000  # Base64Encode/Base64Decode/Hash input limit
MAX_RANGE_ITEMS = 1000  # ArrayRange result limit
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class _Fail(Exception):
    """A function refused its arguments; the top-level closure words the cause."""

    __slots__ = ("detail",)

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _invalid(name: str) -> _Fail:
    return _Fail(f"Invalid arguments in {name}")


# --------------------------------------------------------------------------------------------
# public API


def compile_intrinsic(text: str) -> Getter:
    """Compile an intrinsic invocation to ``fn(data, frame)``; ValueError when it is malformed.

    The returned closure is stateless, so compiling the same text twice yields the same object.
    """
    if not isinstance(text, str):
        raise ValueError("an intrinsic function invocation must be a string")
    return _compile(text)


@lru_cache(maxsize=4096)
def _compile(text: str) -> Getter:
    expr = text.strip(WHITESPACE)
    try:
        inner = _build(parse_intrinsic(text))
    except ValueError as e:
        raise ValueError(f"invalid intrinsic function '{expr}': {e}") from None
    prefix = f"The function '{expr}' had the following error: "

    def intrinsic(d: Any, f: Any) -> Any:
        try:
            return inner(d, f)
        except _Fail as e:
            raise ASLError(RUNTIME, prefix + e.detail) from None
        except PathMissing as e:
            raise ASLError(RUNTIME, prefix + _missing_path_detail(e.path, d)) from None

    intrinsic.__qualname__ = f"intrinsic<{expr}>"
    return intrinsic


def _build(call: Call) -> Getter:
    args: list[Argument] = []
    for arg in call.args:
        if isinstance(arg, Call):
            args.append(_build(arg))
        elif isinstance(arg, PathArgument):
            try:
                args.append(compile_getter(arg.text))
            except ValueError as e:
                raise ValueError(f"invalid path argument '{arg.text}' ({e}) at position "
                                 f"{arg.offset}") from None
        else:
            args.append(arg)
    return _BUILDERS[call.name](call.name, args)


def _missing_path_detail(path: str, data: Any) -> str:
    # A context path is reported rewritten against '$' (and against the state input), as Step
    # Functions does for intrinsic arguments.
    shown = "$" + path[2:] if path.startswith("$$") else path
    return (f"The JsonPath argument for the field '{shown}' could not be found in the input "
            f"'{dumps(data)}'")


# --------------------------------------------------------------------------------------------
# argument plumbing


def _const(value: Any) -> Getter:
    return lambda d, f: value


def _raiser(detail: str) -> Getter:
    def fail(d: Any, f: Any) -> Any:
        raise _Fail(detail)
    return fail


def _getter(arg: Argument) -> Getter:
    if isinstance(arg, Literal):
        if arg.escape_error:
            return _raiser(arg.escape_error)
        return _const(arg.value)
    return arg


def _bind(impl: Callable[..., Any], args: list[Argument]) -> Getter:
    """``impl`` applied to the values of ``args``, with no per-call list building for <= 3 args."""
    gs = [_getter(a) for a in args]
    if not gs:
        return lambda d, f: impl()
    if len(gs) == 1:
        g0 = gs[0]
        return lambda d, f: impl(g0(d, f))
    if len(gs) == 2:
        g0, g1 = gs
        return lambda d, f: impl(g0(d, f), g1(d, f))
    if len(gs) == 3:
        g0, g1, g2 = gs
        return lambda d, f: impl(g0(d, f), g1(d, f), g2(d, f))
    return lambda d, f: impl(*[g(d, f) for g in gs])


def _simple(impl: Callable[..., Any]) -> Callable[[str, list[Argument]], Getter]:
    return lambda name, args: _bind(impl, args)


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is float


def _truncate(name: str, v: Any) -> int:
    """A numeric argument as an integer; AWS drops the fraction (toward zero)."""
    t = type(v)
    if t is int:
        return v
    if t is float:
        return int(v)
    raise _invalid(name)


def _java_round(x: float) -> int:
    """Java's Math.round: nearest integer, halves toward positive infinity."""
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


# --------------------------------------------------------------------------------------------
# values as AWS (Java) shows them


def _java_string(v: Any) -> str:
    """How AWS renders a value into States.Format: Java's String.valueOf of the plain value."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if t is float:
        return java_double(v)
    if t is bool:
        return "true" if v else "false"
    if v is None:
        return "null"
    if t is dict:
        return "{" + ", ".join(f"{k}={_java_string(x)}" for k, x in v.items()) + "}"
    if t is list:
        return "[" + ", ".join(_java_string(x) for x in v) + "]"
    return str(v)


def _key(v: Any) -> Any:
    """A hashable identity with JSON (Jackson) equality: 1, 1.0 and true are all different;
    objects compare regardless of key order."""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return ("b", v)
    if t is int:
        return ("i", v)
    if t is float:
        return ("f", v)
    if v is None:
        return ("n",)
    if t is list:
        return ("l", tuple(_key(x) for x in v))
    if t is dict:
        return ("d", frozenset((k, _key(x)) for k, x in v.items()))
    return ("?", repr(v))


# --------------------------------------------------------------------------------------------
# States.Format


@lru_cache(maxsize=1024)
def _runtime_template(tpl: str) -> tuple[tuple[str, ...], str | None]:
    """A template that came from a path: split at ``{}`` (no escape processing)."""
    parts = tuple(tpl.split("{}"))
    error = None
    for p in parts:
        if "{" in p:
            error = "matching '}' not found for '{'."
            break
        if "}" in p:
            error = "matching '{' not found for '}'."
            break
    return parts, error


def _render(name: str, parts: tuple[str, ...], values: list[Any] | tuple[Any, ...]) -> str:
    if len(values) != len(parts) - 1:
        raise _Fail(f"Invalid arguments in {name}: number of arguments do not match the "
                    "occurrences of {}.")
    out = [parts[0]]
    for v, p in zip(values, parts[1:], strict=True):
        out.append(v if type(v) is str else _java_string(v))
        out.append(p)
    return "".join(out)


def _build_format(name: str, args: list[Argument]) -> Getter:
    tpl, rest = args[0], [_getter(a) for a in args[1:]]
    if isinstance(tpl, Literal) and type(tpl.value) is str and not tpl.escape_error:
        parts = tpl.parts or (tpl.value,)
        if tpl.template_error:
            return _raiser(f"Invalid template in {name}: {tpl.template_error}")
        if len(rest) != len(parts) - 1:
            return _raiser(f"Invalid arguments in {name}: number of arguments do not match the "
                           "occurrences of {}.")
        if not rest:
            text = parts[0]
            return lambda d, f: text
        if len(rest) == 1:
            p0, p1 = parts
            g0 = rest[0]

            def format1(d: Any, f: Any) -> str:
                v = g0(d, f)
                return p0 + (v if type(v) is str else _java_string(v)) + p1
            return format1
        return lambda d, f: _render(name, parts, [g(d, f) for g in rest])

    tg = _getter(tpl)

    def format_dynamic(d: Any, f: Any) -> str:
        template = tg(d, f)
        if type(template) is not str:
            raise _invalid(name)
        parts, error = _runtime_template(template)
        if error:
            raise _Fail(f"Invalid template in {name}: {error}")
        return _render(name, parts, [g(d, f) for g in rest])
    return format_dynamic


# --------------------------------------------------------------------------------------------
# the other functions; each takes evaluated arguments and raises _Fail


_LONG_DIGITS = re.compile(r"\d{19}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _string_to_json(s: Any) -> Any:
    if type(s) is not str:
        raise _invalid("States.StringToJson")
    if not s.strip():
        return None
    if _LONG_DIGITS.search(s) is None:  # orjson turns integers beyond 64 bits into floats
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(s, parse_constant=_reject_constant)  # e.g. integers beyond 64 bits
    except ValueError:
        raise _invalid("States.StringToJson") from None


def _json_to_string(v: Any) -> str:
    return dumps(v)


def _array(*values: Any) -> list[Any]:
    return list(values)


def _array_partition(arr: Any, size: Any) -> list[list[Any]]:
    name = "States.ArrayPartition"
    if type(arr) is not list:
        raise _invalid(name)
    n = _truncate(name, size)
    if n <= 0:
        raise _invalid(name)
    return [arr[i:i + n] for i in range(0, len(arr), n)]


def _array_contains(arr: Any, value: Any) -> bool:
    if type(arr) is not list:
        raise _invalid("States.ArrayContains")
    if type(value) is str:
        return value in arr  # str == non-str is always False
    k = _key(value)
    return any(_key(x) == k for x in arr)


def _array_range(first: Any, last: Any, step: Any) -> list[int]:
    name = "States.ArrayRange"
    a, b, s = _truncate(name, first), _truncate(name, last), _truncate(name, step)
    if s == 0:
        raise _invalid(name)
    count = (b - a) // s + 1 if (b - a) * s >= 0 else 0
    if count > MAX_RANGE_ITEMS:
        raise _invalid(name)
    return list(range(a, b + (1 if s > 0 else -1), s))


def _array_get_item(arr: Any, index: Any) -> Any:
    name = "States.ArrayGetItem"
    if type(arr) is not list:
        raise _invalid(name)
    i = _truncate(name, index)
    if not arr:
        return None  # observed on AWS: any index into an empty array gives null
    if i < 0 or i >= len(arr):
        raise _invalid(name)
    return arr[i]


def _array_length(arr: Any) -> int:
    if type(arr) is not list:
        raise _invalid("States.ArrayLength")
    return len(arr)


def _array_unique(arr: Any) -> list[Any]:
    if type(arr) is not list:
        raise _invalid("States.ArrayUnique")
    seen: set[Any] = set()
    out = []
    for x in arr:
        k = _key(x)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


def _base64_encode(s: Any) -> str:
    name = "States.Base64Encode"
    if type(s) is not str or len(s) > MAX_STRING_CHARS:
        raise _invalid(name)
    return base64.b64encode(s.encode("utf-8", "surrogatepass")).decode("ascii")


def _base64_decode(s: Any) -> str:
    name = "States.Base64Decode"
    if type(s) is not str or len(s) > MAX_STRING_CHARS:
        raise _invalid(name)
    if "=" not in s and len(s) % 4:
        s += "=" * (-len(s) % 4)  # Java's decoder does not require padding
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(name) from None
    return raw.decode("utf-8", "replace")


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384",
           "SHA-512": "sha512"}


def _hash(data: Any, algorithm: Any) -> str:
    name = "States.Hash"
    alg = _HASHES.get(algorithm) if type(algorithm) is str else None
    if alg is None:
        raise _invalid(name)
    text = data if type(data) is str else dumps(data)
    if len(text) > MAX_STRING_CHARS:
        raise _invalid(name)
    return hashlib.new(alg, text.encode("utf-8", "surrogatepass")).hexdigest()


def _json_merge(a: Any, b: Any, deep: Any) -> dict[str, Any]:
    if type(a) is not dict or type(b) is not dict or deep is not False:
        raise _invalid("States.JsonMerge")  # AWS only merges shallowly: deep must be false
    merged = a.copy()
    merged.update(b)
    return merged


class JavaRandom:
    """java.util.Random, so a seeded States.MathRandom is reproducible the way Java's is."""

    __slots__ = ("seed",)
    _MULT, _ADD, _MASK = 0x5DEECE66D, 0xB, (1 << 48) - 1

    def __init__(self, seed: int) -> None:
        self.seed = (seed ^ self._MULT) & self._MASK

    def next(self, bits: int) -> int:
        self.seed = (self.seed * self._MULT + self._ADD) & self._MASK
        r = self.seed >> (48 - bits)
        return r - (1 << 32) if r >= 1 << 31 else r

    def next_int(self, bound: int) -> int:
        r = self.next(31)
        m = bound - 1
        if bound & m == 0:
            return (bound * r) >> 31
        u = r
        while True:
            r = u % bound
            if u - r + m < 1 << 31:  # no int overflow in Java's check
                return r
            u = self.next(31)


def _math_random(start: Any, end: Any, seed: Any = None, *, seeded: bool = False) -> int:
    name = "States.MathRandom"
    lo, hi = _truncate(name, start), _truncate(name, end)
    if lo >= hi:
        raise _invalid(name)
    if seeded:
        s = _truncate(name, seed)
        span = hi - lo
        if span <= INT32_MAX:
            return lo + JavaRandom(s).next_int(span)
        return lo + random.Random(s).randrange(span)
    return random.randrange(lo, hi)


def _build_math_random(name: str, args: list[Argument]) -> Getter:
    if len(args) == 3:
        return _bind(lambda a, b, s: _math_random(a, b, s, seeded=True), args)
    return _bind(_math_random, args)


def _math_add(a: Any, b: Any) -> int:
    name = "States.MathAdd"
    if not _is_number(a) or not _is_number(b):
        raise _invalid(name)
    x = a if type(a) is int else _java_round(a)
    y = b if type(b) is int else _java_round(b)
    total = x + y
    if not (INT32_MIN <= x <= INT32_MAX and INT32_MIN <= y <= INT32_MAX
            and INT32_MIN <= total <= INT32_MAX):
        raise _invalid(name)
    return total


_SPLITTERS: dict[str, re.Pattern[str]] = {}


def _string_split(s: Any, delimiters: Any) -> list[str]:
    """Java StringTokenizer semantics: every character of ``delimiters`` separates tokens and
    empty tokens are dropped."""
    if type(s) is not str or type(delimiters) is not str:
        raise _invalid("States.StringSplit")
    if len(delimiters) == 1:
        return [t for t in s.split(delimiters) if t]
    if not delimiters:
        return [s] if s else []
    pat = _SPLITTERS.get(delimiters)
    if pat is None:
        if len(_SPLITTERS) > 512:
            _SPLITTERS.clear()
        pat = _SPLITTERS[delimiters] = re.compile(
            "[" + "".join(re.escape(c) for c in delimiters) + "]")
    return [t for t in pat.split(s) if t]


def _uuid() -> str:
    return uuid4()


# name -> builder(name, arguments) -> getter; the parser has already checked the argument count
_BUILDERS: dict[str, Callable[[str, list[Argument]], Getter]] = {
    "States.Format": _build_format,
    "States.StringToJson": _simple(_string_to_json),
    "States.JsonToString": _simple(_json_to_string),
    "States.Array": _simple(_array),
    "States.ArrayPartition": _simple(_array_partition),
    "States.ArrayContains": _simple(_array_contains),
    "States.ArrayRange": _simple(_array_range),
    "States.ArrayGetItem": _simple(_array_get_item),
    "States.ArrayLength": _simple(_array_length),
    "States.ArrayUnique": _simple(_array_unique),
    "States.Base64Encode": _simple(_base64_encode),
    "States.Base64Decode": _simple(_base64_decode),
    "States.Hash": _simple(_hash),
    "States.JsonMerge": _simple(_json_merge),
    "States.MathRandom": _build_math_random,
    "States.MathAdd": _simple(_math_add),
    "States.StringSplit": _simple(_string_split),
    "States.UUID": _simple(_uuid),
}
