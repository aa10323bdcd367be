"""Payload templates (Parameters, ResultSelector, ItemSelector, JSONPath Assign) compiled to code.

A template becomes one generated Python function whose body is a dict/list literal: static values
are Python literals (so every call builds fresh objects the caller may own), ``"key.$"`` values are
inlined path expressions or calls to compiled intrinsics. If any path selects nothing, the
generated code falls back to a slow interpreter that finds the offending field and raises the
ASL error with AWS's wording; the fast path pays nothing for that.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from express.asl import jsonpath
from express.asl.errors import RUNTIME, ASLError, PathMissing

Template = Callable[[Any, Any], Any]


def is_intrinsic(text: str) -> bool:
    return text.lstrip().startswith("States.")


def _compile_dynamic(text: str) -> Template:
    if is_intrinsic(text):
        from express.asl.intrinsics import compile_intrinsic

        fn: Template = compile_intrinsic(text)
        return fn
    return jsonpath.compile_getter(text)


def json_text(value: Any) -> str:
    """Compact JSON as AWS prints data inside causes."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def json_type(v: Any, other: str | None = None) -> str:
    """The JSON type name AWS's messages use; ``other`` (default: the Python type's name) for
    values that are not JSON, such as a JSONata function."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return other if other is not None else type(v).__name__


class _Codegen:
    def __init__(self) -> None:
        self.env: dict[str, Any] = {}

    def bind(self, obj: Any) -> str:
        name = f"_c{len(self.env)}"
        self.env[name] = obj
        return name

    def expr(self, value: Any) -> str:
        if type(value) is dict:
            items = []
            for key, sub in value.items():
                if isinstance(key, str) and key.endswith(".$") and isinstance(sub, str):
                    items.append(f"{key[:-2]!r}: {self.dynamic(sub)}")
                else:
                    items.append(f"{key!r}: {self.expr(sub)}")
            return "{" + ", ".join(items) + "}"
        if type(value) is list:
            return "[" + ", ".join(self.expr(v) for v in value) + "]"
        if value is None or type(value) in (bool, int, str):
            return repr(value)
        if type(value) is float:
            return repr(value) if value == value and value not in (float("inf"), float("-inf")) else self.bind(value)
        return self.bind(value)

    def dynamic(self, text: str) -> str:
        if not is_intrinsic(text):
            path = jsonpath.parse_path(text)
            inline = jsonpath.python_expr(path, "d", "f")
            if inline is not None:
                return inline
        return f"{self.bind(_compile_dynamic(text))}(d, f)"


def _validate_keys(template: Any) -> None:
    if type(template) is dict:
        seen: set[str] = set()
        for key, sub in template.items():
            name = key[:-2] if key.endswith(".$") else key
            if name in seen:
                raise ValueError(f"duplicate key '{name}' in payload template")
            seen.add(name)
            if key.endswith(".$") and not isinstance(sub, str):
                raise ValueError(f"the value of '{key}' must be a path or intrinsic function string")
            _validate_keys(sub)
    elif type(template) is list:
        for sub in template:
            _validate_keys(sub)


def compile_template(template: Any, field: str = "Parameters") -> Template:
    """Compile a payload template; raises ValueError when a path or intrinsic is invalid."""
    _validate_keys(template)
    gen = _Codegen()
    body = gen.expr(template)
    slow = _SlowTemplate(template, field)
    src = (
        "def template(d, f):\n"
        f"    try:\n        return {body}\n"
        "    except (KeyError, TypeError, IndexError, _PathMissing):\n        return _slow(d, f)\n"
    )
    try:
        code = compile(src, f"<express:{field}>", "exec")
    except (SyntaxError, RecursionError, MemoryError):
        # CPython's parser stops at 200 nested brackets ("too many nested parentheses"), short
        # of the nesting a definition may have (express.asl.limits.MAX_DEPTH): run such a template
        # node by node instead.
        return slow
    ns: dict[str, Any] = {"_idx": jsonpath._idx, "_slow": slow, "_PathMissing": PathMissing, **gen.env}
    exec(code, ns)  # noqa: S102 - built from repr() literals
    fn: Template = ns["template"]
    return fn


class _SlowTemplate:
    """Evaluates a template node by node, to report exactly which field failed."""

    def __init__(self, template: Any, field: str) -> None:
        self.template = template
        self.field = field
        self.getters: dict[int, Template] = {}

    def __call__(self, d: Any, f: Any) -> Any:
        return self._eval(self.template, d, f)

    def _eval(self, node: Any, d: Any, f: Any) -> Any:
        if type(node) is dict:
            out = {}
            for key, sub in node.items():
                if isinstance(key, str) and key.endswith(".$") and isinstance(sub, str):
                    out[key[:-2]] = self._dynamic(key, sub, d, f)
                else:
                    out[key] = self._eval(sub, d, f)
            return out
        if type(node) is list:
            return [self._eval(v, d, f) for v in node]
        return node

    def _dynamic(self, key: str, text: str, d: Any, f: Any) -> Any:
        getter = self.getters.get(id(text))
        if getter is None:
            getter = self.getters[id(text)] = _compile_dynamic(text)
        try:
            return getter(d, f)
        except PathMissing as e:
            where = f.context_object() if e.path.startswith("$$") else d
            raise ASLError(
                RUNTIME,
                f"The JSONPath '{e.path}' specified for the field '{key}' could not be found "
                f"in the input '{json_text(where)}'",
            ) from None
