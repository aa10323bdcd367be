"""express.asl.limits through the Python API: how deep values may nest, which integers are kept, and
definitions that are not JSON express can keep (DefinitionError with a JSON pointer, never
another exception)."""
from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

from express import Engine, VirtualClock
from express.asl.errors import RUNTIME, DefinitionError
from express.asl.limits import MAX_DEPTH, MAX_INT, MIN_INT, ORJSON_WRITE_DEPTH

SCHEMA = "SCHEMA_VALIDATION_FAILED"


def nest(depth: int, leaf: Any = 1) -> Any:
    """``leaf`` inside ``depth`` objects: {"a": {"a": ... leaf}}."""
    v = leaf
    for _ in range(depth):
        v = {"a": v}
    return v


def depth_of(value: Any) -> int:
    d = 0
    while isinstance(value, dict) and value:
        value = next(iter(value.values()))
        d += 1
    return d


def one(**state: Any) -> dict[str, Any]:
    state.setdefault("End", True)
    return {"StartAt": "S", "States": {"S": state}}


async def run(definition: Any, value: Any, functions: dict[str, Any] | None = None) -> Any:
    machine = Engine(functions=functions, clock=VirtualClock()).compile(definition)
    return await machine.execute(value)


def problems_of(definition: Any) -> list[Any]:
    with pytest.raises(DefinitionError) as info:
        Engine().compile(definition)
    return info.value.problems


# ---------------------------------------------------------------------- the premise


def test_the_limit_is_one_below_what_orjson_writes():
    assert MAX_DEPTH == ORJSON_WRITE_DEPTH - 1 == 253
    orjson.dumps(nest(ORJSON_WRITE_DEPTH))
    with pytest.raises(orjson.JSONEncodeError, match="^Recursion limit reached$"):
        orjson.dumps(nest(ORJSON_WRITE_DEPTH + 1))
    # ... while it reads far deeper: the reason the doors must check
    assert orjson.loads(b"[" * 1024 + b"]" * 1024)
    # and the integers it keeps exactly
    assert orjson.loads(str(MAX_INT)) == MAX_INT and orjson.loads(str(MIN_INT)) == MIN_INT
    assert type(orjson.loads(str(MAX_INT + 1))) is float
    assert type(orjson.loads(str(MIN_INT - 1))) is float


# ---------------------------------------------------------------------- inputs (Python API)


async def test_input_at_the_limit_runs_and_its_output_can_be_written():
    r = await run(one(Type="Pass"), nest(MAX_DEPTH))
    assert r.status == "SUCCEEDED" and depth_of(r.output) == MAX_DEPTH
    orjson.dumps({"output": r.output})  # inside a document one level down, as Kafka writes it


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, ORJSON_WRITE_DEPTH + 1, 1000])
async def test_input_nested_too_deeply_fails_with_a_clear_runtime_cause(depth):
    r = await run(one(Type="Pass"), nest(depth))
    assert (r.status, r.error) == ("FAILED", RUNTIME)
    assert "Internal error" not in r.cause
    assert r.cause.startswith("The input nests arrays and objects more than 253 levels deep: the value at /a/a/")
    assert r.cause.endswith("is at depth 254, and the limit is 253")


@pytest.mark.parametrize("number", [MAX_INT + 1, MIN_INT - 1, 10**40])
async def test_input_integer_beyond_64_bits_fails_clearly(number):
    r = await run(one(Type="Pass"), {"ok": [1, 2], "n": [0, {"big": number}]})
    assert (r.status, r.error) == ("FAILED", RUNTIME)
    assert r.cause == (f"The input holds the integer {number} at /n/1/big, outside the range "
                       f"{MIN_INT} to {MAX_INT} that is kept exactly; give it as a string")


async def test_integers_at_the_edges_of_the_range_are_kept_exactly():
    value = {"max": MAX_INT, "min": MIN_INT, "s": "123456789012345678901234567890"}
    r = await run(one(Type="Pass", Parameters={"copy.$": "$"}), value)
    assert r.status == "SUCCEEDED" and r.output == {"copy": value}


# ---------------------------------------------------------------------- values states build


def assert_too_deep(result: Any, state: str = "S") -> None:
    assert (result.status, result.error) == ("FAILED", RUNTIME), (result.status, result.error, result.cause)
    assert result.cause.startswith(f"An error occurred while executing the state '{state}' (entered at the event id #")
    assert "more than 253 levels deep" in result.cause and "the limit is 253" in result.cause
    assert "Internal error" not in result.cause


