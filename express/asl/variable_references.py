"""Which workflow variables each state reads: DescribeStateMachine's ``variableReferences``.

AWS answers a map of state name -> the names of the variables that state reads, sorted, and
leaves out the states that read none (and the whole map when no state does). Observed on AWS:

* every state is listed under its own name, also the states inside a Parallel's branches and a
  Map's item processor; a Map's own fields (``ItemsPath``, ``ItemSelector``, ``MaxItemsPath`` of
  its ``ItemReader``, ...) count for the Map;
* JSONPath: a variable is read by a path whose root is ``$name`` (``InputPath``, ``OutputPath``,
  ``ItemsPath``, ``SecondsPath``, ``ErrorPath``, ..., a Choice rule's ``Variable`` and ``...Path``
  operands) and by the paths inside an intrinsic call, wherever a ``.$`` key of a payload
  template (``Parameters``, ``ResultSelector``, ``ItemSelector``, ``Assign``, ...) holds one; a
  plain key's ``"$name"`` is a literal string, and ``Result`` is literal throughout;
  ``ResultPath`` writes and never reads a variable;
* JSONata: ``$name`` in any ``{% ... %}`` expression of the state, except ``$states``, the
  functions (built-in or called) and names the expression binds itself (``$x := ...``,
  ``function($x)``).

Computed once when a machine is created or updated (a walk over the definition), not per
execution.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from express.asl.intrinsic_parser import is_intrinsic, parse_intrinsic
from express.asl.jsonata import expression_text
from express.asl.jsonpath import parse_path
from express.asl.query_language import is_jsonata

VariableReferences = dict[str, list[str]]

# fields holding the states of an inner scope: their states are listed under their own names
_NESTED = frozenset({"Branches", "ItemProcessor", "Iterator"})
# JSONPath payload templates: only their ``.$`` keys hold paths
_TEMPLATES = frozenset({"Parameters", "ResultSelector", "ItemSelector", "Assign", "BatchInput"})
_LITERAL = frozenset({"Result", "Comment"})

_ROOT_VAR = re.compile(r"\$([^\W\d]\w*)")

# JSONata's function library and the functions AWS adds (``$partition``, ``$range``, ``$hash``,
# ``$random``, ``$uuid``, ``$parse``): a name of these is a function, never a workflow variable
JSONATA_FUNCTIONS = frozenset({
    "string", "length", "substring", "substringBefore", "substringAfter", "uppercase", "lowercase",
    "trim", "pad", "contains", "split", "join", "match", "replace", "eval", "base64encode",
    "base64decode", "encodeUrlComponent", "encodeUrl", "decodeUrlComponent", "decodeUrl",
    "number", "abs", "floor", "ceil", "round", "power", "sqrt", "random", "formatNumber",
    "formatBase", "formatInteger", "parseInteger", "sum", "max", "min", "average", "count",
    "boolean", "not", "exists", "append", "sort", "reverse", "shuffle", "distinct", "zip", "keys",
    "lookup", "spread", "merge", "sift", "each", "error", "assert", "type", "now", "millis",
    "fromMillis", "toMillis", "map", "filter", "single", "reduce",
    "partition", "range", "hash", "uuid", "parse",
})
# in a JSONata body whose literals are blanked (see _code): a variable not called as a function,
# one the expression assigns, and a lambda's parameter list
_JSONATA_VAR = re.compile(r"\$([^\W\d]\w*)(?!\w)(?!\s*\()")
_JSONATA_BOUND = re.compile(r"\$([^\W\d]\w*)\s*:=")
_JSONATA_PARAMS = re.compile(r"(?:\bfunction|λ)\s*\(([^)]*)\)")


def variable_references(definition: Mapping[str, Any]) -> VariableReferences:
    """``{state name: sorted variable names}`` for a (valid) parsed definition; ``{}`` if none."""
    top = "JSONata" if definition.get("QueryLanguage") == "JSONata" else "JSONPath"
    found: dict[str, set[str]] = {}
    for name, state in _states(definition):
        lang = state.get("QueryLanguage") or top
        names = _jsonata_state(state) if lang == "JSONata" else _jsonpath_state(state)
        names.discard("states")
        if names:
            found.setdefault(name, set()).update(names)
    return {name: sorted(names) for name, names in found.items()}


def _states(block: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (name, state) of a block and of the blocks inside its states, in document order."""
    pending: list[Mapping[str, Any]] = [block]
    while pending:
        current = pending.pop()
        states = current.get("States")
        if not isinstance(states, dict):
            continue
        inner: list[Mapping[str, Any]] = []
        for name, state in states.items():
            if not isinstance(state, dict):
                continue
            yield name, state
            for branch in state.get("Branches") or ():
                if isinstance(branch, dict):
                    inner.append(branch)
            for field in ("ItemProcessor", "Iterator"):
                if isinstance(state.get(field), dict):
                    inner.append(state[field])
        pending.extend(reversed(inner))


# --- JSONPath ------------------------------------------------------------------------------------

def _jsonpath_state(state: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    # (key, value, inside a payload template)
    stack: list[tuple[str, Any, bool]] = [(k, v, False) for k, v in state.items()
                                          if k not in _NESTED and k not in _LITERAL]
    while stack:
        key, value, template = stack.pop()
        if isinstance(value, str):
            if key.endswith(".$") or (not template and (key == "Variable"
                                                        or (key.endswith("Path") and key != "ResultPath"))):
                _path_or_intrinsic(value, names)
        elif isinstance(value, dict):
            inner = template or key in _TEMPLATES
            stack.extend((k, v, inner) for k, v in value.items() if inner or k not in _LITERAL)
        elif isinstance(value, list):
            stack.extend(("", item, template) for item in value)
    return names


def _path_or_intrinsic(text: str, names: set[str]) -> None:
    if is_intrinsic(text):
        try:
            paths = parse_intrinsic(text).paths()
        except ValueError:  # not a valid call: validation reports it
            return
        for path in paths:
            _path_variable(path, names)
    else:
        _path_variable(text, names)


def _path_variable(text: str, names: set[str]) -> None:
    try:
        var = parse_path(text).var
    except ValueError:  # e.g. a Jayway function path (``$items.length()``): its root still counts
        m = _ROOT_VAR.match(text)
        var = m.group(1) if m else None
    if var is not None:
        names.add(var)


# --- JSONata -------------------------------------------------------------------------------------

def _jsonata_state(state: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    stack: list[Any] = [v for k, v in state.items() if k not in _NESTED and k != "Comment"]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if is_jsonata(value):
                names |= jsonata_variables(expression_text(value))
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return names


def jsonata_variables(body: str) -> set[str]:
    """The workflow variables a JSONata expression reads (``$states`` included, if it does)."""
    if "$" not in body:
        return set()
    code = _code(body)
    bound = set(_JSONATA_BOUND.findall(code))
    for params in _JSONATA_PARAMS.findall(code):
        bound.update(_ROOT_VAR.findall(params))
    return {n for n in _JSONATA_VAR.findall(code) if n not in bound and n not in JSONATA_FUNCTIONS}


def _code(body: str) -> str:
    """``body`` with the insides of string literals, `quoted names` and comments blanked, so
    that a ``$`` in them is not taken for a variable (same length, same positions)."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c in "'\"`":
            j = i + 1
            while j < n and body[j] != c:
                j += 2 if c != "`" and body[j] == "\\" else 1
            j = min(j + 1, n)
        elif c == "/" and body.startswith("/*", i):
            end = body.find("*/", i + 2)
            j = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
            continue
        out.append(" " * (j - i))
        i = j
    return "".join(out)
