"""ASL intrinsic functions (JSONPath dialect), parsed once and compiled into closures.

``compile_intrinsic(text)`` parses an invocation such as ``States.Format('{} {}', $.a, $$.B)``
and returns ``fn(data, frame) -> value``. All parsing (string escapes, Format templates, paths,
nesting) happens at compile time; at run time each argument is a prebuilt getter and each function
a plain Python callable.

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
import uuid
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from express.asl.errors import RUNTIME, ASLError, PathMissing
from express.asl.jsonpath import compile_getter

Getter = Callable[[Any, Any], Any]

MAX_NESTING = 10
MAX_STRING_CHARS = 10_000  # Base64Encode/Base64Decode/Hash input limit
MAX_RANGE_ITEMS = 1000  # ArrayRange result limit
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

_INTRINSIC_RE = re.compile(r"States\.[A-Za-z0-9]+\s*\(.*\)", re.DOTALL)
_CALL_RE = re.compile(r"States\.([A-Za-z0-9]+)\s*\(")
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_KEYWORD_RE = re.compile(r"(null|true|false)(?=\s*[,)])")
_WS = " \t\r\n"


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


def is_intrinsic(text: Any) -> bool:
    """True when ``text`` looks like an intrinsic invocation ``States.Xxx(...)``."""
    return isinstance(text, str) and _INTRINSIC_RE.fullmatch(text.strip()) is not None


def compile_intrinsic(text: str) -> Getter:
    """Compile an intrinsic invocation to ``fn(data, frame)``; ValueError when it is malformed.

    The returned closure is stateless, so compiling the same text twice yields the same object.
    """
    if not isinstance(text, str):
        raise ValueError("an intrinsic function invocation must be a string")
    return _compile(text)


@lru_cache(maxsize=4096)
def _compile(text: str) -> Getter:
    expr = text.strip()
    parser = _Parser(expr)
    inner = parser.parse()
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


def _missing_path_detail(path: str, data: Any) -> str:
    # A context path is reported rewritten against '$' (and against the state input), as Step
    # Functions does for intrinsic arguments.
    shown = "$" + path[2:] if path.startswith("$$") else path
    return (f"The JsonPath argument for the field '{shown}' could not be found in the input "
            f"'{dumps(data)}'")


# --------------------------------------------------------------------------------------------
# parsing


class _Literal:
    """A parsed argument literal. ``template`` is set for string literals: the text split at
    unescaped ``{}`` (for States.Format), or the reason the text is not a valid template."""

    __slots__ = ("value", "parts", "template_error", "escape_error")

    def __init__(self, value: Any, parts: tuple[str, ...] | None = None,
                 template_error: str | None = None, escape_error: str | None = None) -> None:
        self.value = value
        self.parts = parts
        self.template_error = template_error
        self.escape_error = escape_error


class _Parser:
    __slots__ = ("s", "n")

    def __init__(self, s: str) -> None:
        self.s = s
        self.n = len(s)

    def fail(self, pos: int, why: str) -> ValueError:
        return ValueError(f"invalid intrinsic function '{self.s}': {why} at position {pos}")

    def ws(self, pos: int) -> int:
        s, n = self.s, self.n
        while pos < n and s[pos] in _WS:
            pos += 1
        return pos

    def parse(self) -> Getter:
        m = _CALL_RE.match(self.s, 0)
        if not m:
            raise self.fail(0, "expected 'States.<Function>('")
        getter, pos = self.call(0, 1)
        pos = self.ws(pos)
        if pos != self.n:
            raise self.fail(pos, f"unexpected text {self.s[pos:]!r} after the function call")
        return getter

    def call(self, pos: int, depth: int) -> tuple[Getter, int]:
        if depth > MAX_NESTING:
            raise self.fail(pos, f"intrinsic functions nest more than {MAX_NESTING} deep")
        m = _CALL_RE.match(self.s, pos)
        assert m is not None
        name = "States." + m.group(1)
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise self.fail(pos, f"unknown intrinsic function '{name}'")
        args: list[Getter | _Literal] = []
        pos = self.ws(m.end())
        if pos < self.n and self.s[pos] == ")":
            pos += 1
        else:
            while True:
                arg, pos = self.arg(pos, depth)
                args.append(arg)
                pos = self.ws(pos)
                if pos >= self.n:
                    raise self.fail(pos, f"missing ')' to close {name}(")
                c = self.s[pos]
                pos += 1
                if c == ")":
                    break
                if c != ",":
                    raise self.fail(pos - 1, f"expected ',' or ')' but found {c!r}")
        lo, hi, build = spec
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = (f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise ValueError(f"invalid intrinsic function '{self.s}': {name} takes {want} "
                             f"argument(s) but {len(args)} were given")
        return build(name, args), pos

    def arg(self, pos: int, depth: int) -> tuple[Getter | _Literal, int]:
        pos = self.ws(pos)
        if pos >= self.n:
            raise self.fail(pos, "missing argument")
        c = self.s[pos]
        if c == "'":
            return self.string(pos)
        if c == "$":
            return self.path(pos)
        if _CALL_RE.match(self.s, pos):
            return self.call(pos, depth + 1)
        m = _NUMBER_RE.match(self.s, pos)
        if m:
            t = m.group()
            value: Any = float(t) if any(ch in t for ch in ".eE") else int(t)
            return _Literal(value), m.end()
        m = _KEYWORD_RE.match(self.s, pos)
        if m:
            return _Literal({"null": None, "true": True, "false": False}[m.group(1)]), m.end()
        raise self.fail(pos, f"unexpected argument starting {self.s[pos:pos + 20]!r}")

    def string(self, pos: int) -> tuple[_Literal, int]:
        """A quoted literal. Escapes: \\' \\{ \\} \\\\. Any other backslash is an "open escape":
        AWS rejects a definition holding one (express.asl.validation does too); a call compiled here
        on its own fails when it runs."""
        s, n = self.s, self.n
        i = pos + 1
        value: list[str] = []  # the string's value
        parts: list[str] = []  # the Format template split at unescaped {}
        cur: list[str] = []
        template_error: str | None = None
        escape_error: str | None = None
        while True:
            if i >= n:
                raise self.fail(pos, "unterminated string literal")
            c = s[i]
            if c == "'":
                i += 1
                break
            if c == "\\":
                nxt = s[i + 1] if i + 1 < n else ""
                if nxt in ("'", "{", "}", "\\"):
                    value.append(nxt)
                    cur.append(nxt)
                    i += 2
                    continue
                escape_error = escape_error or f"Invalid escape sequence '\\{nxt}' in string literal"
                value.append(c)
                cur.append(c)
                i += 1
                continue
            if c == "{":
                if i + 1 < n and s[i + 1] == "}":
                    value.append("{}")
                    parts.append("".join(cur))
                    cur = []
                    i += 2
                    continue
                template_error = template_error or "matching '}' not found for '{'."
            elif c == "}":
                template_error = template_error or "matching '{' not found for '}'."
            value.append(c)
            cur.append(c)
            i += 1
        parts.append("".join(cur))
        return _Literal("".join(value), tuple(parts), template_error, escape_error), i

    def path(self, pos: int) -> tuple[Getter, int]:
        s, n = self.s, self.n
        i = pos
        brackets = parens = 0
        quote = ""
        while i < n:
            c = s[i]
            if quote:
                if c == "\\":
                    i += 2
                    continue
                if c == quote:
                    quote = ""
            elif c in "'\"" and brackets:
                quote = c
            elif c == "[":
                brackets += 1
            elif c == "]":
                brackets -= 1
            elif c == "(":
                parens += 1
            elif c == ")":
                if not parens and not brackets:
                    break
                parens -= 1
            elif c == "," and not parens and not brackets:
                break
            i += 1
        text = s[pos:i].rstrip()
        try:
            getter = compile_getter(text)
        except ValueError as e:
            raise self.fail(pos, f"invalid path argument '{text}' ({e})") from None
        return getter, i


# --------------------------------------------------------------------------------------------
# argument plumbing


def _const(value: Any) -> Getter:
    return lambda d, f: value


def _raiser(detail: str) -> Getter:
    def fail(d: Any, f: Any) -> Any:
        raise _Fail(detail)
    return fail


def _getter(arg: Getter | _Literal) -> Getter:
    if isinstance(arg, _Literal):
        if arg.escape_error:
            return _raiser(arg.escape_error)
        return _const(arg.value)
    return arg


def _bind(impl: Callable[..., Any], args: list[Getter | _Literal]) -> Getter:
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


def _simple(impl: Callable[..., Any]) -> Callable[[str, list[Getter | _Literal]], Getter]:
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
# JSON text as AWS (Jackson) writes it


_NEEDS_JAVA_FLOATS = re.compile(rb"(?:^|[\[:,])-?(?:\d{8,}\.|0\.000|\d+(?:\.\d+)?e)")


def dumps(value: Any) -> str:
    """Compact JSON text. Floats outside [1e-3, 1e7) are written the Java way (``1.0E7``)."""
    try:
        out = orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits
        return _dumps_slow(value)
    if _NEEDS_JAVA_FLOATS.search(out):  # a false positive inside a string only costs time
        return _dumps_slow(value)
    return out.decode()


def _dumps_slow(value: Any) -> str:
    t = type(value)
    if t is str:
        return orjson.dumps(value).decode()
    if t is dict:
        return "{" + ",".join(f"{_dumps_slow(str(k))}:{_dumps_slow(v)}"
                              for k, v in value.items()) + "}"
    if t is list:
        return "[" + ",".join(_dumps_slow(v) for v in value) + "]"
    if t is float:
        return java_double(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def java_double(x: float) -> str:
    """``Double.toString(x)``: plain notation in [1e-3, 1e7), otherwise ``d.dddE±n``."""
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    a = abs(x)
    sign = "-" if x < 0 else ""
    if 1e-3 <= a < 1e7:
        r = repr(a)
        if "e" in r or "E" in r:  # not expected in this range, but be safe
            r = format(Decimal(r), "f")
        if "." not in r:
            r += ".0"
        return sign + r
    _, digits, exp = Decimal(repr(a)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exp, int)
    e10 = len(digits) - 1 + exp
    return f"{sign}{ds[0]}.{ds[1:] or '0'}E{e10}"


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


def _build_format(name: str, args: list[Getter | _Literal]) -> Getter:
    tpl, rest = args[0], [_getter(a) for a in args[1:]]
    if isinstance(tpl, _Literal) and type(tpl.value) is str and not tpl.escape_error:
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


def _build_math_random(name: str, args: list[Getter | _Literal]) -> Getter:
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
    return str(uuid.uuid4())


# name -> (min args, max args or None, builder(name, args) -> getter)
_FUNCTIONS: dict[str, tuple[int, int | None, Callable[[str, list[Any]], Getter]]] = {
    "States.Format": (1, None, _build_format),
    "States.StringToJson": (1, 1, _simple(_string_to_json)),
    "States.JsonToString": (1, 1, _simple(_json_to_string)),
    "States.Array": (0, None, _simple(_array)),
    "States.ArrayPartition": (2, 2, _simple(_array_partition)),
    "States.ArrayContains": (2, 2, _simple(_array_contains)),
    "States.ArrayRange": (3, 3, _simple(_array_range)),
    "States.ArrayGetItem": (2, 2, _simple(_array_get_item)),
    "States.ArrayLength": (1, 1, _simple(_array_length)),
    "States.ArrayUnique": (1, 1, _simple(_array_unique)),
    "States.Base64Encode": (1, 1, _simple(_base64_encode)),
    "States.Base64Decode": (1, 1, _simple(_base64_decode)),
    "States.Hash": (2, 2, _simple(_hash)),
    "States.JsonMerge": (3, 3, _simple(_json_merge)),
    "States.MathRandom": (2, 3, _build_math_random),
    "States.MathAdd": (2, 2, _simple(_math_add)),
    "States.StringSplit": (2, 2, _simple(_string_split)),
    "States.UUID": (0, 0, _simple(_uuid)),
}

FUNCTION_NAMES = frozenset(_FUNCTIONS)