async def test_parameters_that_nest_the_input_too_deeply_fail_as_an_asl_error():
    definition = one(Type="Pass", Parameters={"x": {"y.$": "$"}})
    ok = await run(definition, nest(MAX_DEPTH - 2))
    assert ok.status == "SUCCEEDED" and depth_of(ok.output) == MAX_DEPTH
    assert_too_deep(await run(definition, nest(MAX_DEPTH - 1)))
    assert_too_deep(await run(definition, nest(MAX_DEPTH)))


@pytest.mark.parametrize("path", ["$.b", "$.b.c.d", "$.b[0]"])
async def test_a_result_path_that_writes_the_result_too_deep_fails_as_an_asl_error(path):
    """The bug: a ResultPath write measured the result alone, so the output could end up deeper
    than anything can write (HTTP 500, Kafka "output is not serialisable")."""
    levels = path.count(".") + path.count("[")
    data = {"b": [0]} if "[" in path else {}
    definition = one(Type="Pass", Parameters={"r.$": "$.deep"}, ResultPath=path)
    # the result {"r": deep} lands ``levels`` down: the output nests levels + 1 + depth(deep)
    ok = await run(definition, {**data, "deep": nest(MAX_DEPTH - levels - 1)})
    assert ok.status == "SUCCEEDED", ok.cause
    orjson.dumps({"output": ok.output})
    failed = await run(definition, {**data, "deep": nest(MAX_DEPTH - levels)})
    assert_too_deep(failed)
    assert f"The ResultPath writes the result {levels} level" in failed.cause


async def test_a_task_result_written_too_deep_fails_as_an_asl_error():
    definition = one(Type="Task", Resource="deep", ResultPath="$.r.s")
    ok = await run(definition, {}, {"deep": lambda e: nest(MAX_DEPTH - 2)})
    assert ok.status == "SUCCEEDED"
    assert_too_deep(await run(definition, {}, {"deep": lambda e: nest(MAX_DEPTH - 1)}))


async def test_a_map_whose_results_nest_too_deeply_fails_as_an_asl_error():
    iteration = {"StartAt": "I", "States": {"I": {"Type": "Pass", "Parameters": {"x": {"y.$": "$"}}, "End": True}}}
    definition = one(Type="Map", ItemsPath="$.items", ItemProcessor=iteration)
    # each iteration's result nests 2 levels more than its item, the list of results one more
    ok = await run(definition, {"items": [nest(MAX_DEPTH - 3)]})
    assert ok.status == "SUCCEEDED" and depth_of(ok.output[0]) == MAX_DEPTH - 1
    assert_too_deep(await run(definition, {"items": [nest(MAX_DEPTH - 2)]}))


async def test_an_intrinsic_that_parses_too_deep_a_value_fails_as_an_asl_error():
    definition = one(Type="Pass", Parameters={"v.$": "States.StringToJson($.text)"})
    assert_too_deep(await run(definition, {"text": "[" * 600 + "]" * 600}))


async def test_jsonata_output_that_nests_too_deeply_fails_as_an_asl_error():
    definition = one(Type="Pass", QueryLanguage="JSONata", Output={"x": "{% $states.input %}"})
    assert_too_deep(await run(definition, nest(MAX_DEPTH)))


async def test_a_jsonata_choice_output_is_measured_too():
    definition = {"QueryLanguage": "JSONata", "StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "D",
                                             "Output": {"x": "{% $states.input %}"}}]},
        "D": {"Type": "Succeed"}}}
    assert (await run(definition, nest(MAX_DEPTH - 1))).status == "SUCCEEDED"
    assert_too_deep(await run(definition, nest(MAX_DEPTH)), "C")


# ---------------------------------------------------------------------- definitions


@pytest.mark.parametrize("depth", [200, 230, MAX_DEPTH - 4])
async def test_parameters_nested_deeper_than_python_can_parse_compile_and_run(depth):
    """The bug: a template 200+ levels deep raised SyntaxError ("too many nested parentheses")
    out of Engine.compile."""
    template = nest(depth - 1, {"v.$": "$.v"})
    r = await run(one(Type="Pass", Parameters=template), {"v": [1, 2]})
    assert r.status == "SUCCEEDED"
    assert r.output == nest(depth - 1, {"v": [1, 2]})
    missing = await run(one(Type="Pass", Parameters=template), {})
    assert missing.error == RUNTIME and "The JSONPath '$.v' specified for the field 'v.$' could not be found" in missing.cause


