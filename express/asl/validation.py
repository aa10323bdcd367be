"""Static validation of ASL definitions, reporting every problem the way AWS's
ValidateStateMachineDefinition / CreateStateMachine diagnostics do.

``validate(definition)`` walks an already-parsed definition once and returns a list of
:class:`~express.asl.errors.Problem` (empty when the definition is valid). Each problem carries an
AWS diagnostic code, an AWS-style message and an RFC 6901 JSON pointer to the offending place.

Leniency is deliberate: a validator that rejects definitions AWS accepts is worse than one that
lets a rare invalid one through (which then fails at run time). JSONata expressions are only
checked for their ``{% ... %}`` delimiters.

Express-only exclusions (``.sync``, ``.sync:2``, ``.waitForTaskToken``, activity ARNs) are
reported as SCHEMA_VALIDATION_FAILED.
"""
from __future__ import annotations

import math
import re
from collections import deque
from typing import Any

from express.asl.errors import ALL, Problem
from express.asl.jsonpath import parse_path
from express.asl.limits import MAX_DEPTH, MAX_INT, MIN_INT
from express.asl.payload import json_type
from express.asl.timestamps import parse_timestamp

SCHEMA = "SCHEMA_VALIDATION_FAILED"
MISSING_TARGET = "MISSING_TRANSITION_TARGET"
DUPLICATE_NAME = "DUPLICATE_STATE_NAME"
# AWS reports unreachable states as MISSING_TRANSITION_TARGET with the message
# 'State "X" is not reachable.' (observed on CreateStateMachine / ValidateStateMachineDefinition).
UNREACHABLE = "MISSING_TRANSITION_TARGET"
MISSING_END = "MISSING_END_STATE"
INVALID_JSON_PATH = "INVALID_JSON_PATH"
INVALID_REFERENCE_PATH = "INVALID_REFERENCE_PATH"
INVALID_INTRINSIC = "INVALID_INTRINSIC_FUNCTION"
RFC3339_MESSAGE = "String does not match RFC3339 timestamp"

JSONPATH = "JSONPath"
JSONATA = "JSONata"

MAX_STATE_NAME = 80
MAX_VARIABLE_NAME = 80
MAX_LABEL = 40
MAX_INTRINSIC_DEPTH = 10
MAX_RETRY_SECONDS = 99_999_999
MAX_DELAY_SECONDS = 31_622_400

STATE_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
AWS_STATE_TYPE_ORDER = ("Task", "Wait", "Pass", "Succeed", "Fail", "Choice", "Parallel", "Map")

# Fields only meaningful under one query language.
JSONPATH_ONLY = frozenset({
    "InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "ItemsPath",
    "SecondsPath", "TimestampPath", "ErrorPath", "CausePath", "TimeoutSecondsPath",
    "HeartbeatSecondsPath", "MaxConcurrencyPath", "ToleratedFailurePercentagePath",
    "ToleratedFailureCountPath",
})
JSONATA_ONLY = frozenset({"Arguments", "Output", "Items"})

_COMMON = {"Type", "Comment", "QueryLanguage"}
_IO = {"InputPath", "OutputPath", "Output"}
_TRANS = {"Next", "End"}
_ERR = {"Retry", "Catch"}
STATE_FIELDS: dict[str, frozenset[str]] = {
    "Task": frozenset(_COMMON | _IO | _TRANS | _ERR | {
        "Resource", "Parameters", "ResultSelector", "ResultPath", "Arguments", "Assign",
        "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath",
        "Credentials"}),
    "Pass": frozenset(_COMMON | _IO | _TRANS | {"Result", "Parameters", "ResultPath", "Assign"}),
    "Choice": frozenset(_COMMON | _IO | {"Choices", "Default", "Assign"}),
    "Wait": frozenset(_COMMON | _IO | _TRANS | {
        "Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Assign"}),
    "Succeed": frozenset(_COMMON | _IO),
    "Fail": frozenset(_COMMON | {"Error", "Cause", "ErrorPath", "CausePath"}),
    "Parallel": frozenset(_COMMON | _IO | _TRANS | _ERR | {
        "Branches", "Parameters", "ResultSelector", "ResultPath", "Arguments", "Assign"}),
    "Map": frozenset(_COMMON | _IO | _TRANS | _ERR | {
        "ItemProcessor", "Iterator", "ItemsPath", "Items", "ItemSelector", "Parameters",
        "ItemReader", "ItemBatcher", "ResultWriter", "MaxConcurrency", "MaxConcurrencyPath",
        "ToleratedFailurePercentage", "ToleratedFailurePercentagePath", "ToleratedFailureCount",
        "ToleratedFailureCountPath", "Label", "ResultSelector", "ResultPath", "Assign"}),
}
ALL_STATE_FIELDS = frozenset().union(*STATE_FIELDS.values())

