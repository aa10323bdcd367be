"""The syntax of ASL intrinsic function calls (JSONPath dialect): one parser for the validator
(:mod:`express.asl.field_checks`) and the compiler (:mod:`express.asl.intrinsics`).

``parse_intrinsic(text)`` turns ``States.Format('{} {}', $.a, $$.B)`` into a :class:`Call` tree
whose arguments are :class:`Literal` values, :class:`PathArgument` texts and nested calls, or
raises :class:`IntrinsicSyntaxError` for anything the compiler could not build: bad syntax, an
unknown function, a wrong argument count, nesting deeper than :data:`MAX_NESTING`.

Two things are left in the tree for its users to judge: a path argument's text (the validator
checks it as a JSONPath, the compiler compiles it) and a string literal's open escape, a
backslash before anything but ``' { } \\`` (AWS rejects a definition holding one; a call compiled
on its own fails when it runs).

White space between tokens and around the call is JSON's (space, tab, CR, LF).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_NESTING = 10
WHITESPACE = " \t\r\n"

# name -> (fewest arguments, most arguments or None for any number)
ARITY: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}
FUNCTION_NAMES = frozenset(ARITY)

_NAME_RE = re.compile(r"States\.[A-Za-z0-9]+")
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_KEYWORD_RE = re.compile(r"(null|true|false)(?=[ \t\r\n]*[,)])")
_KEYWORDS = {"null": None, "true": True, "false": False}
_ESCAPABLE = ("'", "{", "}", "\\")


def is_intrinsic(text: Any) -> bool:
    """True when ``text`` is written as an intrinsic call (``States.`` after any white space):
    a ``.$`` template value or a Fail state's ErrorPath/CausePath is then parsed as one, not as
    a path, and a malformed call is reported as such."""
    return isinstance(text, str) and text.lstrip(WHITESPACE).startswith("States.")


class IntrinsicSyntaxError(ValueError):
    """``text`` is not a call the compiler can build; the message names the offset."""


@dataclass(frozen=True, slots=True)
class Literal:
    """A number, ``null``, a boolean or a quoted string. For a string, ``parts`` is the text
    split at unescaped ``{}`` (a States.Format template), ``template_error`` why it is not a valid
    template and ``escape_error`` the first open escape, if any."""

    value: Any
    parts: tuple[str, ...] | None = None
    template_error: str | None = None
    escape_error: str | None = None


@dataclass(frozen=True, slots=True)
class PathArgument:
    """A path argument as written (``$.a``, ``$$.Execution.Id``, ``$var.x``), starting at ``offset``."""

    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Literal | PathArgument | Call, ...]
    offset: int

    def walk(self) -> Iterator[Literal | PathArgument | Call]:
        """This call and every argument under it, depth first, in the order written."""
        stack: list[Literal | PathArgument | Call] = [self]
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, Call):
                stack.extend(reversed(node.args))

    def paths(self) -> list[str]:
        """The text of every path argument, nested calls' included."""
        return [n.text for n in self.walk() if isinstance(n, PathArgument)]

    def escape_error(self) -> str | None:
        """The first open escape in the call's string literals, if any."""
        for n in self.walk():
            if isinstance(n, Literal) and n.escape_error:
                return n.escape_error
        return None


Argument = Literal | PathArgument | Call


def parse_intrinsic(text: str) -> Call:
    """The call tree of ``text``; :class:`IntrinsicSyntaxError` when it is malformed."""
    if not isinstance(text, str):
        raise IntrinsicSyntaxError("an intrinsic function invocation must be a string")
    return _Parser(text).parse()


class _Parser:
    __slots__ = ("s", "n")

    def __init__(self, s: str) -> None:
        self.s = s
        self.n = len(s)

    def fail(self, pos: int, why: str) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(f"{why} at position {pos}")

    def ws(self, pos: int) -> int:
        s, n = self.s, self.n
        while pos < n and s[pos] in WHITESPACE:
            pos += 1
        return pos

    def parse(self) -> Call:
        pos = self.ws(0)
        if not self.s.startswith("States.", pos):
            raise self.fail(pos, "expected 'States.<Function>('")
        call, pos = self.call(pos, 1)
        pos = self.ws(pos)
        if pos != self.n:
            raise self.fail(pos, f"unexpected text {self.s[pos:]!r} after the function call")
        return call

    def call(self, pos: int, depth: int) -> tuple[Call, int]:
        if depth > MAX_NESTING:
            raise self.fail(pos, f"intrinsic functions nest more than {MAX_NESTING} deep")
        m = _NAME_RE.match(self.s, pos)
        if m is None:
            raise self.fail(pos, "expected an intrinsic function name")
        name = m.group()
        arity = ARITY.get(name)
        if arity is None:
            raise self.fail(pos, f"unknown intrinsic function '{name}'")
        start, pos = pos, self.ws(m.end())
        if pos >= self.n or self.s[pos] != "(":
            raise self.fail(pos, f"expected '(' after {name}")
        args: list[Argument] = []
        pos = self.ws(pos + 1)
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
        lo, hi = arity
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            raise self.fail(start, f"{name} takes {want} argument(s) but {len(args)} were given")
        return Call(name, tuple(args), start), pos

    def arg(self, pos: int, depth: int) -> tuple[Argument, int]:
        pos = self.ws(pos)
        if pos >= self.n:
            raise self.fail(pos, "missing argument")
        c = self.s[pos]
        if c == "'":
            return self.string(pos)
        if c == "$":
            return self.path(pos)
        if self.s.startswith("States.", pos):
            return self.call(pos, depth + 1)
        m = _NUMBER_RE.match(self.s, pos)
        if m:
            t = m.group()
            return Literal(float(t) if any(ch in t for ch in ".eE") else int(t)), m.end()
        m = _KEYWORD_RE.match(self.s, pos)
        if m:
            return Literal(_KEYWORDS[m.group(1)]), m.end()
        raise self.fail(pos, f"unexpected argument starting {self.s[pos:pos + 20]!r}")

    def string(self, pos: int) -> tuple[Literal, int]:
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
                if nxt in _ESCAPABLE:
                    value.append(nxt)
                    cur.append(nxt)
                    i += 2
                    continue
                escape_error = escape_error or f"Invalid escape sequence '\\{nxt}' in string literal"
            elif c == "{":
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
        return Literal("".join(value), tuple(parts), template_error, escape_error), i

    def path(self, pos: int) -> tuple[PathArgument, int]:
        """A path runs to the ',' or ')' outside its brackets and parentheses (filters such as
        ``$.a[?(@.n > 1)]`` and Jayway calls such as ``$.a.length()`` hold both)."""
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
        return PathArgument(s[pos:i].rstrip(WHITESPACE), pos), i
