"""JSONata (``"QueryLanguage": "JSONata"``) templates compiled once, evaluated many times.

Expressions run on ``jsonatapy`` (a Rust JSONata engine). A field value is a *template*: any JSON
whose strings of the form ``"{% expr %}"`` are expressions and everything else is literal.
:func:`compile_template` parses every expression once and turns the template into one generated
Python function whose body is a dict/list literal, so each call builds fresh containers.

Per call the work is kept small:

* the bindings hold only what the expression names: ``$states`` keys it reads (and, when every
  use is ``$states.input.<name>``, only those top-level fields of the input, so a large input is
  not converted for an expression that reads one field) and the workflow variables it mentions;
* a plain path (``$states.input.a.b``, ``$var.x``) over objects is walked in Python without the
  library; anything else (arrays on the way, missing variables, ...) goes to the library.
  Like the JSONPath getters, such a path returns the selected value itself, not a copy: data is
  never mutated in place by the engine.

AWS differences handled here: the functions AWS adds (``$partition``, ``$range``, ``$hash``,
``$random([seed])``, ``$uuid``, ``$parse``), ``$eval`` removed, an expression at a template
position that yields nothing (undefined) or a function fails with ``States.QueryEvaluationError``
naming the field path (``Output/result``, ``Items[1]``), library errors are worded as AWS does
(``... threw an error during evaluation. T2002: ...``).
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from typing import Any

import jsonatapy

from express.asl.errors import QUERY_EVALUATION_ERROR, ASLError
from express.asl.query_language import is_jsonata
from express.asl.uuids import uuid4

Evaluator = Callable[[dict[str, Any], Any], Any]
_Expr = Callable[[dict[str, Any], dict[str, Any]], Any]

_UNDEF: Any = object()
_ALL: Any = None  # a $states key read as a whole (not only through `.name` fields)
_STATES_KEYS = ("input", "context", "result", "errorOutput")


def expression_text(s: str) -> str:
    """The expression inside ``{% ... %}`` as AWS quotes it in error causes."""
    return s[2:-2].strip()


def compile_template(value: Any, field: str) -> Evaluator:
    """Compile a field value; return ``ev(states, frame)`` giving its value.

    Raises ValueError for an expression that does not parse.
    """
    if is_jsonata(value):
        expr = _compile_expression(value, field)
        return lambda states, frame: expr(states, frame.vars)
    exprs: list[_Expr] = []
    src = _source(value, field, exprs)
    if not exprs and not isinstance(value, (dict, list)):
        return lambda states, frame: value
    namespace: dict[str, Any] = {f"_e{i}": e for i, e in enumerate(exprs)}
    try:
        code = compile(f"def _t(s, f):\n    v = f.vars\n    return {src}\n", f"<jsonata {field}>", "exec")
        exec(code, namespace)
    except (SyntaxError, RecursionError, MemoryError):  # absurdly deep templates
        builder = _builder(value, field)
        return lambda states, frame: builder(states, frame.vars)
    # popped, not read: the function must not sit in its own globals, or the cycle makes the
    # garbage collector free the (thread-bound) JSONata objects on whatever thread it runs on
    fn: Evaluator = namespace.pop("_t")
    return fn


# --- templates ---------------------------------------------------------------------------------

def _source(value: Any, path: str, exprs: list[_Expr]) -> str:
    """Python source building ``value``: literals inline, expressions as ``_eN(s, v)`` calls."""
    if type(value) is dict:
        items = ", ".join(f"{k!r}: {_source(v, f'{path}/{k}', exprs)}" for k, v in value.items())
        return "{" + items + "}"
    if type(value) is list:
        return "[" + ", ".join(_source(v, f"{path}[{i}]", exprs) for i, v in enumerate(value)) + "]"
    if is_jsonata(value):
        exprs.append(_compile_expression(value, path))
        return f"_e{len(exprs) - 1}(s, v)"
    if type(value) is float and not math.isfinite(value):
        raise ValueError(f"{path}: non-finite number {value!r} is not JSON")
    if value is None or type(value) in (str, int, float, bool):
        return repr(value)
    raise ValueError(f"{path}: {type(value).__name__} is not a JSON value")


def _builder(value: Any, path: str) -> _Expr:
    """Slow, recursion-based equivalent of :func:`_source` (never normally used)."""
    if type(value) is dict:
        parts = [(k, _builder(v, f"{path}/{k}")) for k, v in value.items()]
        return lambda s, v: {k: b(s, v) for k, b in parts}
    if type(value) is list:
        items = [_builder(x, f"{path}[{i}]") for i, x in enumerate(value)]
        return lambda s, v: [b(s, v) for b in items]
    if is_jsonata(value):
        return _compile_expression(value, path)
    return lambda s, v: value


# --- one expression ----------------------------------------------------------------------------

_VAR = re.compile(r"\$(\w+)")
_STATES_REF = re.compile(r"\$states(?!\w)")
_STATES_KEY = re.compile(r"\$states\.(input|context|result|errorOutput)(?!\w)")
_FIELD = re.compile(r"\.([^\W\d]\w*)(?![\w`])")
_SIMPLE_PATH = re.compile(r"\$([^\W\d]\w*)((?:\.[^\W\d]\w*)*)")
_CODE = re.compile(r"^(?:Parse error: )?([A-Z]\d{4}): ")
_HOST_ERROR = re.compile(r"^host function raised (\w+): ", re.S)


def _compile_expression(text: str, path: str) -> _Expr:
    """``(states, vars) -> value`` for one ``{% ... %}`` string at field path ``path``."""
    body = expression_text(text)
    if not body:
        raise ValueError(f"The JSONata expression specified for the field '{path}' is empty")
    lib = _LibraryExpression(body, path)
    m = _SIMPLE_PATH.fullmatch(body)
    if m is None:
        return lib
    root, keys = m.group(1), tuple(m.group(2).split(".")[1:])
    slow = lib.__call__
    if root == "states":
        if not keys or keys[0] not in _STATES_KEYS:
            return lib
        skey, keys = keys[0], keys[1:]

        def states_path(states: dict[str, Any], vars: dict[str, Any]) -> Any:
            d = states.get(skey, _UNDEF)
            return lib.undefined() if d is _UNDEF else _walk(d, keys, lib, states, vars)

        return states_path

    def var_path(states: dict[str, Any], vars: dict[str, Any]) -> Any:
        d = vars.get(root, _UNDEF)
        if d is _UNDEF:  # maybe a built-in function: let the library decide
            return slow(states, vars)
        return _walk(d, keys, lib, states, vars)

    return var_path


def _walk(d: Any, keys: tuple[str, ...], lib: Any, states: dict[str, Any], vars: dict[str, Any]) -> Any:
    """Follow object keys in plain Python; arrays (JSONata maps over them) go to the library."""
    for k in keys:
        if type(d) is dict:
            d = d.get(k, _UNDEF)
            if d is _UNDEF:
                return lib.undefined()
        elif type(d) is list:
            return lib(states, vars)
        else:
            return lib.undefined()
    return _number(d) if type(d) is float else d


def _number(x: float) -> Any:
    """A float as JSONata prints it: integral values as int, non-finite as null."""
    if x.is_integer():
        return int(x)
    return x if math.isfinite(x) else None


class _LibraryExpression:
    """One expression evaluated by jsonatapy, with the bindings it needs and nothing more."""

    __slots__ = ("body", "path", "_eval", "_kinds", "_states", "_vars")

    def __init__(self, body: str, path: str) -> None:
        self.body = body
        self.path = path
        self._eval = _library_compile(body, path)._expr.evaluate
        self._kinds: Any = None  # `$type((body))`, compiled on the first null-or-nothing result
        self._vars = tuple(sorted({n for n in _VAR.findall(body) if n != "states"}))
        self._states = _states_usage(body)

    def bindings(self, states: dict[str, Any], vars: dict[str, Any]) -> dict[str, Any]:
        b: dict[str, Any] = {}
        for name in self._vars:
            if name in vars:
                b[name] = vars[name]
        usage = self._states
        if usage is _ALL:
            b["states"] = states
        elif usage:
            st: dict[str, Any] = {}
            for key, fields in usage:
                if key in states:
                    d = states[key]
                    if fields is _ALL or type(d) is not dict:
                        st[key] = d
                    else:
                        st[key] = {f: d[f] for f in fields if f in d}
            b["states"] = st
        return b

    def __call__(self, states: dict[str, Any], vars: dict[str, Any]) -> Any:
        b = self.bindings(states, vars)
        try:
            r = self._eval(None, b, None, None, None)
        except ValueError as e:
            raise self._error(e) from None
        except OverflowError:  # an integer beyond 64 bits somewhere in the bindings
            b = _floats_for_big_ints(b)
            try:
                r = self._eval(None, b, None, None, None)
            except ValueError as e:
                raise self._error(e) from None
        if r is None:
            return self._null_or_fail(b)
        if type(r) is float and not math.isfinite(r):
            return None
        return r

    def undefined(self) -> Any:
        raise ASLError(QUERY_EVALUATION_ERROR, f"The JSONata expression '{self.body}' specified for "
                                               f"the field '{self.path}' returned nothing (undefined).")

    def _null_or_fail(self, b: dict[str, Any]) -> Any:
        """The library answers None for null, nothing and functions alike: ask ``$type``."""
        if self._kinds is None:
            self._kinds = _library_compile(f"$type((\n{self.body}\n))", self.path)._expr.evaluate
        try:
            kind = self._kinds(None, b, None, None, None)
        except ValueError as e:
            raise self._error(e) from None
        if kind == "null":
            return None
        if kind is None:
            self.undefined()
        raise ASLError(QUERY_EVALUATION_ERROR, f"The JSONata expression '{self.body}' specified for "
                                               f"the field '{self.path}' returned an unsupported result type.")

    def _error(self, e: Exception) -> ASLError:
        msg = str(e)
        host = _HOST_ERROR.match(msg)
        if host:
            msg = msg[host.end():]
        sep = ". " if _CODE.match(msg) else ": "
        return ASLError(QUERY_EVALUATION_ERROR, f"The JSONata expression '{self.body}' specified for "
                                                f"the field '{self.path}' threw an error during evaluation{sep}{msg}")


def _states_usage(body: str) -> Any:
    """Which parts of ``$states`` the expression can read.

    ``_ALL`` for the whole object; otherwise a tuple of ``(key, fields)`` where ``fields`` is
    ``_ALL`` or the tuple of top-level field names the expression reads (``$states.input.a``).
    The scan is textual and conservative: anything it does not recognise means "all".
    """
    refs = [m.start() for m in _STATES_REF.finditer(body)]
    if not refs:
        return ()
    usage: dict[str, Any] = {}
    for at in refs:
        m = _STATES_KEY.match(body, at)
        if m is None:
            return _ALL
        key = m.group(1)
        f = _FIELD.match(body, m.end())
        if f is None:
            usage[key] = _ALL
        elif key not in usage:
            usage[key] = {f.group(1)}
        elif usage[key] is not _ALL:
            usage[key].add(f.group(1))
    return tuple((k, v if v is _ALL else tuple(sorted(v))) for k, v in usage.items())


def _floats_for_big_ints(x: Any) -> Any:
    if type(x) is dict:
        return {k: _floats_for_big_ints(v) for k, v in x.items()}
    if type(x) is list:
        return [_floats_for_big_ints(v) for v in x]
    if type(x) is int and not -(2**63) <= x < 2**63:
        return float(x)
    return x


# --- the library, with AWS's function set ------------------------------------------------------

class JsonataFunctionError(Exception):
    """Raised by the AWS-added functions; its message becomes the error cause's tail."""