def test_a_definition_nested_beyond_the_limit_is_a_definition_error_with_its_place():
    problems = problems_of(one(Type="Pass", Parameters=nest(400)))
    assert len(problems) == 1
    p = problems[0]
    # the Parameters object is at depth 4: its 250th "a" is the first object at depth 254
    assert (p.code, p.pointer) == (SCHEMA, "/States/S/Parameters" + "/a" * (MAX_DEPTH - 3))
    assert "more than 253 levels deep" in p.message
    text = json.dumps(one(Type="Pass", Result=nest(400)))
    assert problems_of(text)[0].pointer == "/States/S/Result" + "/a" * (MAX_DEPTH - 3)


def test_a_definition_deeper_than_the_parser_reads_is_a_definition_error():
    text = '{"StartAt": "S", "States": {"S": {"Type": "Pass", "End": true, "Result": ' + "[" * 1100 + "]" * 1100 + "}}}"
    assert problems_of(text)[0].code == "INVALID_JSON_DESCRIPTION"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["Result", "Parameters"])
def test_nan_and_infinities_are_definition_errors(value, field):
    """The bug: NaN compiled, then failed at run time with NameError: name 'nan'."""
    problems = problems_of(one(Type="Pass", **{field: {"x": [1, value]}}))
    assert [(p.code, p.pointer) for p in problems] == [(SCHEMA, f"/States/S/{field}/x/1")]
    assert "not JSON" in problems[0].message


@pytest.mark.parametrize("where", ["state", "Result", "Parameters"])
def test_a_key_that_is_not_a_string_is_a_definition_error(where):
    """The bug: AttributeError ('int' object has no attribute 'endswith')."""
    if where == "state":
        definition = one(Type="Pass", **{"Comment": "c"})
        definition["States"]["S"][3] = "x"
        pointer = "/States/S"
    else:
        definition = one(Type="Pass", **{where: {"ok": {3: "x"}}})
        pointer = f"/States/S/{where}/ok"
    problems = problems_of(definition)
    assert [(p.code, p.pointer) for p in problems] == [(SCHEMA, pointer)]
    assert "The object key 3 is not a string" in problems[0].message


def test_an_integer_beyond_64_bits_in_a_definition_is_refused_not_rounded():
    text = '{"StartAt": "S", "States": {"S": {"Type": "Pass", "End": true, "Result": {"n": [123456789012345678901234567890]}}}}'
    problems = problems_of(text)
    assert [(p.code, p.pointer) for p in problems] == [(SCHEMA, "/States/S/Result/n/0")]
    assert "123456789012345678901234567890" in problems[0].message
    assert problems_of(one(Type="Pass", Result={"n": 2**64}))[0].pointer == "/States/S/Result/n"
    # a long digit run inside a string, and integers at the edges, are fine
    ok = '{"StartAt": "S", "States": {"S": {"Type": "Pass", "End": true, "Result": ' \
         '{"s": "123456789012345678901234567890", "n": 18446744073709551615, "m": -9223372036854775808}}}}'
    Engine().compile(ok)


def test_a_result_path_writing_deeper_than_data_may_nest_is_a_definition_error():
    Engine().compile(one(Type="Pass", ResultPath="$" + ".a" * (MAX_DEPTH - 1)))
    problems = problems_of(one(Type="Pass", ResultPath="$" + ".a" * MAX_DEPTH))
    assert [(p.code, p.pointer) for p in problems] == [(SCHEMA, "/States/S/ResultPath")]
    catch = one(Type="Task", Resource="arn:aws:lambda:us-east-1:000000000000:function:f",
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$" + ".a" * MAX_DEPTH, "Next": "S"}])
    with pytest.raises(DefinitionError) as info:
        Engine(functions={"f": lambda e: e}).compile(catch)
    assert [p.pointer for p in info.value.problems] == ["/States/S/Catch/0/ResultPath"]


def test_the_cli_validates_a_deep_template_without_a_traceback(tmp_path, capsys):
    from express.serve.cli import main

    path = tmp_path / "deep.asl.json"
    path.write_text(json.dumps(one(Type="Pass", Parameters=nest(220, {"v.$": "$"}))))
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: OK"
