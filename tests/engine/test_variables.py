"""Workflow variables (``Assign``): both query languages, scopes, limits and errors, end to end."""
from __future__ import annotations

import pytest

import express
from tests.support import machine, run

QEE = "States.QueryEvaluationError"
LIMIT = "States.DataLimitExceeded"
KIB = 1024


def jmachine(states: dict, start: str | None = None) -> dict:
    return machine(states, start, QueryLanguage="JSONata")


def problems(definition: dict) -> list[express.Problem]:
    with pytest.raises(express.DefinitionError) as ei:
        express.Engine(clock=express.VirtualClock()).compile(definition)
    return ei.value.problems


def _branch(states: dict) -> dict:
    return {"StartAt": next(iter(states)), "States": states}


# =============================================================================== Assign, JSONPath

async def test_jsonpath_assign_literal_path_context_and_intrinsic():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"lit": {"k": [1, 2]}, "fromInput.$": "$.a", "state.$": "$$.State.Name",
                                         "fmt.$": "States.Format('<{}>', $.a)"}, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"lit.$": "$lit", "second.$": "$lit.k[1]", "fromInput.$": "$fromInput",
                                             "state.$": "$state", "fmt.$": "$fmt"}, "End": True},
    })
    r = await run(d, {"a": "x"})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"lit": {"k": [1, 2]}, "second": 2, "fromInput": "x", "state": "A", "fmt": "<x>"}


async def test_jsonpath_variable_in_intrinsic_argument():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"name": "World", "n": 2}, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"msg.$": "States.Format('Hello {}', $name)",
                                             "sum.$": "States.MathAdd($n, 3)"}, "End": True},
    })
    r = await run(d, {})
    assert r.output == {"msg": "Hello World", "sum": 5}


async def test_jsonpath_variable_in_paths():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"cfg": {"wait": 7, "items": [1, 2], "ok": True}}, "Next": "W"},
        "W": {"Type": "Wait", "SecondsPath": "$cfg.wait", "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$cfg.ok", "BooleanEquals": True, "Next": "M"}],
              "Default": "Bad"},
        "Bad": {"Type": "Fail", "Error": "Bad"},
        "M": {"Type": "Map", "ItemsPath": "$cfg.items", "ItemProcessor": _branch({"P": {"Type": "Pass", "End": True}}),
              "ResultPath": "$.mapped", "Next": "O"},
        "O": {"Type": "Pass", "OutputPath": "$cfg", "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.duration_s == pytest.approx(7)
    assert r.output == {"wait": 7, "items": [1, 2], "ok": True}


async def test_jsonpath_task_assign_sees_the_result():
    d = machine({
        "T": {"Type": "Task", "Resource": "f", "Assign": {"r.$": "$.value", "inp.$": "$$.Execution.Input.a"},
              "ResultPath": "$.res", "Next": "E"},
        "E": {"Type": "Pass", "Parameters": {"r.$": "$r", "inp.$": "$inp", "res.$": "$.res"}, "End": True},
    })
    r = await run(d, {"a": 1}, functions={"f": lambda e: {"value": e["a"] + 10}})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"r": 11, "inp": 1, "res": {"value": 11}}


async def test_jsonpath_pass_assign_sees_the_pass_result():
    d = machine({
        "A": {"Type": "Pass", "Result": {"x": 5}, "ResultPath": "$.r", "Assign": {"v.$": "$.x"}, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"v.$": "$v"}, "End": True},
    })
    r = await run(d, {})
    assert r.output == {"v": 5}


async def test_jsonpath_choice_rule_and_default_assign():
    d = machine({
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 0, "Next": "E",
                                             "Assign": {"which": "positive", "n.$": "$.n"}}],
              "Default": "E", "Assign": {"which": "default", "n.$": "$.n"}},
        "E": {"Type": "Pass", "Parameters": {"which.$": "$which", "n.$": "$n"}, "End": True},
    })
    assert (await run(d, {"n": 3})).output == {"which": "positive", "n": 3}
    assert (await run(d, {"n": -3})).output == {"which": "default", "n": -3}


