"""JSONPath compiled to Python closures (Jayway semantics, as AWS evaluates them).

A path is parsed once. Simple paths (``$``, ``.name``, ``['name']``, ``[3]``) become generated Python
expressions (``d['a']['b']``) that templates inline into their own generated code; anything else
(wildcards, filters, slices, deep scan, unions) is evaluated by jsonpath-ng and, like Jayway's
indefinite paths, yields a list of matches.

Getters take ``(data, frame)``: ``frame.vars`` holds workflow variables (``$name``), and
``frame.context_object()`` returns the context object (``$$``).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from express.asl.errors import PathMissing

Getter = Callable[[Any, Any], Any]

_NAME = r"[^\s.\[\]()'\"$@,:?*=!<>&|]+"
_SEG = re.compile(
    r"\.(?P<name>" + _NAME + r")"
    r"|\[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]"
    r"|\[\s*\"(?P<dq>(?:[^\"\\]|\\.)*)\"\s*\]"
    r"|\[\s*(?P<idx>-?\d+)\s*\]"
    r"|\.\[\s*'(?P<dsq>(?:[^'\\]|\\.)*)'\s*\]"
)
_VAR_ROOT = re.compile(r"\$(?P<var>[A-Za-z_][\w]*)")

Segment = str | int


class Path:
    """A parsed path: its root (``$``, ``$$`` or a variable) and either simple segments or a
    jsonpath-ng expression for indefinite paths."""

    __slots__ = ("text", "root", "var", "segments", "complex", "definite")

    def __init__(self, text: str) -> None:
        self.text = text
        self.var: str | None = None
        self.complex: Any = None
        if text.startswith("$$"):
            self.root, rest = "context", text[2:]
        elif m := _VAR_ROOT.match(text):
            self.root, self.var, rest = "var", m.group("var"), text[m.end():]
        elif text.startswith("$"):
            self.root, rest = "input", text[1:]
        else:
            raise ValueError(f"path must start with '$': {text!r}")
        segments = _parse_simple(rest)
        if segments is None:
            self.segments: tuple[Segment, ...] = ()
            self.complex = _parse_complex(rest)
            self.definite = False
        else:
            self.segments = segments
            self.definite = True

    @property
    def is_reference(self) -> bool:
        """A Reference Path selects a single node (no wildcards, filters, slices or unions)."""
        return self.definite

    def jayway(self, upto: int | None = None) -> str:
        """The bracketed form AWS prints in messages: ``$['a']['b'][0]``."""
        segs = self.segments if upto is None else self.segments[:upto]
        return "$" + "".join(f"[{s}]" if isinstance(s, int) else f"['{s}']" for s in segs)


def _unescape(s: str, quote: str) -> str:
    # Jayway unescapes only the quote character itself; other backslashes stay literal.
    return s.replace("\\" + quote, quote)


def _parse_simple(rest: str) -> tuple[Segment, ...] | None:
    segs: list[Segment] = []
    pos = 0
    while pos < len(rest):
        m = _SEG.match(rest, pos)
        if not m:
            return None
        if m.group("name") is not None:
            name = m.group("name")
            if name.endswith("()"):
                return None
            segs.append(name)
        elif m.group("sq") is not None:
            segs.append(_unescape(m.group("sq"), "'"))
        elif m.group("dq") is not None:
            segs.append(_unescape(m.group("dq"), '"'))
        elif m.group("dsq") is not None:
            segs.append(_unescape(m.group("dsq"), "'"))
        else:
            segs.append(int(m.group("idx")))
        pos = m.end()
    return tuple(segs)


def _parse_complex(rest: str) -> Any:
    from jsonpath_ng.ext import parse  # loaded only for indefinite paths

    try:
        return parse("$" + rest)
    except Exception as e:  # jsonpath-ng raises several unrelated types
        raise ValueError(f"invalid JSONPath '${rest}': {e}") from None


def parse_path(text: str) -> Path:
    """Parse a path; raises ValueError with the reason when it is not valid JSONPath."""
    if not isinstance(text, str):
        raise ValueError("path must be a string")
    return _parse(text.strip())


@lru_cache(maxsize=4096)
def _parse(text: str) -> Path:
    # a definition repeats its paths (every state reading $.order.id): parsed once; a Path is
    # never changed once made, so one may be shared
    return Path(text)


def _step(value: Any, seg: Segment) -> Any:
    if isinstance(seg, int):
        if type(value) is list:
            return value[seg]
        raise KeyError(seg)
    if type(value) is dict:
        return value[seg]
    raise KeyError(seg)


def resolve(path: Path, data: Any, frame: Any) -> Any:
    """Evaluate ``path``; raises PathMissing (with Jayway's wording) when it selects nothing."""
    if path.root == "input":
        value = data
    elif path.root == "context":
        value = frame.context_object()
    else:
        scope = frame.vars
        if path.var not in scope:
            raise PathMissing(path.text, f"variable '{path.var}' is not defined")
        value = scope[path.var]
    if path.complex is not None:
        try:
            return [m.value for m in path.complex.find(value)]
        except Exception:
            return []
    for i, seg in enumerate(path.segments):
        try:
            value = _step(value, seg)
        except (KeyError, IndexError, TypeError):
            if i == len(path.segments) - 1:
                raise PathMissing(path.text, f"No results for path: {path.jayway()}") from None
            raise PathMissing(path.text, f"Missing property in path {path.jayway(i + 1)}") from None
    return value


def python_expr(path: Path, data: str, frame: str) -> str | None:
    """A Python expression equal to the path's value, for paths that can be inlined into generated
    code; it raises KeyError/TypeError/IndexError when the path selects nothing. None when the path
    needs :func:`resolve`."""
    if path.complex is not None:
        return None
    if path.root == "input":
        expr = data
    elif path.root == "context":
        expr = f"{frame}.context_object()"
    else:
        expr = f"{frame}.vars[{path.var!r}]"
    for seg in path.segments:
        if isinstance(seg, int):
            expr = f"_idx({expr}, {seg})"
        else:
            expr = f"{expr}[{seg!r}]"
    return expr


def _idx(value: Any, i: int) -> Any:
    if type(value) is list:
        return value[i]
    raise TypeError("not an array")


def _exec(src: str, name: str, env: dict[str, Any]) -> Any:
    ns: dict[str, Any] = {"_idx": _idx, **env}
    exec(compile(src, f"<express:{name}>", "exec"), ns)  # noqa: S102 - source is built from repr() literals
    return ns[name]


def compile_getter(text: str) -> Getter:
    """A closure ``(data, frame) -> value`` for a path; raises PathMissing when nothing matches."""
    path = parse_path(text)
    if path.root == "input" and not path.segments and path.complex is None:
        return _identity
    expr = python_expr(path, "d", "f")
    if expr is None:
        return lambda d, f: resolve(path, d, f)
    src = (
        "def getter(d, f):\n"
        f"    try:\n        return {expr}\n"
        "    except (KeyError, TypeError, IndexError):\n        return _resolve(_path, d, f)\n"
    )
    getter: Getter = _exec(src, "getter", {"_resolve": resolve, "_path": path})
    return getter


def _identity(d: Any, f: Any) -> Any:
    return d


Setter = Callable[[Any, Any], Any]


def compile_setter(text: str) -> Setter:
    """ResultPath: a closure ``(data, value) -> new data`` that writes ``value`` at the path.

    Copy-on-write: every object along the path is copied, nothing else, so the original input
    (which other branches or the caller may share) is never mutated. Missing intermediate objects
    are created, as AWS does.
    """
    path = parse_path(text)
    if path.root != "input":
        raise ValueError("ResultPath must start with '$' and reference the state input")
    if not path.is_reference:
        raise ValueError("ResultPath must be a Reference Path")
    segs = path.segments
    if not segs:
        return _replace
    if len(segs) == 1 and isinstance(segs[0], str):
        key = segs[0]

        def set_one(d: Any, v: Any) -> Any:
            if type(d) is dict:
                d = d.copy()
                d[key] = v
                return d
            raise PathMissing(path.text, f"Missing property in path {path.jayway(1)}")

        set_one.key = key  # type: ignore[attr-defined]  # lets states inline the write
        return set_one

    def set_deep(d: Any, v: Any) -> Any:
        return _set_in(path, d, 0, v)

    return set_deep


def _replace(d: Any, v: Any) -> Any:
    return v


def _set_in(path: Path, node: Any, i: int, v: Any) -> Any:
    segs = path.segments
    if i == len(segs):
        return v
    seg = segs[i]
    if isinstance(seg, int):
        if type(node) is not list or not -len(node) <= seg < len(node):
            raise PathMissing(path.text, f"Index out of bounds in path {path.jayway(i + 1)}")
        copy = node.copy()
        copy[seg] = _set_in(path, node[seg], i + 1, v)
        return copy
    if type(node) is not dict:
        raise PathMissing(path.text, f"Missing property in path {path.jayway(i)}")
    obj: dict[str, Any] = node.copy()
    child = node.get(seg)
    if child is None and i + 1 < len(segs):
        child = [] if isinstance(segs[i + 1], int) else {}
    obj[seg] = _set_in(path, child, i + 1, v)
    return obj
