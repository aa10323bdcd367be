"""JSON text as AWS (Java, Jackson) writes it: compact, with Java's notation for doubles.

Used where AWS shows JSON it wrote itself: States.JsonToString, States.Hash of a non-string, the
state input quoted in an intrinsic function's error cause.
"""
from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

import orjson

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