async def test_jsonpath_catch_assign_sees_error_output():
    def boom(event):
        raise RuntimeError("nope")

    d = machine({
        "T": {"Type": "Task", "Resource": "boom", "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "E", "Assign": {"err.$": "$.Error"},
                         "ResultPath": "$.caught"}]},
        "E": {"Type": "Pass", "Parameters": {"err.$": "$err", "in.$": "$.k"}, "End": True},
    })
    r = await run(d, {"k": "v"}, functions={"boom": boom})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"err": "RuntimeError", "in": "v"}


# =============================================================================== Assign, JSONata

async def test_jsonata_assign_in_every_state_type_that_allows_it():
    d = jmachine({
        "P": {"Type": "Pass", "Assign": {"p": "{% $states.input.a %}"}, "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 1, "Assign": {"w": "{% $p + 1 %}"}, "Next": "T"},
        "T": {"Type": "Task", "Resource": "f", "Assign": {"t": "{% $states.result %}"}, "Next": "Par"},
        "Par": {"Type": "Parallel", "Branches": [_branch({"B": {"Type": "Pass", "Output": 1, "End": True}})],
                "Assign": {"par": "{% $states.result[0] %}"}, "Next": "M"},
        "M": {"Type": "Map", "Items": [1, 2], "ItemProcessor": _branch({"I": {"Type": "Pass", "End": True}}),
              "Assign": {"m": "{% $count($states.result) %}"}, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "E", "Assign": {"c": "rule"}}]},
        "E": {"Type": "Pass", "Output": {"p": "{% $p %}", "w": "{% $w %}", "t": "{% $t %}", "par": "{% $par %}",
                                         "m": "{% $m %}", "c": "{% $c %}"}, "End": True},
    })
    r = await run(d, {"a": 1}, functions={"f": lambda e: "task"})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"p": 1, "w": 2, "t": "task", "par": 1, "m": 2, "c": "rule"}


async def test_variables_are_carried_across_many_states():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"a": 1}, "Next": "B"},
        "B": {"Type": "Pass", "Assign": {"b": 2}, "Next": "C"},
        "C": {"Type": "Pass", "Output": "{% $a + $b %}", "End": True},
    })
    assert (await run(d, {})).output == 3


async def test_jsonata_variable_reassignment():
    d = jmachine({
        "Init": {"Type": "Pass", "Assign": {"n": 0}, "Next": "Loop"},
        "Loop": {"Type": "Pass", "Assign": {"n": "{% $n + 1 %}"}, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% $n < 5 %}", "Next": "Loop"}], "Default": "E"},
        "E": {"Type": "Pass", "Output": "{% $n %}", "End": True},
    })
    r = await run(d, {})
    assert r.output == 5


# =============================================================================== evaluation order

async def test_jsonata_assign_and_output_use_the_same_entry_snapshot():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "B"},
        "B": {"Type": "Pass", "Assign": {"x": "{% $x + 1 %}", "y": "{% $x * 10 %}"},
              "Output": {"x": "{% $x %}"}, "Next": "C"},
        "C": {"Type": "Pass", "Output": {"prev": "{% $states.input %}", "x": "{% $x %}", "y": "{% $y %}"}, "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    # Output and y saw x == 1 (entry snapshot); x == 2 only from the next state.
    assert r.output == {"prev": {"x": 1}, "x": 2, "y": 10}


async def test_jsonata_assign_values_do_not_see_each_other():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"a": "old"}, "Next": "B"},
        "B": {"Type": "Pass", "Assign": {"a": "new", "b": "{% $a %}"}, "Next": "C"},
        "C": {"Type": "Pass", "Output": ["{% $a %}", "{% $b %}"], "End": True},
    })
    assert (await run(d, {})).output == ["new", "old"]


async def test_jsonata_variable_assigned_in_state_is_not_visible_in_same_state_output():
    d = jmachine({"A": {"Type": "Pass", "Assign": {"fresh": 1}, "Output": "{% $fresh %}", "End": True}})
    r = await run(d, {})
    assert r.error == QEE
    assert "returned nothing (undefined)" in r.cause


async def test_jsonpath_assign_values_do_not_see_each_other():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"a": "old"}, "Next": "B"},
        "B": {"Type": "Pass", "Assign": {"a": "new", "b.$": "$a"}, "Next": "C"},
        "C": {"Type": "Pass", "Parameters": {"a.$": "$a", "b.$": "$b"}, "End": True},
    })
    assert (await run(d, {})).output == {"a": "new", "b": "old"}