TOP_FIELDS = frozenset({"States", "StartAt", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"})
BRANCH_FIELDS = frozenset({"States", "StartAt", "Comment"})
PROCESSOR_FIELDS = frozenset({"States", "StartAt", "Comment", "ProcessorConfig"})

RETRY_FIELDS = frozenset({
    "ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds",
    "JitterStrategy", "Comment"})
CATCH_FIELDS = frozenset({"ErrorEquals", "Next", "ResultPath", "Output", "Assign", "Comment"})

STRING_OPS = ("StringEquals", "StringLessThan", "StringGreaterThan", "StringLessThanEquals",
              "StringGreaterThanEquals")
NUMERIC_OPS = ("NumericEquals", "NumericLessThan", "NumericGreaterThan", "NumericLessThanEquals",
               "NumericGreaterThanEquals")
TIMESTAMP_OPS = ("TimestampEquals", "TimestampLessThan", "TimestampGreaterThan",
                 "TimestampLessThanEquals", "TimestampGreaterThanEquals")
TYPE_OPS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
# operator -> expected value kind
COMPARISON_OPS: dict[str, str] = {}
for _op in STRING_OPS:
    COMPARISON_OPS[_op] = "string"
    COMPARISON_OPS[_op + "Path"] = "path"
COMPARISON_OPS["StringMatches"] = "string"
for _op in NUMERIC_OPS:
    COMPARISON_OPS[_op] = "number"
    COMPARISON_OPS[_op + "Path"] = "path"
COMPARISON_OPS["BooleanEquals"] = "boolean"
COMPARISON_OPS["BooleanEqualsPath"] = "path"
for _op in TIMESTAMP_OPS:
    COMPARISON_OPS[_op] = "timestamp"
    COMPARISON_OPS[_op + "Path"] = "path"
for _op in TYPE_OPS:
    COMPARISON_OPS[_op] = "boolean"
BOOLEAN_OPS = ("And", "Or", "Not")
JSONPATH_RULE_FIELDS = frozenset({"Variable", "Comment", *COMPARISON_OPS, *BOOLEAN_OPS})
JSONATA_RULE_FIELDS = frozenset({"Condition", "Next", "Assign", "Output", "Comment"})

INTRINSICS = frozenset({
    "States.Format", "States.StringToJson", "States.JsonToString", "States.Array",
    "States.ArrayPartition", "States.ArrayContains", "States.ArrayRange", "States.ArrayGetItem",
    "States.ArrayLength", "States.ArrayUnique", "States.Base64Encode", "States.Base64Decode",
    "States.Hash", "States.JsonMerge", "States.MathRandom", "States.MathAdd",
    "States.StringSplit", "States.UUID",
})

ITEM_READER_FIELDS = frozenset({"Resource", "Parameters", "Arguments", "ReaderConfig"})
RESULT_WRITER_FIELDS = frozenset({"Resource", "Parameters", "Arguments", "WriterConfig"})
ITEM_BATCHER_FIELDS = frozenset({
    "MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath", "BatchInput"})

# State fields whose values are never JSONata (nested blocks are checked in their own language).
_NOT_JSONATA_VALUES = frozenset({
    "Type", "Comment", "QueryLanguage", "Next", "End", "Default", "Resource",
    "ItemProcessor", "Iterator", "Branches", "Result"})

_ACTIVITY_ARN = re.compile(r"^arn:[^:]+:states:[^:]*:[^:]*:activity:")
_LABEL_BAD = re.compile(r"[\s?*<>{}\[\]:;,\\|^~$#%&`\"]|[\x00-\x1f\x7f-\x9f]")
_INTRINSIC_START = re.compile(r"\s*States\.[A-Za-z0-9]+\s*\(")


# --------------------------------------------------------------------------------------------
# helpers

def _esc(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _ptr(base: str, *tokens: Any) -> str:
    return base + "".join("/" + _esc(t) for t in tokens)


def _enum_message(field: str, values: tuple[str, ...]) -> str:
    return f"The field '{field}' should have one of these values: [{', '.join(values)}]"


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and math.isfinite(v) and v.is_integer()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_jsonata(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("{%") and v.endswith("%}") and len(v) >= 4


def _type_name(v: Any) -> str:
    return json_type(v)


_JAYWAY_FN = re.compile(
    r"\.(min|max|avg|stddev|length|sum|keys|concat|append|first|last|index)\([^()]*\)\s*$")


def _jayway_function_path(v: str) -> bool:
    """A path ending in a Jayway function call whose prefix is a valid path."""
    m = _JAYWAY_FN.search(v)
    if not m:
        return False
    try:
        parse_path(v[:m.start()])
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# intrinsic function syntax

class _IntrinsicError(ValueError):
    pass


class _EscapeError(_IntrinsicError):
    """A backslash in a string literal before anything but ' { } or \\ (AWS rejects the call)."""


class _IntrinsicParser:
    """Checks ``States.Fn(arg, ...)`` syntax: literals, paths, nested calls, escapes."""

    __slots__ = ("s", "i", "paths")

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0
        self.paths: list[str] = []

    def parse(self) -> list[str]:
        self._ws()
        self._call(1)
        self._ws()
        if self.i != len(self.s):
            raise _IntrinsicError(f"unexpected text after the function call at position {self.i}")
        return self.paths

    def _ws(self) -> None:
        s, n = self.s, len(self.s)
        while self.i < n and s[self.i].isspace():
            self.i += 1

    def _call(self, depth: int) -> None:
        if depth > MAX_INTRINSIC_DEPTH:
            raise _IntrinsicError(f"intrinsic functions nest at most {MAX_INTRINSIC_DEPTH} deep")
        m = re.compile(r"States\.[A-Za-z0-9]+").match(self.s, self.i)
        if not m:
            raise _IntrinsicError(f"expected an intrinsic function name at position {self.i}")
        name = m.group(0)
        if name not in INTRINSICS:
            raise _IntrinsicError(f"unknown intrinsic function {name}")
        self.i = m.end()
        self._ws()
        if self.i >= len(self.s) or self.s[self.i] != "(":
            raise _IntrinsicError(f"expected '(' after {name}")
        self.i += 1
        self._ws()
        if self.i < len(self.s) and self.s[self.i] == ")":
            self.i += 1
            return
        while True:
            self._ws()
            self._arg(depth)
            self._ws()
            if self.i >= len(self.s):
                raise _IntrinsicError(f"missing ')' to close {name}")
            c = self.s[self.i]
            self.i += 1
            if c == ")":
                return
            if c != ",":
                raise _IntrinsicError(f"expected ',' or ')' at position {self.i - 1}")

    def _arg(self, depth: int) -> None:
        s, n = self.s, len(self.s)
        if self.i >= n:
            raise _IntrinsicError("missing argument")
        c = s[self.i]
        if c == "'":
            self.i += 1
            while self.i < n:
                ch = s[self.i]
                if ch == "\\":
                    nxt = s[self.i + 1] if self.i + 1 < n else ""
                    if nxt not in ("'", "{", "}", "\\"):
                        raise _EscapeError(f"invalid escape sequence '\\{nxt}' at position {self.i}")
                    self.i += 2
                    continue
                if ch == "'":
                    self.i += 1
                    return
                self.i += 1
            raise _IntrinsicError("unterminated string literal")
        if c == "$":
            start, brackets, quote = self.i, 0, ""
            while self.i < n:
                ch = s[self.i]
                if quote:
                    if ch == "\\":
                        self.i += 1
                    elif ch == quote:
                        quote = ""
                elif ch in "'\"" and brackets:
                    quote = ch
                elif ch == "[" or ch == "(":
                    brackets += 1
                elif ch == "]" or (ch == ")" and brackets):
                    brackets -= 1
                elif brackets == 0 and ch in ",)":
                    break
                self.i += 1
            self.paths.append(s[start:self.i].strip())
            return
        if s.startswith("States.", self.i):
            self._call(depth + 1)
            return
        m = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?|null|true|false").match(s, self.i)
        if not m:
            raise _IntrinsicError(f"invalid argument at position {self.i}")
        self.i = m.end()


# --------------------------------------------------------------------------------------------
# the validator

class _Validator:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.names: set[str] = set()
        self.top_lang = JSONPATH
        # a state without a valid Type: its transitions are unknown, so AWS reports no
        # terminal-state or reachability problem for its block
        self.untyped = False

    def add(self, pointer: str, code: str, message: str) -> None:
        self.problems.append(Problem(pointer, code, message))

    # --- generic field checks ---

    def require(self, obj: dict, field: str, ptr: str) -> bool:
        if field not in obj:
            self.add(ptr, SCHEMA, f"These fields are required: [{field}]")
            return False
        return True

    def expect_string(self, obj: dict, field: str, ptr: str) -> bool:
        v = obj.get(field)
        if not isinstance(v, str):
            self.add(_ptr(ptr, field), SCHEMA,
                     f"The value for the field '{field}' must be a STRING, got {_type_name(v)}")
            return False
        return True

    def expect_int(self, obj: dict, field: str, ptr: str, lo: int | None = None,
                   hi: int | None = None, jsonata: bool = False) -> None:
        self._expect_numeric(obj, field, ptr, lo, hi, jsonata, _is_int, "an INTEGER")

    def expect_number(self, obj: dict, field: str, ptr: str, lo: float | None = None,
                      hi: float | None = None, jsonata: bool = False) -> None:
        self._expect_numeric(obj, field, ptr, lo, hi, jsonata, _is_number, "a NUMBER")

    def _expect_numeric(self, obj: dict, field: str, ptr: str, lo: float | None, hi: float | None,
                        jsonata: bool, accepts: Any, what: str) -> None:
        if field not in obj:
            return
        v = obj[field]
        if jsonata and _is_jsonata(v):
            return
        if not accepts(v):
            self.add(_ptr(ptr, field), SCHEMA, f"The value for the field '{field}' must be {what}, got {_type_name(v)}")
            return
        self._range(v, field, ptr, lo, hi)

    def _range(self, v: float, field: str, ptr: str, lo: float | None, hi: float | None) -> None:
        if lo is not None and v < lo:
            self.add(_ptr(ptr, field), SCHEMA,
                     f"The value for the field '{field}' must be greater than or equal to {lo}")
        elif hi is not None and v > hi:
            self.add(_ptr(ptr, field), SCHEMA,
                     f"The value for the field '{field}' must be less than or equal to {hi}")

    def expect_enum(self, obj: dict, field: str, ptr: str, values: tuple[str, ...]) -> None:
        if field in obj and obj[field] not in values:
            self.add(_ptr(ptr, field), SCHEMA, _enum_message(field, values))

    def exclusive(self, obj: dict, a: str, b: str, ptr: str) -> None:
        if a in obj and b in obj:
            self.add(ptr, SCHEMA, f"Fields '{a}' and '{b}' are mutually exclusive")

    def path(self, obj: dict, field: str, ptr: str, reference: bool = False,
             nullable: bool = False, intrinsic: bool = False) -> None:
        """A Path (or Reference Path) field; ``intrinsic`` also allows an intrinsic call."""
        if field not in obj:
            return
        v = obj[field]
        p = _ptr(ptr, field)
        if v is None and nullable:
            return
        if not isinstance(v, str):
            self.add(p, SCHEMA,
                     f"The value for the field '{field}' must be a STRING, got {_type_name(v)}")
            return
        if intrinsic and _INTRINSIC_START.match(v):
            self.intrinsic(v, field, p)
            return
        self.path_text(v, field, p, reference)

    def path_text(self, v: str, field: str, p: str, reference: bool) -> None:
        try:
            parsed = parse_path(v)
        except ValueError:
            if not reference and _jayway_function_path(v):
                return  # AWS accepts Jayway functions (``$.a.length()``) at create time
            if reference:
                self.add(p, INVALID_REFERENCE_PATH,
                         f"The value for the field '{field}' must be a valid ReferencePath: {v}")
            else:
                self.add(p, INVALID_JSON_PATH,
                         f"The value for the field '{field}' must be a valid JSONPath: {v}")
            return
        if reference and not parsed.is_reference:
            self.add(p, INVALID_REFERENCE_PATH,
                     f"The value for the field '{field}' must be a valid ReferencePath: {v}")

    def intrinsic(self, v: str, field: str, p: str, root: str | None = None) -> None:
        try:
            paths = _IntrinsicParser(v).parse()
        except _EscapeError:
            self.not_path_or_intrinsic(field, p if root is None else root)
            return
        except _IntrinsicError as e:
            self.add(p, INVALID_INTRINSIC,
                     f"The value for the field '{field}' must be a valid intrinsic function call: {e}")
            return
        for arg in paths:
            try:
                parse_path(arg)
            except ValueError:
                if _jayway_function_path(arg):
                    continue
                self.add(p, INVALID_INTRINSIC,
                         f"The value for the field '{field}' has an invalid JSONPath argument: {arg}")

    def unknown_fields(self, obj: dict, allowed: frozenset[str], ptr: str) -> None:
        for k in obj:
            if k not in allowed:
                self.add(ptr, SCHEMA, f'The field "{k}" is not supported by Step Functions')

    # --- payload templates (JSONPath) ---

    def template(self, value: Any, ptr: str) -> None:
        """Walk a JSONPath payload template: ``.$`` keys need a path or an intrinsic call.
        A value that is neither is reported at the template (``ptr``), as AWS does."""
        stack = [(value, ptr)]
        while stack:
            node, p = stack.pop()
            if isinstance(node, list):
                for i, item in enumerate(node):
                    if isinstance(item, (dict, list)):
                        stack.append((item, _ptr(p, i)))
                continue
            if not isinstance(node, dict):
                continue
            plain = {k for k in node if not k.endswith(".$")}
            for k, v in node.items():
                kp = _ptr(p, k)
                if k.endswith(".$"):
                    if k[:-2] in plain:
                        self.add(kp, SCHEMA,
                                 f"The field '{k[:-2]}' appears more than once (as '{k[:-2]}' "
                                 f"and '{k}')")
                    self.template_value(k, v, kp, ptr)
                elif isinstance(v, (dict, list)):
                    stack.append((v, kp))

    def template_value(self, key: str, v: Any, p: str, root: str) -> None:
        if not isinstance(v, str):
            self.add(p, SCHEMA,
                     f"The value for the field '{key}' must be a STRING that contains a JSONPath"
                     f" or an intrinsic function call, got {_type_name(v)}")
            return
        s = v.strip()
        if s.startswith("$"):
            self.path_text(v, key, p, reference=False)
        elif s.startswith("States."):
            self.intrinsic(v, key, p, root)
        else:
            self.not_path_or_intrinsic(key, root)

    def not_path_or_intrinsic(self, key: str, p: str) -> None:
        self.add(p, SCHEMA, f"The value for the field '{key}' must be a valid JSONPath or a valid "
                            f"intrinsic function call")

    def template_field(self, obj: dict, field: str, ptr: str, lang: str,
                       object_only: bool = True) -> None:
        if field not in obj:
            return
        v = obj[field]
        p = _ptr(ptr, field)
        if lang == JSONATA:
            if object_only and not isinstance(v, dict) and not _is_jsonata(v):
                self.add(p, SCHEMA, f"The value for the field '{field}' must be an OBJECT or a "
                                    f"JSONata expression, got {_type_name(v)}")
            return
        if object_only and not isinstance(v, dict):
            self.add(p, SCHEMA, f"The value for the field '{field}' must be an OBJECT, "
                                f"got {_type_name(v)}")
            return
        self.template(v, p)

    # --- Assign ---

    def assign(self, obj: dict, ptr: str, lang: str) -> None:
        if "Assign" not in obj:
            return
        v = obj["Assign"]
        p = _ptr(ptr, "Assign")
        if not isinstance(v, dict):
            if lang == JSONATA and _is_jsonata(v):
                return
            self.add(p, SCHEMA, f"The value for the field 'Assign' must be an OBJECT, "
                                f"got {_type_name(v)}")
            return
        seen: set[str] = set()
        for k, val in v.items():
            kp = _ptr(p, k)
            name = k[:-2] if lang == JSONPATH and k.endswith(".$") else k
            if not name.isidentifier():
                self.add(kp, SCHEMA, f"The variable name '{name}' is invalid: variable names must "
                                     f"follow Unicode identifier rules")
            elif len(name) > MAX_VARIABLE_NAME:
                self.add(kp, SCHEMA, f"The variable name '{name}' exceeds the maximum length of "
                                     f"{MAX_VARIABLE_NAME} characters")
            elif name == "states":
                self.add(kp, SCHEMA, "The variable name 'states' is reserved")
            if name in seen:
                self.add(kp, SCHEMA, f"The variable '{name}' is assigned more than once")
            seen.add(name)
            if lang == JSONPATH:
                if k.endswith(".$"):
                    self.template_value(k, val, kp, p)
                elif isinstance(val, (dict, list)):
                    self.template(val, kp)

    # --- machine / States blocks ---

    def machine(self, d: Any) -> None:
        if not isinstance(d, dict):
            self.add("", SCHEMA, f"The state machine definition must be a JSON object, "
                                 f"got {_type_name(d)}")
            return
        self.unknown_fields(d, TOP_FIELDS, "")
        if "QueryLanguage" in d:
            ql = d["QueryLanguage"]
            if ql not in (JSONPATH, JSONATA):
                self.add("/QueryLanguage", SCHEMA,
                         f"The value for the field 'QueryLanguage' must be one of JSONPath, "
                         f"JSONata, got {ql!r}")
            elif ql == JSONATA:
                self.top_lang = JSONATA
        if "Comment" in d:
            self.expect_string(d, "Comment", "")
        if "Version" in d:
            self.expect_string(d, "Version", "")
        self.expect_int(d, "TimeoutSeconds", "", lo=0)
        self.block(d, "")

    def block(self, d: dict, ptr: str) -> None:
        """A ``{StartAt, States}`` container: the machine, a branch or an item processor."""
        missing = [f for f in ("StartAt", "States") if f not in d]
        if missing:  # AWS lists every missing field in one problem
            self.add(ptr, SCHEMA, f"These fields are required: [{', '.join(missing)}]")
        has_start, has_states = "StartAt" in d, "States" in d
        start = d.get("StartAt")
        if has_start and not isinstance(start, str):
            self.expect_string(d, "StartAt", ptr)
            start = None
        states = d.get("States")
        if has_states and not isinstance(states, dict):
            self.add(_ptr(ptr, "States"), SCHEMA,
                     f"The value for the field 'States' must be an OBJECT, got {_type_name(states)}")
            states = None
        if states is None:
            return
        if not states:
            self.add(_ptr(ptr, "States"), SCHEMA, "The field 'States' must contain at least one state")
        sptr = _ptr(ptr, "States")
        edges: dict[str, list[str]] = {}
        terminal = False
        outer_untyped, self.untyped = self.untyped, False
        for name, state in states.items():
            p = _ptr(sptr, name)
            if len(name) > MAX_STATE_NAME:
                self.add(p, SCHEMA, f"State name '{name}' exceeds the maximum length of "
                                    f"{MAX_STATE_NAME} characters")
            if not name:
                self.add(p, SCHEMA, "State name must not be empty")
            if name in self.names:
                self.add(p, DUPLICATE_NAME, f"Duplicate State name: {name}")
            self.names.add(name)
            targets: list[str] = []
            if self.state(state, p, states, targets):
                terminal = True
            edges[name] = targets
        untyped, self.untyped = self.untyped, outer_untyped
        if start is not None and start not in states:
            self.add(_ptr(ptr, "StartAt"), MISSING_TARGET, f"Missing 'Next' target: {start}")
            return
        if not states or start is None or untyped:
            return
        if not terminal:
            self.add(ptr, MISSING_END, "Workflow has no terminal state")
            return
        seen = {start}
        queue = deque([start])
        while queue:
            for t in edges.get(queue.popleft(), ()):
                if t not in seen:
                    seen.add(t)
                    queue.append(t)
        for name in states:
            if name not in seen:
                self.add(_ptr(sptr, name), UNREACHABLE, f'State "{name}" is not reachable.')

    def target(self, obj: dict, field: str, ptr: str, states: dict, targets: list[str]) -> None:
        if field not in obj:
            return
        if not self.expect_string(obj, field, ptr):
            return
        t = obj[field]
        if t in states:
            targets.append(t)
        else:
            self.add(_ptr(ptr, field), MISSING_TARGET, f"Missing 'Next' target: {t}")

    # --- states ---

    def state(self, s: Any, p: str, states: dict, targets: list[str]) -> bool:
        """Validate one state; appends its transition targets; returns True when terminal."""
        if not isinstance(s, dict):
            self.add(p, SCHEMA, f"A state must be a JSON object, got {_type_name(s)}")
            return False
        if not self.require(s, "Type", p):
            self.untyped = True
            return False
        typ = s["Type"]
        if typ not in STATE_TYPES:
            self.add(_ptr(p, "Type"), SCHEMA, _enum_message("Type", AWS_STATE_TYPE_ORDER))
            self.untyped = True
            return False
        lang = self.top_lang
        if "QueryLanguage" in s:
            ql = s["QueryLanguage"]
            if ql not in (JSONPATH, JSONATA):
                self.add(_ptr(p, "QueryLanguage"), SCHEMA,
                         f"The value for the field 'QueryLanguage' must be one of JSONPath, "
                         f"JSONata, got {ql!r}")
            elif ql == JSONPATH and self.top_lang == JSONATA:
                self.add(p, SCHEMA, "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' "
                                    "for whole state machine")
            else:
                lang = ql
        allowed = STATE_FIELDS[typ]
        for k in s:
            if k in allowed:
                if lang == JSONPATH and k in JSONATA_ONLY:
                    self.add(p, SCHEMA, f"The QueryLanguage is set to 'JSONPath', but field '{k}' "
                                        f"is only supported for the 'JSONata' QueryLanguage")
                elif lang == JSONATA and k in JSONPATH_ONLY:
                    self.add(p, SCHEMA, f"The QueryLanguage is set to 'JSONata', but field '{k}' "
                                        f"is only supported for the 'JSONPath' QueryLanguage")
            elif k in ALL_STATE_FIELDS:
                self.add(p, SCHEMA, f"Field '{k}' is not supported")
            else:
                self.add(p, SCHEMA, f'The field "{k}" is not supported by Step Functions')
        if "Comment" in s:
            self.expect_string(s, "Comment", p)

        # common I/O
        if lang == JSONPATH:
            self.path(s, "InputPath", p, nullable=True)
            self.path(s, "OutputPath", p, nullable=True)
            if "ResultPath" in s:
                self.result_path(s, p)
            self.template_field(s, "Parameters", p, lang)
            self.template_field(s, "ResultSelector", p, lang)
        self.assign(s, p, lang)
        if lang == JSONATA:
            self.jsonata_delimiters(s, p)

        terminal = False
        if "Next" in allowed:
            has_next, end = "Next" in s, s.get("End")
            if "End" in s and not isinstance(end, bool):
                self.add(_ptr(p, "End"), SCHEMA,
                         f"The value for the field 'End' must be a BOOLEAN, got {_type_name(end)}")
            if has_next and end is True:
                self.add(p, SCHEMA, "Only one of 'Next' or 'End' can be specified")
            elif not has_next and end is not True:
                self.add(p, SCHEMA, "Either 'Next' or 'End' must be specified")
            terminal = end is True
            self.target(s, "Next", p, states, targets)
        else:
            terminal = typ in ("Succeed", "Fail")

        getattr(self, "state_" + typ.lower())(s, p, lang, states, targets)
        if "Retry" in allowed:
            self.retry(s, p)
            self.catch(s, p, lang, states, targets)
        return terminal

    def jsonata_delimiters(self, s: dict, p: str) -> None:
        """In a JSONata state, a string that opens ``{%`` must close with ``%}``."""
        stack = [(v, _ptr(p, k)) for k, v in s.items() if k not in _NOT_JSONATA_VALUES]
        while stack:
            node, np = stack.pop()
            if isinstance(node, str):
                if node.startswith("{%") and not _is_jsonata(node):
                    self.add(np, SCHEMA, "A JSONata expression must start with '{%' and end "
                                         "with '%}'")
            elif isinstance(node, dict):
                stack.extend((v, _ptr(np, k)) for k, v in node.items() if k != "Comment")
            elif isinstance(node, list):
                stack.extend((v, _ptr(np, i)) for i, v in enumerate(node))

    def result_path(self, s: dict, p: str) -> None:
        v = s["ResultPath"]
        if v is None:
            return
        if isinstance(v, str):
            t = v.strip()
            if t.startswith("$$"):
                self.add(_ptr(p, "ResultPath"), INVALID_REFERENCE_PATH,
                         f"The value for the field 'ResultPath' must not reference the context "
                         f"object: {v}")
                return
            if t.startswith("$") and len(t) > 1 and (t[1].isalpha() or t[1] == "_"):
                self.add(_ptr(p, "ResultPath"), INVALID_REFERENCE_PATH,
                         f"The value for the field 'ResultPath' must not reference a variable: {v}")
                return
        self.path(s, "ResultPath", p, reference=True, nullable=True)

    def state_task(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        if self.require(s, "Resource", p) and self.expect_string(s, "Resource", p):
            res = s["Resource"]
            rp = _ptr(p, "Resource")
            if res.endswith(".sync") or res.endswith(".sync:2"):
                self.add(rp, SCHEMA,
                         "Express state machine does not support '.sync' service integration")
            elif res.endswith(".waitForTaskToken"):
                # sic: AWS's message ends with a space
                self.add(rp, SCHEMA, "Express state machine does not support "
                                     "'.waitForTaskToken' service integration ")
            elif _ACTIVITY_ARN.match(res):
                self.add(rp, SCHEMA, "Express state machine does not support Activity ARN")
        self.exclusive(s, "TimeoutSeconds", "TimeoutSecondsPath", p)
        self.exclusive(s, "HeartbeatSeconds", "HeartbeatSecondsPath", p)
        self.expect_int(s, "TimeoutSeconds", p, lo=1, hi=MAX_RETRY_SECONDS, jsonata=lang == JSONATA)
        self.expect_int(s, "HeartbeatSeconds", p, lo=1, hi=MAX_RETRY_SECONDS,
                        jsonata=lang == JSONATA)
        if lang == JSONPATH:
            self.path(s, "TimeoutSecondsPath", p, reference=True)
            self.path(s, "HeartbeatSecondsPath", p, reference=True)
        t, h = s.get("TimeoutSeconds"), s.get("HeartbeatSeconds")
        if isinstance(t, int) and isinstance(h, int) and _is_int(t) and _is_int(h) and h >= t:
            self.add(_ptr(p, "HeartbeatSeconds"), SCHEMA,
                     "The value for the field 'HeartbeatSeconds' must be smaller than the value "
                     "for the field 'TimeoutSeconds'")
        if "Credentials" in s:
            self.template_field(s, "Credentials", p, lang)
            cred = s["Credentials"]
            if isinstance(cred, dict) and "RoleArn" not in cred and (
                    lang == JSONATA or "RoleArn.$" not in cred):
                self.add(_ptr(p, "Credentials"), SCHEMA, "The field 'RoleArn' is required but was missing")

    def state_pass(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        pass  # Result is any JSON; Parameters/ResultPath checked in common I/O

    def state_succeed(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        pass

    def state_fail(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        self.exclusive(s, "Error", "ErrorPath", p)
        self.exclusive(s, "Cause", "CausePath", p)
        for f in ("Error", "Cause"):
            if f in s:
                self.expect_string(s, f, p)
        if lang == JSONPATH:
            self.path(s, "ErrorPath", p, reference=True, intrinsic=True)
            self.path(s, "CausePath", p, reference=True, intrinsic=True)

    def state_wait(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        present = [f for f in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if f in s]
        if len(present) != 1:
            self.add(p, SCHEMA, "Exactly one of 'Seconds', 'Timestamp', 'SecondsPath' or "
                                "'TimestampPath' is required" +
                     (f", got {', '.join(present)}" if present else ""))
        jsonata = lang == JSONATA
        self.expect_int(s, "Seconds", p, lo=0, hi=MAX_RETRY_SECONDS, jsonata=jsonata)
        if "Timestamp" in s:
            v = s["Timestamp"]
            if not (jsonata and _is_jsonata(v)) and parse_timestamp(v) is None:
                self.add(_ptr(p, "Timestamp"), SCHEMA, RFC3339_MESSAGE)
        if lang == JSONPATH:
            self.path(s, "SecondsPath", p, reference=True)
            self.path(s, "TimestampPath", p, reference=True)

    # --- Choice ---

    def state_choice(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        self.target(s, "Default", p, states, targets)
        if not self.require(s, "Choices", p):
            return
        choices = s["Choices"]
        cp = _ptr(p, "Choices")
        if not isinstance(choices, list) or not choices:
            self.add(cp, SCHEMA, "The value for the field 'Choices' must be a non-empty ARRAY")
            return
        for i, rule in enumerate(choices):
            rp = _ptr(cp, i)
            if not isinstance(rule, dict):
                self.add(rp, SCHEMA, f"A Choice Rule must be a JSON object, got {_type_name(rule)}")
                continue
            if self.require(rule, "Next", rp):
                self.target(rule, "Next", rp, states, targets)
            if lang == JSONATA:
                self.jsonata_rule(rule, rp)
            else:
                self.unknown_fields(
                    {k: v for k, v in rule.items() if k not in ("Next", "Assign")},
                    JSONPATH_RULE_FIELDS | {"Condition", "Output"}, rp)
                for k in ("Condition", "Output"):
                    if k in rule:
                        self.add(rp, SCHEMA, f"The QueryLanguage is set to 'JSONPath', but field "
                                             f"'{k}' is only supported for the 'JSONata' "
                                             f"QueryLanguage")
                self.jsonpath_rule(rule, rp, nested=False)
            self.assign(rule, rp, lang)

    def jsonata_rule(self, rule: dict, rp: str) -> None:
        for k in rule:
            if k not in JSONATA_RULE_FIELDS:
                if k in JSONPATH_RULE_FIELDS:
                    self.add(rp, SCHEMA, f"The QueryLanguage is set to 'JSONata', but field '{k}' "
                                         f"is only supported for the 'JSONPath' QueryLanguage")
                else:
                    self.add(rp, SCHEMA, f'The field "{k}" is not supported by Step Functions')
        if self.require(rule, "Condition", rp):
            c = rule["Condition"]
            if not isinstance(c, bool) and not _is_jsonata(c):
                self.add(_ptr(rp, "Condition"), SCHEMA,
                         "The value for the field 'Condition' must be a BOOLEAN or a JSONata "
                         "expression enclosed in {% %}")

    def jsonpath_rule(self, rule: dict, rp: str, nested: bool) -> None:
        """A JSONPath Choice Rule: a boolean expression or a data-test expression."""
        stack = [(rule, rp, nested)]
        while stack:
            r, p, inner = stack.pop()
            if inner:
                for k in r:
                    if k in ("Next", "Assign"):
                        self.add(p, SCHEMA, f"Field '{k}' is not supported in a nested Choice Rule")
                    elif k not in JSONPATH_RULE_FIELDS:
                        self.add(p, SCHEMA, f'The field "{k}" is not supported by Step Functions')
            ops = [k for k in r if k in COMPARISON_OPS]
            bools = [k for k in r if k in BOOLEAN_OPS]
            if len(ops) + len(bools) != 1:
                if ops or bools:
                    self.add(p, SCHEMA, "A Choice Rule must have exactly one comparison operator "
                                        f"or boolean operator, got {', '.join(bools + ops)}")
                else:
                    self.add(p, SCHEMA, "A Choice Rule must have a comparison operator "
                                        "or a boolean operator (And, Or, Not)")
            if bools:
                if "Variable" in r:
                    self.add(p, SCHEMA, "Field 'Variable' is not supported with "
                                        f"'{bools[0]}'")
                for b in bools:
                    v = r[b]
                    bp = _ptr(p, b)
                    if b == "Not":
                        if isinstance(v, dict):
                            stack.append((v, bp, True))
                        else:
                            self.add(bp, SCHEMA, f"The value for the field 'Not' must be an "
                                                 f"OBJECT, got {_type_name(v)}")
                    elif not isinstance(v, list) or not v:
                        self.add(bp, SCHEMA, f"The value for the field '{b}' must be a "
                                             f"non-empty ARRAY")
                    else:
                        for j, sub in enumerate(v):
                            if isinstance(sub, dict):
                                stack.append((sub, _ptr(bp, j), True))
                            else:
                                self.add(_ptr(bp, j), SCHEMA, f"A Choice Rule must be a JSON "
                                                              f"object, got {_type_name(sub)}")
            elif ops:
                if self.require(r, "Variable", p):
                    self.path(r, "Variable", p)
                for op in ops:
                    self.operator_value(r, op, p)
            elif "Variable" in r:
                self.path(r, "Variable", p)

    def operator_value(self, r: dict, op: str, p: str) -> None:
        kind = COMPARISON_OPS[op]
        v = r[op]
        ok = {
            "string": isinstance(v, str),
            "number": _is_number(v),
            "boolean": isinstance(v, bool),
            "timestamp": isinstance(v, str),
            "path": isinstance(v, str),
        }[kind]
        if not ok:
            want = {"string": "a STRING", "number": "a NUMBER", "boolean": "a BOOLEAN",
                    "timestamp": "a STRING", "path": "a STRING"}[kind]
            self.add(_ptr(p, op), SCHEMA,
                     f"The value for the field '{op}' must be {want}, got {_type_name(v)}")
            return
        if kind == "path":
            self.path(r, op, p)
        elif kind == "timestamp" and parse_timestamp(v) is None:
            self.add(_ptr(p, op), SCHEMA, RFC3339_MESSAGE)

    # --- Parallel / Map ---

    def state_parallel(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        if lang == JSONATA:
            self.template_field(s, "Arguments", p, lang, object_only=False)
        if not self.require(s, "Branches", p):
            return
        branches = s["Branches"]
        bp = _ptr(p, "Branches")
        if not isinstance(branches, list) or not branches:
            self.add(bp, SCHEMA, "The value for the field 'Branches' must be a non-empty ARRAY")
            return
        for i, b in enumerate(branches):
            ip = _ptr(bp, i)
            if not isinstance(b, dict):
                self.add(ip, SCHEMA, f"A branch must be a JSON object, got {_type_name(b)}")
                continue
            self.nested_block(b, ip, BRANCH_FIELDS)

    def nested_block(self, b: dict, ptr: str, allowed: frozenset[str]) -> None:
        for k in b:
            if k not in allowed:
                if k == "QueryLanguage":
                    self.add(ptr, SCHEMA, "Field 'QueryLanguage' is not supported")
                else:
                    self.add(ptr, SCHEMA, f'The field "{k}" is not supported by Step Functions')
        if "Comment" in b:
            self.expect_string(b, "Comment", ptr)
        self.block(b, ptr)

    def state_map(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        jsonata = lang == JSONATA
        has_proc, has_iter = "ItemProcessor" in s, "Iterator" in s
        if has_proc and has_iter:
            self.add(p, SCHEMA, "Fields 'ItemProcessor' and 'Iterator' are mutually exclusive")
        elif not has_proc and not has_iter:
            self.add(p, SCHEMA, "Field 'ItemProcessor' is required")
        for f in ("ItemProcessor", "Iterator"):
            if f not in s:
                continue
            proc, pp = s[f], _ptr(p, f)
            if not isinstance(proc, dict):
                self.add(pp, SCHEMA, f"The value for the field '{f}' must be an OBJECT, "
                                     f"got {_type_name(proc)}")
                continue
            self.nested_block(proc, pp, PROCESSOR_FIELDS)
            cfg = proc.get("ProcessorConfig")
            if cfg is not None:
                cp = _ptr(pp, "ProcessorConfig")
                if not isinstance(cfg, dict):
                    self.add(cp, SCHEMA, "The value for the field 'ProcessorConfig' must be an "
                                         f"OBJECT, got {_type_name(cfg)}")
                else:
                    self.unknown_fields(cfg, frozenset({"Mode", "ExecutionType"}), cp)
                    self.expect_enum(cfg, "Mode", cp, ("INLINE", "DISTRIBUTED"))
                    self.expect_enum(cfg, "ExecutionType", cp, ("STANDARD", "EXPRESS"))
        self.exclusive(s, "ItemSelector", "Parameters", p)
        self.template_field(s, "ItemSelector", p, lang)
        if jsonata and "Items" in s:
            v = s["Items"]
            if not isinstance(v, list) and not _is_jsonata(v):
                self.add(_ptr(p, "Items"), SCHEMA, "The value for the field 'Items' must be an "
                                                   "ARRAY or a JSONata expression")
        if not jsonata:
            self.path(s, "ItemsPath", p, reference=True, nullable=True)
            for f in ("MaxConcurrencyPath", "ToleratedFailurePercentagePath",
                      "ToleratedFailureCountPath"):
                self.path(s, f, p, reference=True)
        self.exclusive(s, "MaxConcurrency", "MaxConcurrencyPath", p)
        self.exclusive(s, "ToleratedFailurePercentage", "ToleratedFailurePercentagePath", p)
        self.exclusive(s, "ToleratedFailureCount", "ToleratedFailureCountPath", p)
        self.expect_int(s, "MaxConcurrency", p, lo=0, jsonata=jsonata)
        self.expect_number(s, "ToleratedFailurePercentage", p, lo=0, hi=100, jsonata=jsonata)
        self.expect_int(s, "ToleratedFailureCount", p, lo=0, jsonata=jsonata)
        if "Label" in s and self.expect_string(s, "Label", p):
            label = s["Label"]
            if len(label) > MAX_LABEL:
                self.add(_ptr(p, "Label"), SCHEMA,
                         f"The value for the field 'Label' must be at most {MAX_LABEL} characters")
            elif _LABEL_BAD.search(label):
                self.add(_ptr(p, "Label"), SCHEMA, "The value for the field 'Label' must not "
                                                   "contain whitespace or special characters")
        for f, fields in (("ItemReader", ITEM_READER_FIELDS), ("ResultWriter", RESULT_WRITER_FIELDS),
                          ("ItemBatcher", ITEM_BATCHER_FIELDS)):
            if f not in s:
                continue
            v, fp = s[f], _ptr(p, f)
            if not isinstance(v, dict):
                self.add(fp, SCHEMA, f"The value for the field '{f}' must be an OBJECT, "
                                     f"got {_type_name(v)}")
                continue
            self.unknown_fields(v, fields, fp)
            if f != "ItemBatcher":
                if self.require(v, "Resource", fp):
                    self.expect_string(v, "Resource", fp)
                if not jsonata:
                    self.template_field(v, "Parameters", fp, lang)
            elif not jsonata:
                self.template_field(v, "BatchInput", fp, lang)

    # --- Retry / Catch ---

    def error_equals(self, obj: dict, p: str, last: bool, what: str) -> list[str]:
        if not self.require(obj, "ErrorEquals", p):
            return []
        v = obj["ErrorEquals"]
        ep = _ptr(p, "ErrorEquals")
        if not isinstance(v, list) or not v:
            self.add(ep, SCHEMA, "The value for the field 'ErrorEquals' must be a non-empty ARRAY")
            return []
        for j, e in enumerate(v):
            if not isinstance(e, str):
                self.add(_ptr(ep, j), SCHEMA, f"The values in 'ErrorEquals' must be STRINGs, "
                                              f"got {_type_name(e)}")
        if ALL in v:
            if len(v) != 1:
                self.add(ep, SCHEMA, f"'{ALL}' must appear alone in 'ErrorEquals'")
            if not last:
                self.add(ep, SCHEMA, f"A {what} with '{ALL}' must be the last {what}")
        return v

    def retry(self, s: dict, p: str) -> None:
        if "Retry" not in s:
            return
        rs, rp = s["Retry"], _ptr(p, "Retry")
        if not isinstance(rs, list):
            self.add(rp, SCHEMA, f"The value for the field 'Retry' must be an ARRAY, "
                                 f"got {_type_name(rs)}")
            return
        for i, r in enumerate(rs):
            ip = _ptr(rp, i)
            if not isinstance(r, dict):
                self.add(ip, SCHEMA, f"A Retrier must be a JSON object, got {_type_name(r)}")
                continue
            self.unknown_fields(r, RETRY_FIELDS, ip)
            self.error_equals(r, ip, i == len(rs) - 1, "Retrier")
            self.expect_int(r, "IntervalSeconds", ip, lo=1, hi=MAX_RETRY_SECONDS)
            self.expect_int(r, "MaxAttempts", ip, lo=0, hi=MAX_RETRY_SECONDS)
            self.expect_number(r, "BackoffRate", ip, lo=1.0)
            self.expect_int(r, "MaxDelaySeconds", ip, lo=1, hi=MAX_DELAY_SECONDS)
            self.expect_enum(r, "JitterStrategy", ip, ("FULL", "NONE"))
            if "Comment" in r:
                self.expect_string(r, "Comment", ip)

    def catch(self, s: dict, p: str, lang: str, states: dict, targets: list[str]) -> None:
        if "Catch" not in s:
            return
        cs, cp = s["Catch"], _ptr(p, "Catch")
        if not isinstance(cs, list):
            self.add(cp, SCHEMA, f"The value for the field 'Catch' must be an ARRAY, "
                                 f"got {_type_name(cs)}")
            return
        for i, c in enumerate(cs):
            ip = _ptr(cp, i)
            if not isinstance(c, dict):
                self.add(ip, SCHEMA, f"A Catcher must be a JSON object, got {_type_name(c)}")
                continue
            for k in c:
                if k not in CATCH_FIELDS:
                    self.add(ip, SCHEMA, f'The field "{k}" is not supported by Step Functions')
                elif lang == JSONPATH and k == "Output":
                    self.add(ip, SCHEMA, "The QueryLanguage is set to 'JSONPath', but field "
                                         "'Output' is only supported for the 'JSONata' QueryLanguage")
                elif lang == JSONATA and k == "ResultPath":
                    self.add(ip, SCHEMA, "The QueryLanguage is set to 'JSONata', but field "
                                         "'ResultPath' is only supported for the 'JSONPath' "
                                         "QueryLanguage")
            self.error_equals(c, ip, i == len(cs) - 1, "Catcher")
            if self.require(c, "Next", ip):
                self.target(c, "Next", ip, states, targets)
            if lang == JSONPATH and "ResultPath" in c:
                self.result_path(c, ip)
            self.assign(c, ip, lang)
            if "Comment" in c:
                self.expect_string(c, "Comment", ip)


def validate(definition: Any) -> list[Problem]:
    """Every problem in an already-parsed ASL definition; ``[]`` when it is valid."""
    not_json = json_problems(definition)
    if not_json:  # the checks below (and the compiler) may assume JSON: report only these
        return not_json
    v = _Validator()
    v.machine(definition)
    if not v.problems and isinstance(definition, dict):
        _variable_scopes(definition, "", frozenset(), v)
    return v.problems


def _assigned_names(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(variable name, JSON pointer of the Assign) for every Assign directly on a state."""
    found: list[tuple[str, str]] = []

    def collect(assign: Any, where: str) -> None:
        if isinstance(assign, dict):
            for key in assign:
                if isinstance(key, str):
                    found.append((key[:-2] if key.endswith(".$") else key, where))

    collect(state.get("Assign"), "/Assign")
    for i, rule in enumerate(state.get("Choices") or []):
        if isinstance(rule, dict):
            collect(rule.get("Assign"), f"/Choices/{i}/Assign")
    for i, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict):
            collect(catcher.get("Assign"), f"/Catch/{i}/Assign")
    return found


def _variable_scopes(block: dict[str, Any], ptr: str, outer: frozenset[str], v: _Validator) -> None:
    """Parallel branches and Map iterations are inner scopes: they read the variables of the
    scopes around them but must not assign one of those names (AWS: names are unique across
    nested scopes). A Catcher's Assign belongs to the scope of the state it is on, and runs once
    that state's branches or iterations have ended: a name only a Parallel's or Map's own Catcher
    assigns may also be assigned inside its branches (AWS accepts that)."""
    states = block.get("States")
    if not isinstance(states, dict):
        return
    here: set[str] = set()
    # name -> the states assigning it other than through a Catcher
    by_state: dict[str, set[str]] = {}
    caught: dict[str, set[str]] = {}  # state -> names its Catchers assign
    for name, state in states.items():
        if isinstance(state, dict):
            for var, where in _assigned_names(state):
                here.add(var)
                if where.startswith("/Catch/"):
                    caught.setdefault(name, set()).add(var)
                else:
                    by_state.setdefault(var, set()).add(name)
                if var in outer:
                    v.add(_ptr(ptr, "States", name) + where, SCHEMA,
                          f"The variable '{var}' is already assigned in an outer scope; a Parallel branch "
                          "or Map iteration may read it but not assign it")
    inner = outer | here
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        sp = _ptr(ptr, "States", name)
        seen = inner
        own = caught.get(name)
        if own:
            # names assigned only by this state's Catchers (no other state of this scope, no outer one)
            seen = inner - {var for var in own
                            if var not in outer and not by_state.get(var)
                            and not any(var in c for other, c in caught.items() if other != name)}
        for i, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                _variable_scopes(branch, _ptr(sp, "Branches", i), seen, v)
        for field in ("ItemProcessor", "Iterator"):
            proc = state.get(field)
            if isinstance(proc, dict):
                distributed = (proc.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
                # a Distributed Map's iterations cannot see outer variables at all
                _variable_scopes(proc, _ptr(sp, field), frozenset() if distributed else seen, v)


MAX_JSON_PROBLEMS = 100  # a definition full of NaN lists this many; the message stays bounded


def json_problems(definition: Any) -> list[Problem]:
    """Where a definition given as Python data is not JSON express can keep: a key that is not a
    string, NaN or an infinity, an integer outside the exact range, a value of another type, or
    arrays and objects nested more than :data:`express.asl.limits.MAX_DEPTH` levels (its output could
    never be written). A walk over the nodes, without recursion."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(definition, "", 1)]
    while stack and len(problems) < MAX_JSON_PROBLEMS:
        node, p, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                problems.append(Problem(p, SCHEMA, f"The definition nests arrays and objects more than "
                                                   f"{MAX_DEPTH} levels deep here (depth {depth}); the limit is "
                                                   f"{MAX_DEPTH}"))
                continue
            if isinstance(node, dict):
                children = []
                for key, child in node.items():
                    if not isinstance(key, str):
                        problems.append(Problem(p, SCHEMA, f"The object key {key!r} is not a string: JSON "
                                                           f"object keys are strings"))
                        continue
                    children.append((child, _ptr(p, key), depth + 1))
            else:
                children = [(child, _ptr(p, i), depth + 1) for i, child in enumerate(node)]
            stack.extend(reversed(children))
        elif isinstance(node, float):
            if not math.isfinite(node):
                problems.append(Problem(p, SCHEMA, f"The number {node!r} is not JSON: JSON numbers are finite"))
        elif isinstance(node, int):
            if not MIN_INT <= node <= MAX_INT:
                problems.append(Problem(p, SCHEMA, f"The integer {node} is outside the range {MIN_INT} to "
                                                   f"{MAX_INT} that is kept exactly; write it as a string"))
        elif node is not None and not isinstance(node, str):
            problems.append(Problem(p, SCHEMA, f"A value of Python type {type(node).__name__} is not JSON"))
    return problems
