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

The checks live in their own modules: :mod:`express.asl.field_checks` (values, paths, intrinsic
calls, payload templates, Assign), :mod:`express.asl.state_rules` (the fields of each state type,
Retry, Catch), :mod:`express.asl.definition_fields` (which fields each part may hold); this one
walks the definition (blocks, states, transitions, reachability) and the variable scopes, and
checks that Python data is JSON at all (:func:`json_problems`).
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any

from express.asl.definition_fields import (
    ALL_STATE_FIELDS,
    AWS_STATE_TYPE_ORDER,
    JSONATA_ONLY,
    JSONPATH_ONLY,
    MAX_STATE_NAME,
    STATE_FIELDS,
    STATE_TYPES,
    TOP_FIELDS,
)
from express.asl.errors import Problem
from express.asl.field_checks import (
    DUPLICATE_NAME,
    MISSING_END,
    MISSING_TARGET,
    SCHEMA,
    UNREACHABLE,
    enum_message,
    pointer,
)
from express.asl.limits import MAX_DEPTH, MAX_INT, MIN_INT
from express.asl.payload import json_type
from express.asl.query_language import JSONATA, JSONPATH
from express.asl.state_rules import StateRules


class _Validator(StateRules):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()  # every state name so far: names are unique machine-wide
        self.top_lang = JSONPATH
        # a state without a valid Type: its transitions are unknown, so AWS reports no
        # terminal-state or reachability problem for its block
        self.untyped = False

    # --- machine / States blocks ---

    def machine(self, d: Any) -> None:
        if not isinstance(d, dict):
            self.add("", SCHEMA, f"The state machine definition must be a JSON object, "
                                 f"got {json_type(d)}")
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
            self.add(pointer(ptr, "States"), SCHEMA,
                     f"The value for the field 'States' must be an OBJECT, got {json_type(states)}")
            states = None
        if states is None:
            return
        if not states:
            self.add(pointer(ptr, "States"), SCHEMA, "The field 'States' must contain at least one state")
        sptr = pointer(ptr, "States")
        edges: dict[str, list[str]] = {}
        terminal = False
        outer_untyped, self.untyped = self.untyped, False
        for name, state in states.items():
            p = pointer(sptr, name)
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
            self.add(pointer(ptr, "StartAt"), MISSING_TARGET, f"Missing 'Next' target: {start}")
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
                self.add(pointer(sptr, name), UNREACHABLE, f'State "{name}" is not reachable.')

    # --- states ---

    def state(self, s: Any, p: str, states: dict, targets: list[str]) -> bool:
        """Validate one state; appends its transition targets; returns True when terminal."""
        if not isinstance(s, dict):
            self.add(p, SCHEMA, f"A state must be a JSON object, got {json_type(s)}")
            return False
        if not self.require(s, "Type", p):
            self.untyped = True
            return False
        typ = s["Type"]
        if typ not in STATE_TYPES:
            self.add(pointer(p, "Type"), SCHEMA, enum_message("Type", AWS_STATE_TYPE_ORDER))
            self.untyped = True
            return False
        lang = self.top_lang
        if "QueryLanguage" in s:
            ql = s["QueryLanguage"]
            if ql not in (JSONPATH, JSONATA):
                self.add(pointer(p, "QueryLanguage"), SCHEMA,
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
                self.add(pointer(p, "End"), SCHEMA,
                         f"The value for the field 'End' must be a BOOLEAN, got {json_type(end)}")
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
                    v.add(pointer(ptr, "States", name) + where, SCHEMA,
                          f"The variable '{var}' is already assigned in an outer scope; a Parallel branch "
                          "or Map iteration may read it but not assign it")
    inner = outer | here
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        sp = pointer(ptr, "States", name)
        seen = inner
        own = caught.get(name)
        if own:
            # names assigned only by this state's Catchers (no other state of this scope, no outer one)
            seen = inner - {var for var in own
                            if var not in outer and not by_state.get(var)
                            and not any(var in c for other, c in caught.items() if other != name)}
        for i, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                _variable_scopes(branch, pointer(sp, "Branches", i), seen, v)
        for field in ("ItemProcessor", "Iterator"):
            proc = state.get(field)
            if isinstance(proc, dict):
                distributed = (proc.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
                # a Distributed Map's iterations cannot see outer variables at all
                _variable_scopes(proc, pointer(sp, field), frozenset() if distributed else seen, v)


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
                    children.append((child, pointer(p, key), depth + 1))
            else:
                children = [(child, pointer(p, i), depth + 1) for i, child in enumerate(node)]
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