async def test_jsonata_catch_assign_and_output_same_snapshot():
    def boom(event):
        raise ValueError("x")

    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"count": 1}, "Next": "T"},
        "T": {"Type": "Task", "Resource": "boom", "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "E", "Assign": {"count": "{% $count + 1 %}"},
                         "Output": {"count": "{% $count %}"}}]},
        "E": {"Type": "Pass", "Output": {"before": "{% $states.input.count %}", "after": "{% $count %}"}, "End": True},
    })
    r = await run(d, {}, functions={"boom": boom})
    assert r.output == {"before": 1, "after": 2}


# =============================================================================== scopes

async def test_parallel_branches_read_outer_variables():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"outer": "O"}, "Next": "P"},
        "P": {"Type": "Parallel", "End": True, "Branches": [
            _branch({"B0": {"Type": "Pass", "Output": "{% $outer & '0' %}", "End": True}}),
            _branch({"B1": {"Type": "Pass", "Output": "{% $outer & '1' %}", "End": True}})]},
    })
    r = await run(d, {})
    assert r.output == ["O0", "O1"]


async def test_parallel_branch_jsonpath_reads_outer_variable():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"outer": "O"}, "Next": "P"},
        "P": {"Type": "Parallel", "End": True, "Branches": [
            _branch({"B0": {"Type": "Pass", "Parameters": {"v.$": "$outer"}, "End": True}})]},
    })
    assert (await run(d, {})).output == [{"v": "O"}]


async def test_parallel_branch_assignments_do_not_leak_out():
    d = jmachine({
        "P": {"Type": "Parallel", "Next": "After", "Branches": [
            _branch({"B0": {"Type": "Pass", "Assign": {"inner": 1}, "Next": "B1"},
                     "B1": {"Type": "Pass", "Output": "{% $inner %}", "End": True}})]},
        "After": {"Type": "Pass", "Output": {"r": "{% $states.input %}", "leaked": "{% $exists($inner) %}"},
                  "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"r": [1], "leaked": False}


async def test_parallel_sibling_branches_do_not_see_each_other():
    d = jmachine({
        "P": {"Type": "Parallel", "End": True, "Branches": [
            _branch({"A0": {"Type": "Pass", "Assign": {"fromA": "a"}, "Next": "A1"},
                     "A1": {"Type": "Wait", "Seconds": 1, "Next": "A2"},
                     "A2": {"Type": "Pass", "Output": {"ownA": "{% $exists($fromA) %}",
                                                       "seesB": "{% $exists($fromB) %}"}, "End": True}}),
            _branch({"B0": {"Type": "Pass", "Assign": {"fromB": "b"}, "Next": "B1"},
                     "B1": {"Type": "Wait", "Seconds": 2, "Next": "B2"},
                     "B2": {"Type": "Pass", "Output": {"ownB": "{% $exists($fromB) %}",
                                                       "seesA": "{% $exists($fromA) %}"}, "End": True}})]},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [{"ownA": True, "seesB": False}, {"ownB": True, "seesA": False}]


async def test_map_iterations_read_outer_and_do_not_share_or_leak():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"outer": 100}, "Next": "M"},
        "M": {"Type": "Map", "Items": [1, 2, 3], "MaxConcurrency": 1, "Next": "After",
              "ItemProcessor": _branch({
                  "I0": {"Type": "Pass", "Assign": {"mine": "{% $states.input %}"},
                         "Output": {"sawOther": "{% $exists($mine) %}"}, "Next": "I1"},
                  "I1": {"Type": "Pass", "Output": {"sawOther": "{% $states.input.sawOther %}",
                                                    "v": "{% $mine + $outer %}"}, "End": True}})},
        "After": {"Type": "Pass", "Output": {"r": "{% $states.input %}", "leaked": "{% $exists($mine) %}"},
                  "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"r": [{"sawOther": False, "v": 101}, {"sawOther": False, "v": 102},
                              {"sawOther": False, "v": 103}], "leaked": False}


async def test_map_jsonpath_iterations_read_outer_variables():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"factor": "f"}, "Next": "M"},
        "M": {"Type": "Map", "End": True, "ItemProcessor": _branch({
            "I": {"Type": "Pass", "Parameters": {"item.$": "$", "f.$": "$factor"}, "End": True}})},
    })
    r = await run(d, [1, 2])
    assert r.output == [{"item": 1, "f": "f"}, {"item": 2, "f": "f"}]


