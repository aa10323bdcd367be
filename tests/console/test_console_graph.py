"""The graph model the console lays out: nodes by type, nested groups, every kind of edge, JSON
pointers shared with the validator, and no exception whatever the definition."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from consolesupport import ORDERS, ORDERS_EDGES, ORDERS_GROUPS, ORDERS_STATES, ORDERS_TERMINALS

from express.console.app import validate_text
from express.console.graph import graph_model, node_for_pointer, rule_label


def by_id(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in graph["nodes"]}


def test_orders_graph() -> None:
    g = graph_model(ORDERS)
    kinds = Counter(n["kind"] for n in g["nodes"])
    assert kinds == {"state": ORDERS_STATES, "group": ORDERS_GROUPS, "terminal": ORDERS_TERMINALS}
    assert Counter(e["kind"] for e in g["edges"]) == ORDERS_EDGES
    nodes = by_id(g)
    assert nodes["/States/Route"]["type"] == "Choice" and nodes["/States/Validate"]["start"] is True
    assert nodes["/States/Both"]["compound"] is True and nodes["/States/Fanout"]["compound"] is True
    assert nodes["/States/Both/Branches/0"] == {"id": "/States/Both/Branches/0", "kind": "group", "type": "Branch",
                                                "name": "Branch 1", "parent": "/States/Both"}
    assert nodes["/States/Both/Branches/1/States/Notify"]["parent"] == "/States/Both/Branches/1"
    processor = nodes["/States/Fanout/ItemProcessor"]
    assert processor["type"] == "Processor" and processor["name"] == "Item processor (INLINE)"
    assert nodes["/States/Fanout/ItemProcessor/States/Item"]["start"] is True
    assert nodes["/States/Charge"]["resource"] == "charge"
    edges = {(e["source"], e["target"], e["kind"]): e for e in g["edges"]}
    assert edges[("/States/Route", "/States/Fanout", "choice")]["label"] == '$.kind == "bulk"'
    assert edges[("/States/Route", "/States/Charge", "default")]["pointer"] == "/States/Route/Default"
    assert edges[("/States/Charge", "/States/Declined", "catch")]["label"] == "PaymentDeclined"
    assert edges[("/States/Both", "/States/Declined", "catch")]["pointer"] == "/States/Both/Catch/0/Next"
    assert ("start", "/States/Validate", "start") in edges
    assert {e["source"] for e in g["edges"] if e["kind"] == "end"} == {"/States/Done", "/States/Declined"}
    # every edge joins two nodes with the same parent (how the layout nests them)
    for e in g["edges"]:
        assert nodes[e["source"]]["parent"] == nodes[e["target"]]["parent"], e
    # parents come before their children (the renderer draws containers outermost first)
    seen: set[str] = set()
    for n in g["nodes"]:
        assert n["parent"] is None or n["parent"] in seen
        seen.add(n["id"])
    assert len({e["id"] for e in g["edges"]}) == len(g["edges"])


def test_legacy_iterator_and_pointer_escaping() -> None:
    g = graph_model({"StartAt": "a/b", "States": {
        "a/b": {"Type": "Map", "Iterator": {"StartAt": "x~y", "States": {"x~y": {"Type": "Succeed"}}}, "End": True}}})
    nodes = by_id(g)
    assert "/States/a~1b/Iterator/States/x~0y" in nodes
    assert nodes["/States/a~1b/Iterator"]["name"] == "Item processor"
    assert node_for_pointer("/States/a~1b/Iterator/States/x~0y/Type", frozenset(nodes)) == \
        "/States/a~1b/Iterator/States/x~0y"


@pytest.mark.parametrize("rule,label", [
    ({"Variable": "$.n", "NumericGreaterThan": 5}, "$.n > 5"),
    ({"Variable": "$.s", "StringEqualsPath": "$.t"}, "$.s == $.t"),
    ({"Variable": "$.b", "BooleanEquals": False}, "$.b == false"),
    ({"Variable": "$.v", "IsPresent": True}, "$.v IsPresent"),
    ({"Not": {"Variable": "$.v", "IsNull": True}}, "not $.v IsNull"),
    ({"And": [{"Variable": "$.a", "NumericLessThan": 1}, {"Variable": "$.b", "StringMatches": "x*"}]},
     '$.a < 1 and $.b matches "x*"'),
    ({"Condition": "{% $states.input.n > 1 %}"}, "$states.input.n > 1"),
    ("junk", "?"),
])
def test_rule_labels(rule: Any, label: str) -> None:
    assert rule_label(rule) == label


def test_long_labels_are_clipped() -> None:
    label = rule_label({"Variable": "$." + "x" * 100, "IsString": True})
    assert len(label) <= 48 and label.endswith("\u2026")


@pytest.mark.parametrize("definition", [
    None, [], "text", 5, {}, {"States": []}, {"States": {"A": 5}}, {"StartAt": 3, "States": {"A": {"Type": 7}}},
    {"States": {"A": {"Type": "Parallel", "Branches": "no"}}}, {"States": {"A": {"Type": "Parallel", "Branches": [5]}}},
    {"States": {"A": {"Type": "Map", "ItemProcessor": []}}},
    {"States": {"A": {"Type": "Choice", "Choices": [5, {"Next": 3}], "Default": ["x"]}}},
    {"States": {"A": {"Type": "Task", "Catch": [5, {"Next": "Nowhere"}, {"Next": "A"}], "Next": "Gone"}}},
])
def test_never_raises(definition: Any) -> None:
    g = graph_model(definition)
    ids = {n["id"] for n in g["nodes"]}
    for e in g["edges"]:
        assert e["source"] in ids and e["target"] in ids


def test_deep_nesting_is_cut_not_fatal() -> None:
    d: dict[str, Any] = {"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}
    for _ in range(60):
        d = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [d], "End": True}}}
    g = graph_model(d)
    assert 30 < len(g["nodes"]) < 200


def test_validate_text() -> None:
    ok = validate_text(b'{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}')
    assert ok["valid"] is True and ok["problems"] == [] and len(ok["graph"]["nodes"]) == 3
    bad = validate_text('{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}')
    assert bad["valid"] is False
    problem = next(p for p in bad["problems"] if p["pointer"] == "/States/A/Next")
    assert problem["code"] == "MISSING_TRANSITION_TARGET" and problem["node"] == "/States/A"
    assert bad["graph"] is not None  # drawn as far as it can be
    broken = validate_text('{"StartAt": "A",\n "States": {')
    assert broken["valid"] is False and broken["graph"] is None
    assert broken["problems"][0]["code"] == "INVALID_JSON_DESCRIPTION" and broken["problems"][0]["line"] == 2
    assert validate_text(b"  ")["problems"][0]["message"] == "The definition is empty"
    not_object = validate_text(b"[1]")
    assert not_object["valid"] is False and not_object["graph"]["nodes"] == []
