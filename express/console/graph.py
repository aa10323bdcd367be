"""The graph model of a state machine definition, for the console to lay out and draw.

``graph_model(definition) -> {"nodes": [...], "edges": [...]}``, best effort: it never raises,
whatever the definition (the validator reports what is wrong; the graph shows what it can).

Nodes (``kind``):
- ``terminal``: the machine's ``Start`` and ``End`` (top level only; ids ``start`` and ``end``);
- ``state``: one per state, ``type`` its ASL Type; Parallel and Map states are compound
  (``compound: true``) and contain
- ``group``: a Parallel branch (``type: "Branch"``) or a Map's item processor (``type: "Processor"``),
  which contain that block's states.

A state's id is its RFC 6901 JSON pointer in the definition (``/States/A``,
``/States/P/Branches/0/States/B``), the same pointers the validator reports problems with, so
that a problem is shown on the node it belongs to (:func:`node_for_pointer`). ``parent`` is the
id of the containing node (``None`` at top level).

Edges (``kind``): ``start`` (Start to StartAt), ``next``, ``choice`` (one per Choice rule,
labelled with a summary of its condition), ``default`` (a Choice's Default), ``catch`` (labelled
with the ErrorEquals), ``end`` (a terminal top-level state to End). Every edge joins two nodes
with the same parent. ``pointer`` is the field the edge comes from.
"""
from __future__ import annotations

from typing import Any

MAX_LABEL = 48

_OPERATORS = {
    "StringEquals": "==", "NumericEquals": "==", "BooleanEquals": "==", "TimestampEquals": "==",
    "StringLessThan": "<", "NumericLessThan": "<", "TimestampLessThan": "<",
    "StringGreaterThan": ">", "NumericGreaterThan": ">", "TimestampGreaterThan": ">",
    "StringLessThanEquals": "<=", "NumericLessThanEquals": "<=", "TimestampLessThanEquals": "<=",
    "StringGreaterThanEquals": ">=", "NumericGreaterThanEquals": ">=", "TimestampGreaterThanEquals": ">=",
    "StringMatches": "matches",
}