def _library_compile(body: str, path: str) -> Any:
    try:
        compiled = jsonatapy.compile(body)
    except ValueError as e:
        detail = _CODE.sub("", str(e))
        raise ValueError(f"The JSONata expression '{body}' specified for the field '{path}' "
                         f"is not valid: {detail}") from None
    for name, fn in _FUNCTIONS.items():
        if "$" + name in body:
            compiled.register(name, fn)
    for name, fn in _OVERRIDES.items():
        if "$" + name in body:
            compiled.register_override(name, fn)
    if _NOW_WITH_ARGS.search(body):  # the library's $now() takes no picture/timezone
        compiled.register_override("now", _now)
    return compiled


def _signature_error(fn: str) -> JsonataFunctionError:
    return JsonataFunctionError(f'T0410: Argument 1 of function "{fn}" does not match function signature')


def _is_number(x: Any) -> bool:
    return type(x) in (int, float)


def _partition(*args: Any) -> Any:
    if len(args) != 2:
        raise _signature_error("partition")
    array, size = args
    if array is None:
        return None
    if type(array) is not list:
        array = [array]
    if not _is_number(size) or size != int(size) or size < 1:
        raise JsonataFunctionError(f"The chunk size argument of function \"partition\" must be a "
                                   f"positive integer, but was: {json.dumps(size)}")
    n = int(size)
    return [array[i:i + n] for i in range(0, len(array), n)]