async def test_inner_variable_undefined_outside_in_jsonpath_is_runtime_error():
    d = machine({
        "P": {"Type": "Parallel", "Next": "After", "Branches": [
            _branch({"B": {"Type": "Pass", "Assign": {"inner": 1}, "End": True}})]},
        "After": {"Type": "Pass", "Parameters": {"v.$": "$inner"}, "End": True},
    })
    r = await run(d, {})
    assert r.error == "States.Runtime"


def test_parallel_branch_assigning_outer_name_rejected_with_pointer():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "P"},
        "P": {"Type": "Parallel", "End": True, "Branches": [
            _branch({"Ok": {"Type": "Pass", "Assign": {"y": 1}, "End": True}}),
            _branch({"B": {"Type": "Pass", "Assign": {"x": 2}, "End": True}})]},
    })
    ps = problems(d)
    assert [p.pointer for p in ps] == ["/States/P/Branches/1/States/B/Assign"]
    assert "'x'" in ps[0].message


def test_map_iteration_assigning_outer_name_rejected_with_pointer():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"total": 0}, "Next": "M"},
        "M": {"Type": "Map", "End": True, "ItemProcessor": _branch({
            "I": {"Type": "Pass", "Assign": {"total.$": "$"}, "End": True}})},
    })
    assert [p.pointer for p in problems(d)] == ["/States/M/ItemProcessor/States/I/Assign"]


def test_nested_scope_assigning_outer_name_in_choice_rule_or_catcher_rejected():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "P"},
        "P": {"Type": "Parallel", "End": True, "Branches": [_branch({
            "C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "E", "Assign": {"x": 3}}]},
            "E": {"Type": "Succeed"}})]},
    })
    assert [p.pointer for p in problems(d)] == ["/States/P/Branches/0/States/C/Choices/0/Assign"]


def test_doubly_nested_scope_assigning_outermost_name_rejected():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "P"},
        "P": {"Type": "Parallel", "End": True, "Branches": [_branch({
            "M": {"Type": "Map", "Items": [1], "End": True, "ItemProcessor": _branch({
                "I": {"Type": "Pass", "Assign": {"x": 2}, "End": True}})}})]},
    })
    assert [p.pointer for p in problems(d)] == [
        "/States/P/Branches/0/States/M/ItemProcessor/States/I/Assign"]


async def test_sibling_scopes_may_use_the_same_name():
    d = jmachine({
        "P": {"Type": "Parallel", "End": True, "Branches": [
            _branch({"A": {"Type": "Pass", "Assign": {"tmp": "a"}, "Next": "A2"},
                     "A2": {"Type": "Pass", "Output": "{% $tmp %}", "End": True}}),
            _branch({"B": {"Type": "Pass", "Assign": {"tmp": "b"}, "Next": "B2"},
                     "B2": {"Type": "Pass", "Output": "{% $tmp %}", "End": True}})]},
    })
    r = await run(d, {})
    assert r.output == ["a", "b"]


_DISTRIBUTED = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}}


async def test_distributed_map_iterations_cannot_read_outer_variables_jsonata():
    d = jmachine({
        "A": {"Type": "Pass", "Assign": {"outer": 1}, "Next": "M"},
        "M": {"Type": "Map", "Items": [1, 2], "End": True, "ItemProcessor": {**_DISTRIBUTED, **_branch({
            "I": {"Type": "Pass", "Output": {"sees": "{% $exists($outer) %}"}, "End": True}})}},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == [{"sees": False}, {"sees": False}]


async def test_distributed_map_iterations_cannot_read_outer_variables_jsonpath():
    d = machine({
        "A": {"Type": "Pass", "Assign": {"outer": 1}, "Next": "M"},
        "M": {"Type": "Map", "End": True, "ItemProcessor": {**_DISTRIBUTED, **_branch({
            "I": {"Type": "Pass", "Parameters": {"v.$": "$outer"}, "End": True}})}},
    })
    r = await run(d, [1])
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"


async def test_inline_map_control_for_distributed_isolation():
    # The same machine as above but INLINE reads the outer variable.
    d = machine({
        "A": {"Type": "Pass", "Assign": {"outer": 1}, "Next": "M"},
        "M": {"Type": "Map", "End": True, "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **_branch({
            "I": {"Type": "Pass", "Parameters": {"v.$": "$outer"}, "End": True}})}},
    })
    r = await run(d, [1])
    assert r.output == [{"v": 1}]


