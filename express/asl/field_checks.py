"""The checks every part of a definition shares: the problem list, value types, ranges and
enums, paths, intrinsic calls, payload templates, Assign, transitions and ResultPath.

:class:`FieldChecks` is the base of the validator: :class:`express.asl.state_rules.StateRules`
adds the fields of each state type, :mod:`express.asl.validation` the walk over the definition.
Each problem carries an AWS diagnostic code, an AWS-style message and an RFC 6901 JSON pointer.
"""
from __future__ import annotations

import math
import re
from typing import Any

from express.asl.definition_fields import MAX_VARIABLE_NAME, NOT_JSONATA_VALUES
from express.asl.errors import Problem
from express.asl.intrinsic_parser import IntrinsicSyntaxError, is_intrinsic, parse_intrinsic
from express.asl.jsonpath import parse_path
from express.asl.payload import json_type
from express.asl.query_language import JSONATA, JSONPATH, is_jsonata

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


# --------------------------------------------------------------------------------------------
# helpers

def _esc(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(base: str, *tokens: Any) -> str:
    return base + "".join("/" + _esc(t) for t in tokens)


def enum_message(field: str, values: tuple[str, ...]) -> str:
    return f"The field '{field}' should have one of these values: [{', '.join(values)}]"


def is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and math.isfinite(v) and v.is_integer()


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_JAYWAY_FN = re.compile(
    r"\.(min|max|avg|stddev|length|sum|keys|concat|append|first|last|index)\([^()]*\)\s*$")


def jayway_function_path(v: str) -> bool:
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
# the checks


class FieldChecks:
    """Collects the problems found; each check reports at ``ptr`` (the JSON pointer of the object
    holding the field) or at the field itself, as AWS does for that rule."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, where: str, code: str, message: str) -> None:
        self.problems.append(Problem(where, code, message))

    # --- generic field checks ---

    def require(self, obj: dict, field: str, ptr: str) -> bool:
        if field not in obj:
            self.add(ptr, SCHEMA, f"These fields are required: [{field}]")
            return False
        return True

    def expect_string(self, obj: dict, field: str, ptr: str) -> bool:
        v = obj.get(field)
        if not isinstance(v, str):
            self.add(pointer(ptr, field), SCHEMA,
                     f"The value for the field '{field}' must be a STRING, got {json_type(v)}")
            return False
        return True

    def expect_int(self, obj: dict, field: str, ptr: str, lo: int | None = None,
                   hi: int | None = None, jsonata: bool = False) -> None:
        self._expect_numeric(obj, field, ptr, lo, hi, jsonata, is_int, "an INTEGER")

    def expect_number(self, obj: dict, field: str, ptr: str, lo: float | None = None,
                      hi: float | None = None, jsonata: bool = False) -> None:
        self._expect_numeric(obj, field, ptr, lo, hi, jsonata, is_number, "a NUMBER")

    def _expect_numeric(self, obj: dict, field: str, ptr: str, lo: float | None, hi: float | None,
                        jsonata: bool, accepts: Any, what: str) -> None:
        if field not in obj:
            return
        v = obj[field]
        if jsonata and is_jsonata(v):
            return
        if not accepts(v):
            self.add(pointer(ptr, field), SCHEMA, f"The value for the field '{field}' must be {what}, got {json_type(v)}")
            return
        self._range(v, field, ptr, lo, hi)

    def _range(self, v: float, field: str, ptr: str, lo: float | None, hi: float | None) -> None:
        if lo is not None and v < lo:
            self.add(pointer(ptr, field), SCHEMA,
                     f"The value for the field '{field}' must be greater than or equal to {lo}")
        elif hi is not None and v > hi:
            self.add(pointer(ptr, field), SCHEMA,
                     f"The value for the field '{field}' must be less than or equal to {hi}")

    def expect_enum(self, obj: dict, field: str, ptr: str, values: tuple[str, ...]) -> None:
        if field in obj and obj[field] not in values:
            self.add(pointer(ptr, field), SCHEMA, enum_message(field, values))

    def exclusive(self, obj: dict, a: str, b: str, ptr: str) -> None:
        if a in obj and b in obj:
            self.add(ptr, SCHEMA, f"Fields '{a}' and '{b}' are mutually exclusive")

    def path(self, obj: dict, field: str, ptr: str, reference: bool = False,
             nullable: bool = False, intrinsic: bool = False) -> None:
        """A Path (or Reference Path) field; ``intrinsic`` also allows an intrinsic call."""
        if field not in obj:
            return
        v = obj[field]
        p = pointer(ptr, field)
        if v is None and nullable:
            return
        if not isinstance(v, str):
            self.add(p, SCHEMA,
                     f"The value for the field '{field}' must be a STRING, got {json_type(v)}")
            return
        if intrinsic and is_intrinsic(v):
            self.intrinsic(v, field, p)
            return
        self.path_text(v, field, p, reference)

    def path_text(self, v: str, field: str, p: str, reference: bool) -> None:
        try:
            parsed = parse_path(v)
        except ValueError:
            if not reference and jayway_function_path(v):
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
        """An intrinsic call (``root``: the payload template it is in, where AWS reports a call
        with an open escape: as neither a path nor a call)."""
        try:
            call = parse_intrinsic(v)
        except IntrinsicSyntaxError as e:
            self.add(p, INVALID_INTRINSIC,
                     f"The value for the field '{field}' must be a valid intrinsic function call: {e}")
            return
        if call.escape_error() is not None:
            self.not_path_or_intrinsic(field, p if root is None else root)
            return
        for arg in call.paths():
            try:
                parse_path(arg)
            except ValueError:
                if jayway_function_path(arg):
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
                        stack.append((item, pointer(p, i)))
                continue
            if not isinstance(node, dict):
                continue
            plain = {k for k in node if not k.endswith(".$")}
            for k, v in node.items():
                kp = pointer(p, k)
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
                     f" or an intrinsic function call, got {json_type(v)}")
            return
        if is_intrinsic(v):
            self.intrinsic(v, key, p, root)
        elif v.strip().startswith("$"):
            self.path_text(v, key, p, reference=False)
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
        p = pointer(ptr, field)
        if lang == JSONATA:
            if object_only and not isinstance(v, dict) and not is_jsonata(v):
                self.add(p, SCHEMA, f"The value for the field '{field}' must be an OBJECT or a "
                                    f"JSONata expression, got {json_type(v)}")
            return
        if object_only and not isinstance(v, dict):
            self.add(p, SCHEMA, f"The value for the field '{field}' must be an OBJECT, "
                                f"got {json_type(v)}")
            return
        self.template(v, p)

    # --- Assign ---

    def assign(self, obj: dict, ptr: str, lang: str) -> None:
        if "Assign" not in obj:
            return
        v = obj["Assign"]
        p = pointer(ptr, "Assign")
        if not isinstance(v, dict):
            if lang == JSONATA and is_jsonata(v):
                return
            self.add(p, SCHEMA, f"The value for the field 'Assign' must be an OBJECT, "
                                f"got {json_type(v)}")
            return
        seen: set[str] = set()
        for k, val in v.items():
            kp = pointer(p, k)
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

    # --- transitions, JSONata delimiters, ResultPath ---

    def target(self, obj: dict, field: str, ptr: str, states: dict, targets: list[str]) -> None:
        if field not in obj:
            return
        if not self.expect_string(obj, field, ptr):
            return
        t = obj[field]
        if t in states:
            targets.append(t)
        else:
            self.add(pointer(ptr, field), MISSING_TARGET, f"Missing 'Next' target: {t}")

    def jsonata_delimiters(self, s: dict, p: str) -> None:
        """In a JSONata state, a string that opens ``{%`` must close with ``%}``."""
        stack = [(v, pointer(p, k)) for k, v in s.items() if k not in NOT_JSONATA_VALUES]
        while stack:
            node, np = stack.pop()
            if isinstance(node, str):
                if node.startswith("{%") and not is_jsonata(node):
                    self.add(np, SCHEMA, "A JSONata expression must start with '{%' and end "
                                         "with '%}'")
            elif isinstance(node, dict):
                stack.extend((v, pointer(np, k)) for k, v in node.items() if k != "Comment")
            elif isinstance(node, list):
                stack.extend((v, pointer(np, i)) for i, v in enumerate(node))

    def result_path(self, s: dict, p: str) -> None:
        v = s["ResultPath"]
        if v is None:
            return
        if isinstance(v, str):
            t = v.strip()
            if t.startswith("$$"):
                self.add(pointer(p, "ResultPath"), INVALID_REFERENCE_PATH,
                         f"The value for the field 'ResultPath' must not reference the context "
                         f"object: {v}")
                return
            if t.startswith("$") and len(t) > 1 and (t[1].isalpha() or t[1] == "_"):
                self.add(pointer(p, "ResultPath"), INVALID_REFERENCE_PATH,
                         f"The value for the field 'ResultPath' must not reference a variable: {v}")
                return
        self.path(s, "ResultPath", p, reference=True, nullable=True)

