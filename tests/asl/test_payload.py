"""express.asl.payload: compiled payload templates (Parameters, ResultSelector, ItemSelector, Assign)."""
from __future__ import annotations

import copy

import pytest

from express.asl.errors import RUNTIME, ASLError
from express.asl.payload import compile_template
from tests.support import FakeFrame, run, single


def apply(template, data, frame=None, field="Parameters"):
    return compile_template(template, field)(data, frame or FakeFrame())


def test_static_values_are_fresh_per_call():
    tpl = compile_template({"obj": {"list": [1, {"z": 2}]}, "s": "x"}, "Parameters")
    first = tpl({}, FakeFrame())
    first["obj"]["list"].append("mutated")
    first["obj"]["list"][1]["z"] = 99
    first["new"] = True
    second = tpl({}, FakeFrame())
    assert second == {"obj": {"list": [1, {"z": 2}]}, "s": "x"}
    assert second["obj"] is not first["obj"]


def test_template_does_not_alias_static_definition():
    template = {"a": {"b": [1, 2]}}
    snap = copy.deepcopy(template)
    out = apply(template, {})
    out["a"]["b"].append(3)
    assert template == snap


def test_static_scalars_and_types():
    tpl = {"i": 1, "f": 1.5, "t": True, "f2": False, "n": None, "s": "str", "e": {}, "l": []}
    assert apply(tpl, {}) == tpl


def test_non_dict_templates():
    assert apply([1, {"a.$": "$.x"}], {"x": 3}) == [1, {"a": 3}]
    assert apply("literal", {}) == "literal"


def test_path_values():
    data = {"a": {"b": [5, 6]}, "s": "hi"}
    out = apply({"x.$": "$.a.b[1]", "all.$": "$", "s.$": "$.s", "plain": "$.a"}, data)
    assert out == {"x": 6, "all": data, "s": "hi", "plain": "$.a"}


def test_path_value_with_wildcard_is_list():
    out = apply({"v.$": "$.items[*].id"}, {"items": [{"id": 1}, {"id": 2}]})
    assert out == {"v": [1, 2]}


def test_nested_dicts_and_lists():
    out = apply({"outer": {"inner.$": "$.v", "list": [{"deep.$": "$.w"}, "lit", [{"z.$": "$.v"}]]}},
                {"v": 1, "w": 2})
    assert out == {"outer": {"inner": 1, "list": [{"deep": 2}, "lit", [{"z": 1}]]}}


def test_context_and_variables():
    frame = FakeFrame(vars={"myVar": {"k": "v"}}, context={"Execution": {"Name": "exec"}})
    out = apply({"name.$": "$$.Execution.Name", "var.$": "$myVar.k", "whole.$": "$myVar"}, {}, frame)
    assert out == {"name": "exec", "var": "v", "whole": {"k": "v"}}


def test_intrinsic_value():
    out = apply({"s.$": "States.Format('Hello {}', $.n)", "a.$": "States.Array(1, $.n)"}, {"n": "x"})
    assert out == {"s": "Hello x", "a": [1, "x"]}


def test_missing_path_raises_runtime_with_aws_wording():
    with pytest.raises(ASLError) as ei:
        apply({"ok": 1, "x.$": "$.x"}, {"a": 1, "b": [1, 2]})
    assert ei.value.error == RUNTIME
    assert ei.value.cause == ("The JSONPath '$.x' specified for the field 'x.$' could not be found in the input "
                              "'{\"a\":1,\"b\":[1,2]}'")


def test_missing_nested_path_names_the_field():
    with pytest.raises(ASLError) as ei:
        apply({"outer": {"deep.$": "$.a.b.c"}}, {"a": {}})
    assert ei.value.error == RUNTIME
    assert "The JSONPath '$.a.b.c' specified for the field 'deep.$' could not be found" in ei.value.cause


def test_missing_variable_raises_runtime():
    with pytest.raises(ASLError) as ei:
        apply({"v.$": "$nope"}, {}, FakeFrame(vars={}))
    assert ei.value.error == RUNTIME


@pytest.mark.parametrize("template", [
    {"a": 1, "a.$": "$.x"},
    {"nested": {"k.$": "$", "k": 2}},
    [{"a.$": "$.x", "a": 0}],
])
def test_duplicate_keys_rejected(template):
    with pytest.raises(ValueError):
        compile_template(template, "Parameters")


@pytest.mark.parametrize("template", [
    {"a.$": "not a path"},
    {"a.$": 5},
    {"a.$": "$.a[?(@.x ==]"},
])
def test_invalid_dynamic_values_rejected(template):
    with pytest.raises(ValueError):
        compile_template(template, "Parameters")


def test_template_does_not_mutate_input():
    data = {"a": {"b": [1]}}
    snap = copy.deepcopy(data)
    out = apply({"x.$": "$.a", "y.$": "$"}, data)
    assert data == snap
    assert out["x"] == {"b": [1]}


async def test_missing_path_in_execution_has_state_prefix():
    r = await run(single({"Type": "Pass", "Parameters": {"x.$": "$.x"}}), {"a": 1})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert r.cause == ("An error occurred while executing the state 'S' (entered at the event id #2). "
                       "The JSONPath '$.x' specified for the field 'x.$' could not be found in the input '{\"a\":1}'")


async def test_duplicate_keys_rejected_at_compile():
    import express

    with pytest.raises(express.DefinitionError):
        express.Engine().compile(single({"Type": "Pass", "Parameters": {"a": 1, "a.$": "$"}}))


def _nest(depth, leaf):
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


def test_a_template_deeper_than_python_parses_runs_node_by_node():
    """CPython's parser stops at 200 nested brackets: such a template used to raise SyntaxError."""
    template = _nest(240, {"v.$": "$.v", "s": [1]})
    tpl = compile_template(template, "Parameters")
    first = tpl({"v": 5}, FakeFrame())
    assert first == _nest(240, {"v": 5, "s": [1]})
    inner = first
    for _ in range(240):
        inner = inner["a"]
    inner["s"].append(2)
    assert tpl({"v": 5}, FakeFrame()) == _nest(240, {"v": 5, "s": [1]})  # fresh objects per call
    with pytest.raises(ASLError) as info:
        tpl({}, FakeFrame())
    assert info.value.error == RUNTIME
    assert "The JSONPath '$.v' specified for the field 'v.$' could not be found" in info.value.cause