async def test_catcher_on_parallel_may_assign_outer_scope_variables():
    d = jmachine({
        "Init": {"Type": "Pass", "Assign": {"status": "pending"}, "Next": "P"},
        "P": {"Type": "Parallel", "End": True, "Branches": [
            _branch({"Boom": {"Type": "Fail", "Error": "Branch.Failed", "Cause": "c"}})],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "After",
                       "Assign": {"status": "{% 'failed:' & $states.errorOutput.Error %}"}}]},
        "After": {"Type": "Pass", "Output": "{% $status %}", "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == "failed:Branch.Failed"


async def test_catcher_on_map_may_assign_outer_scope_variables_jsonpath():
    d = machine({
        "Init": {"Type": "Pass", "Assign": {"status": "pending"}, "Next": "M"},
        "M": {"Type": "Map", "End": True, "ItemProcessor": _branch({"F": {"Type": "Fail", "Error": "E1"}}),
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "After", "Assign": {"status.$": "$.Error"}}]},
        "After": {"Type": "Pass", "Parameters": {"s.$": "$status"}, "End": True},
    })
    r = await run(d, [1])
    assert r.output == {"s": "E1"}


# =============================================================================== limits

def _pad(n: int) -> str:
    return "{% $pad('', " + str(n) + ", 'x') %}"


async def test_single_variable_over_256_kib_fails():
    d = jmachine({"A": {"Type": "Pass", "Assign": {"big": _pad(256 * KIB + 10)}, "End": True}})
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == LIMIT
    assert "'big'" in r.cause and str(256 * KIB) in r.cause


async def test_single_variable_just_under_256_kib_is_fine():
    d = jmachine({"A": {"Type": "Pass", "Assign": {"big": _pad(256 * KIB - 10)}, "Output": 1, "End": True}})
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause


async def test_one_assign_over_256_kib_in_total_fails():
    d = jmachine({"A": {"Type": "Pass", "Assign": {"a": _pad(150 * KIB), "b": _pad(150 * KIB)}, "End": True}})
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == LIMIT
    assert "one Assign" in r.cause and str(256 * KIB) in r.cause
    assert "variable 'a'" not in r.cause and "variable 'b'" not in r.cause


async def test_jsonpath_single_variable_over_256_kib_fails():
    # The input is within the payload limit; a variable built from it twice is not.
    d = machine({"A": {"Type": "Pass", "Assign": {"big.$": "States.Array($.s, $.s)"}, "End": True}})
    r = await run(d, {"s": "x" * (130 * KIB)})
    assert r.error == LIMIT
    assert "'big'" in r.cause


def _fill_machine(n: int, size: int) -> dict:
    states = {f"S{i}": {"Type": "Pass", "Assign": {f"v{i}": _pad(size)}, "Next": f"S{i + 1}"} for i in range(n)}
    states[f"S{n}"] = {"Type": "Pass", "Output": "done", "End": True}
    return jmachine(states)


async def test_more_than_10_mib_of_variables_in_an_execution_fails():
    r = await run(_fill_machine(60, 200 * KIB), {})
    assert r.status == "FAILED"
    assert r.error == LIMIT
    assert str(10 * 1024 * KIB) in r.cause and "execution" in r.cause
    # 51 values of 200 KiB (+ quotes) fit in 10 MiB; the 52nd (state S51) does not.
    assert str(52 * (200 * KIB + 2)) in r.cause