def esc(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _clip(text: str, limit: int = MAX_LABEL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def rule_label(rule: Any, depth: int = 0) -> str:
    """A short, human summary of a Choice rule (JSONPath or JSONata)."""
    if not isinstance(rule, dict):
        return "?"
    cond = rule.get("Condition")
    if isinstance(cond, str):
        c = cond.strip()
        if c.startswith("{%") and c.endswith("%}"):
            c = c[2:-2].strip()
        return _clip(c)
    if depth > 3:
        return "\u2026"
    for op in ("And", "Or"):
        subs = rule.get(op)
        if isinstance(subs, list):
            inner = f" {op.lower()} ".join(rule_label(r, depth + 1) for r in subs[:3])
            if len(subs) > 3:
                inner += " \u2026"
            return _clip(f"({inner})" if depth else inner)
    if "Not" in rule:
        return _clip("not " + rule_label(rule.get("Not"), depth + 1))
    var = rule.get("Variable")
    var = var if isinstance(var, str) else "?"
    for key, value in rule.items():
        if key in ("Variable", "Next", "Comment", "Assign", "Output"):
            continue
        if key.startswith("Is"):
            return _clip(f"{var} {key}" + ("" if value is True else f"={value}"))
        base = key[:-4] if key.endswith("Path") and key[:-4] in _OPERATORS else key
        symbol = _OPERATORS.get(base)
        if symbol is None:
            continue
        if isinstance(value, str) and not key.endswith("Path"):
            shown = '"' + value + '"'
        elif isinstance(value, bool):
            shown = "true" if value else "false"
        else:
            shown = str(value)
        return _clip(f"{var} {symbol} {shown}")
    return _clip(var)


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []

    def node(self, id: str, kind: str, type: str, name: str, parent: str | None, **extra: Any) -> None:
        self.nodes.append({"id": id, "kind": kind, "type": type, "name": name, "parent": parent, **extra})

    def edge(self, source: str, target: str, kind: str, label: str | None, pointer: str) -> None:
        self.edges.append({"id": f"e{len(self.edges)}", "source": source, "target": target, "kind": kind,
                           "label": label, "pointer": pointer})

    def block(self, block: Any, base: str, parent: str | None, depth: int) -> tuple[str | None, list[str]]:
        """Adds a block's states; returns (id of its StartAt state, ids of its terminal states)."""
        if not isinstance(block, dict) or depth > 32:
            return None, []
        states = block.get("States")
        if not isinstance(states, dict):
            return None, []
        ids = {name: f"{base}/States/{esc(name)}" for name in states}
        start_at = block.get("StartAt")
        start_id = ids.get(start_at) if isinstance(start_at, str) else None
        terminals: list[str] = []
        for name, state in states.items():
            sid = ids[name]
            if not isinstance(state, dict):
                self.node(sid, "state", "?", str(name), parent, start=sid == start_id)
                continue
            stype = state.get("Type")
            stype = stype if isinstance(stype, str) else "?"
            compound = stype in ("Parallel", "Map")
            extra: dict[str, Any] = {"start": sid == start_id}
            if compound:
                extra["compound"] = True
            comment = state.get("Comment")
            if isinstance(comment, str) and comment:
                extra["comment"] = _clip(comment, 200)
            if stype == "Task" and isinstance(state.get("Resource"), str):
                extra["resource"] = _clip(state["Resource"], 200)
            self.node(sid, "state", stype, str(name), parent, **extra)
            if stype == "Parallel":
                branches = state.get("Branches")
                if isinstance(branches, list):
                    for i, branch in enumerate(branches):
                        gid = f"{sid}/Branches/{i}"
                        self.node(gid, "group", "Branch", f"Branch {i + 1}", sid)
                        self.block(branch, gid, gid, depth + 1)
            elif stype == "Map":
                field = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
                processor = state.get(field)
                if isinstance(processor, dict):
                    gid = f"{sid}/{field}"
                    config = processor.get("ProcessorConfig")
                    mode = config.get("Mode") if isinstance(config, dict) else None
                    label = "Item processor" + (f" ({mode})" if isinstance(mode, str) else "")
                    self.node(gid, "group", "Processor", label, sid)
                    self.block(processor, gid, gid, depth + 1)
            # transitions
            if stype == "Choice":
                choices = state.get("Choices")
                if isinstance(choices, list):
                    for i, rule in enumerate(choices):
                        target = ids.get(rule.get("Next")) if isinstance(rule, dict) else None
                        if target is not None:
                            self.edge(sid, target, "choice", rule_label(rule), f"{sid}/Choices/{i}/Next")
                default = ids.get(state.get("Default")) if isinstance(state.get("Default"), str) else None
                if default is not None:
                    self.edge(sid, default, "default", "Default", f"{sid}/Default")
            else:
                nxt = state.get("Next")
                target = ids.get(nxt) if isinstance(nxt, str) else None
                if target is not None:
                    self.edge(sid, target, "next", None, f"{sid}/Next")
                if state.get("End") is True or stype in ("Succeed", "Fail"):
                    terminals.append(sid)
            catchers = state.get("Catch")
            if isinstance(catchers, list):
                for i, catcher in enumerate(catchers):
                    if not isinstance(catcher, dict):
                        continue
                    nxt = catcher.get("Next")
                    target = ids.get(nxt) if isinstance(nxt, str) else None
                    if target is None:
                        continue
                    errs = catcher.get("ErrorEquals")
                    label = ", ".join(str(e) for e in errs) if isinstance(errs, list) else "?"
                    self.edge(sid, target, "catch", _clip(label), f"{sid}/Catch/{i}/Next")
        return start_id, terminals


def graph_model(definition: Any) -> dict[str, Any]:
    b = _Builder()
    if isinstance(definition, dict) and isinstance(definition.get("States"), dict):
        b.node("start", "terminal", "Start", "Start", None)
        first, terminals = b.block(definition, "", None, 0)
        b.node("end", "terminal", "End", "End", None)
        if first is not None:
            b.edge("start", first, "start", None, "/StartAt")
        for sid in terminals:
            b.edge(sid, "end", "end", None, sid)
    return {"nodes": b.nodes, "edges": b.edges}


def node_for_pointer(pointer: str, node_ids: set[str] | frozenset[str]) -> str | None:
    """The innermost node a JSON pointer lies in (``None``: the machine itself)."""
    p = pointer
    while p:
        if p in node_ids:
            return p
        cut = p.rfind("/")
        if cut <= 0:
            return None
        p = p[:cut]
    return None
