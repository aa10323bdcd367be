"""Payload templates (Parameters, ResultSelector, ItemSelector, JSONPath Assign) compiled to code.

A template becomes one generated Python function whose body is a dict/list literal: static values
are Python literals (so every call builds fresh objects the caller may own), ``"key.$"`` values are
inlined path expressions or calls to compiled intrinsics. If any path selects nothing, the
generated code falls back to a slow interpreter that finds the offending field and raises the
ASL error with AWS's wording; the fast path pays nothing for that.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from express.asl import jsonpath
from express.asl.errors import RUNTIME, ASLError, PathMissing
from express.asl.intrinsic_parser import is_intrinsic

Template = Callable[[Any, Any], Any]


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


# --------------------------------------------------------------------------- inlining

# Intrinsics whose result is always a JSON scalar (a string, a number, a boolean): it cannot nest.
_SCALAR_INTRINSICS = frozenset({
    "States.Format", "States.JsonToString", "States.ArrayContains", "States.ArrayLength", "States.Base64Encode",
    "States.Base64Decode", "States.Hash", "States.MathRandom", "States.MathAdd", "States.UUID",
})
_MAX_INLINE_DEPTH = 64  # deeper templates are left to compile_template (CPython's parser has limits)


class Inliner:
    """Templates emitted as the statements of one generated function that evaluates several of
    them in turn against the same data (a run of Pass states, :mod:`express.engine.pass_runs`),
    with what that code needs to know the size of what they build.

    Every dynamic value becomes a local, bound in the order the template is written (the order
    compile_template's literal evaluates it); a path lookup is shared by the templates that
    follow until the data it reads is written (:meth:`written`, :meth:`replaced`). A result's JSON
    is its ``static`` bytes (known here) plus those of its values, which the generated code
    measures with one ``orjson.dumps`` of them all (:meth:`size_code`). That call also refuses
    what could not be written: a value that might nest deeper than the data may hold goes in
    boxed in as many lists as it will sit below the top of the data. A value read at a path of at
    least that many steps needs no box: it is part of data that nests at most MAX_DEPTH levels.

    The generated code raises (KeyError, TypeError, ASLError...) where a template would fail; its
    caller then runs the compiled templates themselves, which report the failure exactly."""

    def __init__(self, data: str = "d", frame: str = "f") -> None:
        self.data = data
        self.frame = frame
        self.env: dict[str, Any] = {"_idx": jsonpath._idx}
        self.lines: list[str] = []
        self._cache: dict[tuple[Any, ...], str] = {}
        self._uses: dict[str, list[int]] = {}  # local -> [occurrences, box depth]
        self._locals = 0
        self._holds = False
        self._dynamics = 0
        self._parts: list[tuple[Any, ...]] | None = None

    def _local(self) -> str:
        self._locals += 1
        return f"_l{self._locals}"

    def _bind(self, obj: Any) -> str:
        name = f"_e{len(self.env)}"
        self.env[name] = obj
        return name

    def _use(self, local: str, box: int) -> None:
        use = self._uses.setdefault(local, [0, 0])
        use[0] += 1
        use[1] = max(use[1], box)

    def template(self, template: Any, depth: int, within_data: bool = False) -> Emitted | None:
        """Emit ``template`` (a Parameters-style payload template) whose result lands ``depth``
        levels below the top of the data, or None when it cannot be inlined.

        ``within_data``: if every value is a distinct part of the data, none inside another,
        their sizes together are at most the data's: they are then left out of :meth:`size_code`
        (``Emitted.within_data``), so that the caller bounds them by the data's size instead."""
        try:
            _validate_keys(template)
        except ValueError:
            return None
        return self._emit(template, depth, True, within_data)

    def literal(self, value: Any, depth: int) -> Emitted | None:
        """The same for a literal (a Pass state's Result): a fresh copy per evaluation."""
        return self._emit(value, depth, False, False)

    def _emit(self, value: Any, depth: int, dynamic: bool, within_data: bool) -> Emitted | None:
        skeleton: list[Any] = []
        self._holds = False
        self._dynamics = 0
        self._parts = []  # the parts of the data the values are; None: not only such
        before = (len(self.lines), dict(self._cache), {k: list(v) for k, v in self._uses.items()}, self._locals,
                  dict(self.env))
        try:
            expr = self._expr(value, 0, depth, dynamic, skeleton)
            # each dynamic value stands in the skeleton as null: 4 bytes, not part of the static ones
            static = len(orjson.dumps(skeleton[0])) - 4 * self._dynamics
        except (_NotInlined, TypeError, ValueError, RecursionError):
            lines, self._cache, self._uses, self._locals, self.env = before
            del self.lines[lines:]
            return None
        parts = self._parts
        disjoint = within_data and bool(parts) and not any(
            a[:len(b)] == b for i, a in enumerate(parts or ()) for j, b in enumerate(parts or ()) if i != j)
        if disjoint:
            self._uses = before[2]
        return Emitted(expr, static, self._holds, disjoint)

    def _expr(self, value: Any, t: int, depth: int, dynamic: bool, out: list[Any]) -> str:
        # t: how many containers of the result enclose ``value``
        if t > _MAX_INLINE_DEPTH:
            raise _NotInlined
        if type(value) is dict:
            items = []
            skeleton: dict[str, Any] = {}
            for key, sub in value.items():
                if dynamic and key.endswith(".$") and isinstance(sub, str):
                    items.append(f"{key[:-2]!r}: {self._dynamic(sub, t + 1, depth)}")
                    skeleton[key[:-2]] = None
                    self._dynamics += 1
                else:
                    parts: list[Any] = []
                    items.append(f"{key!r}: {self._expr(sub, t + 1, depth, dynamic, parts)}")
                    skeleton[key] = parts[0]
            out.append(skeleton)
            return "{" + ", ".join(items) + "}"
        if type(value) is list:
            elements: list[Any] = []
            code = [self._expr(v, t + 1, depth, dynamic, elements) for v in value]
            out.append(elements)
            return "[" + ", ".join(code) + "]"
        out.append(value)
        if value is None or type(value) in (bool, int, str):
            return repr(value)
        if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
            return repr(value)
        raise _NotInlined  # not JSON: left to compile_template

    def _dynamic(self, text: str, t: int, depth: int) -> str:
        local, part = self._value(text, t + depth)
        if part is None:
            self._parts = None
        elif self._parts is not None:
            self._parts.append(part)
        return local

    def _value(self, text: str, box: int) -> tuple[str, tuple[Any, ...] | None]:
        """(the local bound to the value, its path when it is a part of the data that needs no
        box); ``box``: the levels above the value once its result is written into the data."""
        if is_intrinsic(text):
            from express.asl.intrinsic_parser import PathArgument, parse_intrinsic

            call = parse_intrinsic(text)
            if any(isinstance(n, PathArgument) and _may_be_data(n.text) for n in call.walk()):
                self._holds = True
            local = self._local()
            self.lines.append(f"{local} = {self._bind(_compile_dynamic(text))}({self.data}, {self.frame})")
            self._use(local, 0 if call.name in _SCALAR_INTRINSICS else box)
            return local, None
        path = jsonpath.parse_path(text)
        part = None
        if path.complex is not None or (path.root == "input" and not path.segments):
            self._holds = self._holds or path.root == "input"
            local = self._local()
            source = self.data if path.complex is None else \
                f"{self._bind(jsonpath.compile_getter(text))}({self.data}, {self.frame})"
            self.lines.append(f"{local} = {source}")
        elif path.root == "input":
            local = self._lookup(("$",), self.data, path.segments)
            if len(path.segments) >= box:  # part of data nesting at most MAX_DEPTH - len(segments) levels
                box = 0
                part = path.segments
        elif path.root == "var":
            local = self._lookup(("var", path.var), f"{self.frame}.vars[{path.var!r}]", path.segments, True)
        else:  # the context object, built afresh by each lookup
            local = self._local()
            self.lines.append(f"{local} = {self.frame}.context_object()")
            for seg in path.segments:
                self.lines.append(f"{local} = {_step(local, seg)}")
        self._use(local, box)
        return local, part

    def _lookup(self, root: tuple[Any, ...], expr: str, segments: tuple[Any, ...], bind_root: bool = False) -> str:
        """The local holding ``expr`` followed by ``segments``, shared with earlier lookups
        (``bind_root``: ``expr`` itself is bound to a shared local first)."""
        key = root
        cur = self._cache.get(key) if bind_root else expr
        if cur is None:
            cur = self._cache[key] = self._local()
            self.lines.append(f"{cur} = {expr}")
        for seg in segments:
            key = key + (seg,)
            known = self._cache.get(key)
            if known is None:
                known = self._cache[key] = self._local()
                self.lines.append(f"{known} = {_step(cur, seg)}")
            cur = known
        return cur

    def written(self, key: str) -> None:
        """The data's top-level ``key`` was written: forget the lookups under it."""
        for k in [k for k in self._cache if k[0] == "$" and len(k) > 1 and k[1] == key]:
            del self._cache[k]

    def replaced(self) -> None:
        """The data itself was replaced: forget every lookup in it."""
        for k in [k for k in self._cache if k[0] == "$"]:
            del self._cache[k]

    def size_code(self) -> tuple[str, int] | None:
        """(an expression of the bytes every value emitted adds, counted once per use, plus a
        constant to subtract from it), or None when there are no values. It raises TypeError for
        a value that cannot be written where its result lands."""
        if not self._uses:
            return None
        groups: dict[int, list[str]] = {}
        extra = 0
        for local, (count, box) in self._uses.items():
            groups.setdefault(count, []).append("[" * box + local + "]" * box)
            extra += count * 2 * box
        dumps = self._bind(orjson.dumps)
        terms = []
        for count, entries in groups.items():
            extra += count * (len(entries) + 1)  # the tuple's brackets and commas
            call = f"len({dumps}(({', '.join(entries)},)))"
            terms.append(call if count == 1 else f"{count} * {call}")
        return " + ".join(terms), extra


class Emitted(NamedTuple):
    """A template emitted by :class:`Inliner`."""

    expr: str  # the expression of its result, built from the locals bound before it
    static: int  # the bytes of the result's JSON besides its values
    holds_data: bool  # the result may hold the data itself
    within_data: bool  # its values are distinct parts of the data, left out of size_code


class _NotInlined(Exception):
    pass


def _step(expr: str, seg: str | int) -> str:
    return f"_idx({expr}, {seg})" if isinstance(seg, int) else f"{expr}[{seg!r}]"


def _may_be_data(text: str) -> bool:
    """Whether a path argument may select the data itself (``$``, or an indefinite path)."""
    try:
        path = jsonpath.parse_path(text)
    except ValueError:
        return True
    return path.root == "input" and (not path.segments or path.complex is not None)