async def test_just_under_10_mib_of_variables_is_fine():
    r = await run(_fill_machine(50, 200 * KIB), {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == "done"


async def test_reassigning_the_same_variable_does_not_count_toward_10_mib():
    d = jmachine({
        "Init": {"Type": "Pass", "Assign": {"n": 0}, "Next": "Fill"},
        "Fill": {"Type": "Pass", "Assign": {"big": _pad(200 * KIB), "n": "{% $n + 1 %}"}, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% $n < 80 %}", "Next": "Fill"}], "Default": "E"},
        "E": {"Type": "Pass", "Output": "{% $n %}", "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == 80


async def test_variable_limit_error_is_caught_by_states_all():
    # AWS's docs call States.DataLimitExceeded terminal, but the AWS-recorded conformance case
    # test_service_task_lambada_catch_state_all_data_limit_exceeded_on_large_utf8_response shows a
    # Catcher on States.ALL catching it; the recording wins.
    d = jmachine({
        "T": {"Type": "Task", "Resource": "f", "Assign": {"big": _pad(300 * KIB)}, "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Output": "{% $states.errorOutput.Error %}", "Next": "H"}]},
        "H": {"Type": "Pass", "End": True},
    })
    r = await run(d, {}, functions={"f": lambda e: 1})
    assert r.status == "SUCCEEDED"
    assert r.output == LIMIT


# =============================================================================== undefined references

async def test_undefined_variable_jsonpath_is_runtime_error():
    d = machine({"A": {"Type": "Pass", "Parameters": {"v.$": "$nope"}, "End": True}})
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == "States.Runtime"
    assert "$nope" in r.cause


async def test_undefined_variable_in_jsonpath_intrinsic_is_runtime_error():
    d = machine({"A": {"Type": "Pass", "Parameters": {"v.$": "States.Format('{}', $nope)"}, "End": True}})
    r = await run(d, {})
    assert r.error == "States.Runtime"
    assert "$nope" in r.cause


async def test_undefined_variable_jsonpath_assign_is_runtime_error():
    d = machine({"A": {"Type": "Pass", "Assign": {"x.$": "$nope"}, "End": True}})
    r = await run(d, {})
    assert r.error == "States.Runtime"


async def test_undefined_variable_jsonata_is_query_evaluation_error():
    d = jmachine({"A": {"Type": "Pass", "Output": {"v": "{% $nope %}"}, "End": True}})
    r = await run(d, {})
    assert r.status == "FAILED"
    assert r.error == QEE
    assert r.cause == ("An error occurred while executing the state 'A' (entered at the event id #2). "
                       "The JSONata expression '$nope' specified for the field 'Output/v' returned nothing "
                       "(undefined).")


async def test_undefined_variable_in_jsonata_catch_output_aws_recorded_shape():
    def boom(event):
        raise ValueError("x")

    d = jmachine({
        "T": {"Type": "Task", "Resource": "boom", "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Fallback"}]},
        "Fallback": {"Type": "Pass", "Output": {"error": "{% $stateError %}"}, "End": True},
    })
    r = await run(d, {}, functions={"boom": boom})
    assert r.error == QEE
    assert r.cause.endswith("The JSONata expression '$stateError' specified for the field 'Output/error' "
                            "returned nothing (undefined).")
    assert "'Fallback'" in r.cause


# =============================================================================== names

@pytest.mark.parametrize("name", ["states", "a.b", "x[2]", "1abc", "a" * 81])
def test_invalid_variable_names_rejected(name):
    d = jmachine({"A": {"Type": "Pass", "Assign": {name: 1}, "End": True}})
    assert "/States/A/Assign" in [p.pointer[:len("/States/A/Assign")] for p in problems(d)]


@pytest.mark.parametrize("name", ["a" * 80, "_under", "ünïcode", "camelCase9"])
async def test_valid_variable_names_accepted(name):
    d = jmachine({"A": {"Type": "Pass", "Assign": {name: 1}, "Next": "B"},
                  "B": {"Type": "Pass", "Output": "{% $" + name + " %}", "End": True}})
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == 1


# =============================================================================== Assign takes effect when the state ends

async def test_jsonpath_pass_output_path_sees_variables_as_they_were():
    # Assign's values are the state's to hand on: its own OutputPath reads the values of entry
    d = machine({
        "Init": {"Type": "Pass", "Assign": {"x": "old"}, "Next": "A"},
        "A": {"Type": "Pass", "Assign": {"x": "new"}, "OutputPath": "$x", "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"out.$": "$", "x.$": "$x"}, "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"out": "old", "x": "new"}


async def test_jsonpath_first_assignment_is_not_visible_to_its_own_output_path():
    d = machine({"A": {"Type": "Pass", "Assign": {"fresh": 1}, "OutputPath": "$fresh", "End": True}})
    r = await run(d, {})
    assert r.status == "FAILED" and r.error == "States.Runtime"
    assert "Invalid path '$fresh'" in r.cause


async def test_jsonpath_task_output_path_sees_variables_as_they_were():
    d = machine({
        "Init": {"Type": "Pass", "Assign": {"v": 1}, "Next": "T"},
        "T": {"Type": "Task", "Resource": "f", "Assign": {"v.$": "$.n"}, "OutputPath": "$v", "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"out.$": "$", "v.$": "$v"}, "End": True},
    })
    r = await run(d, {}, functions={"f": lambda e: {"n": 2}})
    assert r.output == {"out": 1, "v": 2}


async def test_jsonpath_choice_rule_output_path_sees_variables_as_they_were():
    d = machine({
        "Init": {"Type": "Pass", "Assign": {"x": "old"}, "Next": "C"},
        "C": {"Type": "Choice", "OutputPath": "$x",
              "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Assign": {"x": "new"}, "Next": "D"}]},
        "D": {"Type": "Pass", "Parameters": {"out.$": "$", "x.$": "$x"}, "End": True},
    })
    r = await run(d, {"go": True})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"out": "old", "x": "new"}


async def test_jsonpath_wait_output_path_sees_variables_as_they_were():
    d = machine({
        "Init": {"Type": "Pass", "Assign": {"y": "old"}, "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 0, "Assign": {"y": "new"}, "OutputPath": "$y", "Next": "D"},
        "D": {"Type": "Pass", "Parameters": {"out.$": "$", "y.$": "$y"}, "End": True},
    })
    r = await run(d, {})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"out": "old", "y": "new"}


async def test_jsonpath_choice_default_output_path_sees_variables_as_they_were():
    d = machine({
        "Init": {"Type": "Pass", "Assign": {"x": "old"}, "Next": "C"},
        "C": {"Type": "Choice", "OutputPath": "$x", "Assign": {"x": "new"}, "Default": "D",
              "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Next": "D"}]},
        "D": {"Type": "Pass", "Parameters": {"out.$": "$", "x.$": "$x"}, "End": True},
    })
    r = await run(d, {"go": False})
    assert r.output == {"out": "old", "x": "new"}