def _range(*args: Any) -> Any:
    if len(args) not in (2, 3) or not all(_is_number(a) for a in args):
        raise _signature_error("range")
    start, end = args[0], args[1]
    step = args[2] if len(args) == 3 else 1
    if step == 0:
        raise JsonataFunctionError('The step argument of function "range" must not be zero')
    out = []
    x = start
    while (x <= end) if step > 0 else (x >= end):
        out.append(x)
        if len(out) > 10_000_000:
            raise JsonataFunctionError('The function "range" would produce too many items')
        x += step
    return out


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(*args: Any) -> Any:
    if len(args) != 2:
        raise _signature_error("hash")
    data, alg = args
    if data is None:
        return None
    if type(data) is not str:
        data = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    name = _HASHES.get(alg) if type(alg) is str else None
    if name is None:
        raise JsonataFunctionError(f"The hashing algorithm '{alg}' is not supported. Supported "
                                   f"algorithms: {', '.join(_HASHES)}")
    return hashlib.new(name, data.encode()).hexdigest()


def _random(*args: Any) -> Any:
    if not args or args[0] is None:
        return random.random()
    seed = args[0]
    if len(args) > 1 or not _is_number(seed) or type(seed) is bool:
        raise _signature_error("random")
    return random.Random(seed).random()


