"""express.asl.jsonpath: compiled getters (Jayway semantics) and copy-on-write setters."""
from __future__ import annotations

import copy

import pytest

from express.asl.errors import PathMissing
from express.asl.jsonpath import compile_getter, compile_setter, parse_path
from tests.support import FakeFrame

DATA = {
    "a": {"b": {"c": 1}, "list": [10, 20, 30]},
    "store": {
        "book": [
            {"title": "A", "price": 8, "tags": ["x"]},
            {"title": "B", "price": 12},
            {"title": "C", "price": 30},
        ],
        "bike": {"price": 19},
    },
    "odd key": "spaced",
    "k.dot": "dotted",
    "n": None,
}


def get(path: str, data=DATA, frame=None):
    return compile_getter(path)(data, frame or FakeFrame())


# --- simple paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "expected"), [
    ("$", DATA),
    ("$.a.b.c", 1),
    ("$.a.b", {"c": 1}),
    ("$['a']['b']['c']", 1),
    ('$["a"]["b"]', {"c": 1}),
    ("$['odd key']", "spaced"),
    ("$['k.dot']", "dotted"),
    ("$.a.list[0]", 10),
    ("$.a.list[2]", 30),
    ("$.a.list[-1]", 30),
    ("$.a.list[-3]", 10),
    ("$.store.book[1].title", "B"),
    ("$.n", None),
])
def test_simple_paths(path, expected):
    assert get(path) == expected


def test_root_returns_same_object():
    data = {"x": 1}
    assert get("$", data) is data


def test_getter_does_not_mutate():
    before = copy.deepcopy(DATA)
    for p in ("$.a.b.c", "$.store.book[*].price", "$..price", "$.store.book[?(@.price > 10)]"):
        get(p)
    assert DATA == before


# --- indefinite paths return lists ----------------------------------------------------------------

def test_wildcard_returns_list():
    assert get("$.store.book[*].title") == ["A", "B", "C"]


def test_object_wildcard_returns_list():
    assert sorted(get("$.a.b.*")) == [1]


def test_filter_returns_list():
    assert get("$.store.book[?(@.price > 10)].title") == ["B", "C"]


def test_filter_no_match_is_empty_list():
    assert get("$.store.book[?(@.price > 1000)]") == []


def test_slice_returns_list():
    assert get("$.a.list[0:2]") == [10, 20]
    assert get("$.a.list[1:]") == [20, 30]


def test_deep_scan_returns_list():
    assert sorted(get("$..price")) == [8, 12, 19, 30]


def test_union_indexes_returns_list():
    assert get("$.a.list[0,2]") == [10, 30]


def test_indefinite_paths_are_not_reference_paths():
    assert parse_path("$.a.b").is_reference
    assert parse_path("$.a[0]").is_reference
    assert not parse_path("$.a[*]").is_reference
    assert not parse_path("$..x").is_reference


# --- context object and variables -----------------------------------------------------------------

def test_context_object_path():
    frame = FakeFrame(context={"Execution": {"Name": "ex-1"}, "Map": {"Item": {"Index": 4}}})
    assert get("$$.Execution.Name", {}, frame) == "ex-1"
    assert get("$$.Map.Item.Index", {}, frame) == 4
    assert get("$$", {}, frame) == frame.context_object()


def test_context_ignores_input():
    frame = FakeFrame(context={"Execution": {"Name": "ctx"}})
    assert get("$$.Execution.Name", {"Execution": {"Name": "input"}}, frame) == "ctx"


def test_variable_paths():
    frame = FakeFrame(vars={"x": {"y": [1, 2, 3]}, "flag": False, "name_1": "n"})
    assert get("$x", {}, frame) == {"y": [1, 2, 3]}
    assert get("$x.y[1]", {}, frame) == 2
    assert get("$x.y[-1]", {}, frame) == 3
    assert get("$flag", {}, frame) is False
    assert get("$name_1", {}, frame) == "n"


def test_variable_wildcard():
    frame = FakeFrame(vars={"x": {"y": [{"v": 1}, {"v": 2}]}})
    assert get("$x.y[*].v", {}, frame) == [1, 2]


def test_undefined_variable_is_missing():
    with pytest.raises(PathMissing):
        get("$nope", {}, FakeFrame(vars={"x": 1}))