# =============================================================================== nested scopes and Catchers

async def test_parallel_catcher_and_branch_may_assign_the_same_name():
    # the Catcher's Assign runs after the branches have ended, in the outer scope
    d = jmachine({
        "P": {"Type": "Parallel", "Next": "Ok",
              "Branches": [_branch({"T": {"Type": "Task", "Resource": "boom", "Assign": {"inputVar": "{% 1 %}"},
                                          "End": True}})],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Fallback",
                         "Assign": {"inputVar": "{% $states.input %}", "errorVar": "{% $states.errorOutput %}"}}]},
        "Fallback": {"Type": "Pass", "Output": {"in": "{% $inputVar %}", "err": "{% $errorVar.Error %}"}, "End": True},
        "Ok": {"Type": "Succeed"},
    })

    def boom(event):
        raise RuntimeError("no")

    r = await run(d, {"k": 1}, functions={"boom": boom})
    assert r.status == "SUCCEEDED", r.cause
    assert r.output == {"in": {"k": 1}, "err": "RuntimeError"}


def test_name_assigned_by_another_outer_state_is_still_reserved_in_branches():
    d = jmachine({
        "Init": {"Type": "Pass", "Assign": {"v": 1}, "Next": "P"},
        "P": {"Type": "Parallel", "End": True,
              "Branches": [_branch({"B": {"Type": "Pass", "Assign": {"v": 2}, "End": True}})],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Init", "Assign": {"v": 3}}]},
    })
    assert [p.pointer for p in problems(d)] == ["/States/P/Branches/0/States/B/Assign"]


def test_map_catcher_and_iteration_may_assign_the_same_name():
    d = machine({
        "M": {"Type": "Map", "End": True,
              "ItemProcessor": _branch({"I": {"Type": "Pass", "Assign": {"seen": 1}, "End": True}}),
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "After", "Assign": {"seen": 0}}]},
        "After": {"Type": "Succeed"},
    })
    express.Engine().compile(d)  # no DefinitionError