def _uuid(*args: Any) -> Any:
    if args:
        raise _signature_error("uuid")
    return uuid4()


def _parse(*args: Any) -> Any:
    if len(args) != 1:
        raise _signature_error("parse")
    text = args[0]
    if text is None:
        return None
    if type(text) is not str:
        raise _signature_error("parse")
    try:
        return json.loads(text)
    except ValueError as e:
        raise JsonataFunctionError(f"Unable to parse the JSON string: {e}") from None


_NOW_WITH_ARGS = re.compile(r"\$now\(\s*[^)\s]")
_FROM_MILLIS = [jsonatapy.compile(e)._expr.evaluate
                for e in ("$fromMillis($m)", "$fromMillis($m, $p)", "$fromMillis($m, $p, $t)")]


def _now(*args: Any) -> Any:
    """``$now([picture [, timezone]])`` via the library's ``$fromMillis``."""
    args = args[:2]
    while args and args[-1] is None:
        args = args[:-1]
    b = {"m": time.time_ns() // 1_000_000, "p": args[0] if args else None, "t": args[1] if len(args) > 1 else None}
    return _FROM_MILLIS[len(args)](None, b, None, None, None)


def _eval(*args: Any) -> Any:
    raise JsonataFunctionError("T1006: Attempted to invoke a non-function")


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "partition": _partition, "range": _range, "hash": _hash, "uuid": _uuid, "parse": _parse,
}
_OVERRIDES: dict[str, Callable[..., Any]] = {"random": _random, "eval": _eval}