# --- missing paths, Jayway wording ----------------------------------------------------------------

def test_missing_leaf_wording():
    with pytest.raises(PathMissing) as ei:
        get("$.x", {"a": 1})
    assert ei.value.path == "$.x"
    assert ei.value.detail == "No results for path: $['x']"


def test_missing_intermediate_wording():
    with pytest.raises(PathMissing) as ei:
        get("$.a.b.c", {"z": 1})
    assert ei.value.detail == "Missing property in path $['a']"


def test_missing_deeper_intermediate_wording():
    with pytest.raises(PathMissing) as ei:
        get("$.a.b.c", {"a": {"q": 1}})
    assert ei.value.detail == "Missing property in path $['a']['b']"


def test_missing_leaf_nested_wording():
    with pytest.raises(PathMissing) as ei:
        get("$.a.b", {"a": {}})
    assert ei.value.detail == "No results for path: $['a']['b']"


@pytest.mark.parametrize(("path", "data"), [
    ("$.a.list[3]", DATA),
    ("$.a.list[-4]", DATA),
    ("$.a[0]", {"a": {"0": 1}}),  # index into an object
    ("$.a.b", {"a": [1, 2]}),  # property of an array
    ("$.a.b", {"a": "string"}),  # property of a string
    ("$.a", [1, 2]),
    ("$.a", None),
    ("$[0]", "abc"),  # strings are not indexable in JSONPath
])
def test_missing_cases(path, data):
    with pytest.raises(PathMissing):
        get(path, data)


def test_bracket_name_with_quote():
    assert get("$['it\\'s']", {"it's": 5}) == 5


@pytest.mark.parametrize("bad", ["a.b", "", "x", 5, None])
def test_invalid_paths_raise_value_error(bad):
    with pytest.raises(ValueError):
        compile_getter(bad)


# --- setters: copy-on-write -----------------------------------------------------------------------

def test_setter_root_replaces():
    assert compile_setter("$")({"a": 1}, {"b": 2}) == {"b": 2}


def test_setter_single_key_copy_on_write():
    data = {"a": 1, "keep": {"deep": [1]}}
    snap = copy.deepcopy(data)
    out = compile_setter("$.r")(data, 42)
    assert out == {"a": 1, "keep": {"deep": [1]}, "r": 42}
    assert data == snap
    assert out is not data


def test_setter_overwrites_existing_key():
    data = {"r": {"old": True}}
    out = compile_setter("$.r")(data, [1])
    assert out == {"r": [1]}
    assert data == {"r": {"old": True}}


def test_setter_deep_copy_on_write_and_sharing():
    inner = {"b": {"c": 1, "d": 2}}
    data = {"a": inner, "other": {"x": 1}}
    snap = copy.deepcopy(data)
    out = compile_setter("$.a.b.c")(data, "new")
    assert out == {"a": {"b": {"c": "new", "d": 2}}, "other": {"x": 1}}
    assert data == snap  # the input object is never mutated
    assert out["a"] is not inner


def test_setter_creates_intermediates():
    data = {"x": 1}
    out = compile_setter("$.a.b.c")(data, 7)
    assert out == {"x": 1, "a": {"b": {"c": 7}}}
    assert data == {"x": 1}


def test_setter_bracket_notation():
    out = compile_setter("$['odd key'].v")({}, 1)
    assert out == {"odd key": {"v": 1}}


def test_setter_array_index():
    data = {"l": [1, 2, 3]}
    out = compile_setter("$.l[1]")(data, 9)
    assert out == {"l": [1, 9, 3]}
    assert data == {"l": [1, 2, 3]}


def test_setter_through_non_object_fails():
    with pytest.raises(PathMissing) as ei:
        compile_setter("$.a.b")({"a": 1}, 2)
    assert "$['a']" in ei.value.detail


def test_setter_on_non_object_root_fails():
    with pytest.raises(PathMissing):
        compile_setter("$.a")([1, 2], 2)


@pytest.mark.parametrize("bad", ["$$.Execution", "$.a[*]", "$..a", "$var.x", "nope"])
def test_setter_rejects_non_reference_paths(bad):
    with pytest.raises(ValueError):
        compile_setter(bad)
