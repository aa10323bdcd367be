"""Runs of Pass states fused into one step (express.engine.pass_runs): the same outcome as the states
run one by one, to the byte, the error, the event id and the transition count; inputs never mutated."""
from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

import express
from express.asl.limits import MAX_DEPTH
from express.engine import pass_runs
from tests.support import machine


def chain(*states: dict[str, Any], **top: Any) -> dict[str, Any]:
    """States P1..Pn in a row (each with its own fields), the last one ending the machine."""
    named = {}
    for i, st in enumerate(states, 1):
        st = dict(st)
        if "Next" not in st and "End" not in st and st.get("Type", "Pass") in ("Pass", "Task", "Wait"):
            st.update({"Next": f"P{i + 1}"} if i < len(states) else {"End": True})
        named[f"P{i}"] = {"Type": "Pass", **st}
    return machine(named, "P1", **top)


def set_(key: str, template: Any) -> dict[str, Any]:
    return {"Parameters": template, "ResultPath": f"$.{key}"}


REPLAYS: list[str] = []  # the runs whose fast path gave up (the states then ran one by one)


async def outcome(definition: Any, input: Any, fused: bool, monkeypatch: pytest.MonkeyPatch,
                  **engine: Any) -> tuple[Any, ...]:
    with monkeypatch.context() as m:
        if not fused:
            m.setattr(pass_runs, "fuse", lambda block: None)
        replay = pass_runs.PassRun.replay

        def counted(self: pass_runs.PassRun, frame: Any, data: Any) -> Any:
            REPLAYS.append(self.head.name)
            return replay(self, frame, data)

        m.setattr(pass_runs.PassRun, "replay", counted)
        compiled = express.Engine(clock=express.VirtualClock(), **engine).compile(definition)
        REPLAYS.clear()
        given = copy.deepcopy(input)
        r = await compiled.execute(given)
    assert given == input, "the execution changed its input"
    text = orjson.dumps(r.output) if r.status == "SUCCEEDED" else None  # key order included
    return r.status, text, r.error, r.cause, r.state_transitions


async def same(definition: Any, input: Any, monkeypatch: pytest.MonkeyPatch, replays: int | None = None,
               **engine: Any) -> tuple[Any, ...]:
    """The outcome with and without fusing, which must be the same; ``replays``: how many times
    the fused steps must have given up their fast path."""
    fused = await outcome(definition, input, True, monkeypatch, **engine)
    gave_up = list(REPLAYS)
    assert fused == await outcome(definition, input, False, monkeypatch, **engine)
    REPLAYS[:] = gave_up
    if replays is not None:
        assert len(gave_up) == replays
    return fused


def fused_steps(definition: Any) -> list[str]:
    m = express.Engine().compile(definition)
    return [s.name for s in m.block.states.values() if getattr(s.step, "__code__", None) is not None
            and s.step.__code__.co_filename.startswith("<express:pass-run")]


ORDER = {"order": {"id": "o-1", "amount": 50, "customer": {"name": "Alice", "tier": "gold"}},
         "items": [1, 2, 3], "s2": "there before"}


async def test_a_chain_is_one_step_with_the_states_outcome(monkeypatch):
    steps = [set_(f"s{i}", {"step": i, "id.$": "$.order.id", "c": {"n.$": "$.order.customer.name"}})
             for i in range(1, 11)]
    d = chain(*steps)
    assert fused_steps(d) == ["P1"]
    status, text, *_ = await same(d, ORDER, monkeypatch)
    out = orjson.loads(text)
    assert status == "SUCCEEDED" and list(out)[:4] == ["order", "items", "s2", "s1"]  # s2 kept its place
    assert out["s10"] == {"step": 10, "id": "o-1", "c": {"n": "Alice"}}


@pytest.mark.parametrize("steps", [
    # later states read what earlier ones wrote, and overwrite it
    [set_("a", {"v.$": "$.order.amount"}), set_("b", {"w.$": "$.a.v"}), set_("a", {"x.$": "$.b"}),
     set_("c", {"y.$": "$.a.x.w"})],
    # a result that holds the state's whole input, then writes after it
    [set_("a", {"v": 1}), set_("all", {"input.$": "$"}), set_("b", {"w.$": "$.all.input.a.v"}),
     set_("all2", {"arr.$": "States.Array($, $.a)"})],
    # Result literals: objects, arrays, strings, null
    [{"Result": {"k": [1, {"z": None}]}, "ResultPath": "$.r"}, {"Result": "text", "ResultPath": "$.t"},
     {"Result": [1, 2.5, True, None], "ResultPath": "$.l"}, {"Result": None, "ResultPath": "$.n"}],
    # replacing the data, then writing into what replaced it
    [{"Parameters": {"id.$": "$.order.id", "items.$": "$.items"}}, set_("n", {"first.$": "$.items[0]"}),
     set_("id", {"again.$": "$.id"})],
    [{"Result": [1, 2]}, set_("a", {"v": 1})],  # the write into an array fails as the state does
    [{"Result": "scalar"}],
    # intrinsics: scalar results and containers
    [set_("f", {"g.$": "States.Format('{} has {}', $.order.customer.name, $.order.amount)",
                "n.$": "States.ArrayLength($.items)", "p.$": "States.ArrayPartition($.items, 2)",
                "j.$": "States.StringToJson('{\"a\":[1,{\"b\":2}]}')", "m.$": "States.JsonMerge($.order, $.order.customer, false)"})],
    # indefinite paths
    [set_("q", {"all.$": "$.items[*]", "names.$": "$..name"})],
    # variables assigned before the run
    [{"Assign": {"x": {"deep": [5]}}}, set_("v", {"x.$": "$x", "d.$": "$x.deep[0]"})],
    # a Succeed ends the run
    [set_("a", {"v": 1}), {"Type": "Succeed"}],
])
async def test_shapes_match_the_states_run_one_by_one(steps, monkeypatch):
    status, *_ = await same(chain(*steps), ORDER, monkeypatch)
    assert status in ("SUCCEEDED", "FAILED")
    assert (status == "SUCCEEDED") == (not REPLAYS)  # only a failing state makes a run give up


async def test_a_result_holding_its_input_is_written_into_a_copy(monkeypatch):
    steps = [set_("a", {"v": 1}), set_("all", {"input.$": "$"}), set_("b", {"w.$": "$.all.input.a.v"})]
    status, text, *_ = await same(chain(*steps), {"x": 0}, monkeypatch, replays=0)
    assert orjson.loads(text) == {"x": 0, "a": {"v": 1}, "all": {"input": {"x": 0, "a": {"v": 1}}}, "b": {"w": 1}}


async def test_a_run_that_gives_up_restores_the_dict_it_was_given(monkeypatch):
    # the second run writes into the first one's dict, then passes the bound: undone, then replayed
    fill = [set_(f"f{i}", {"i": i}) for i in range(pass_runs.MAX_RUN)]
    steps = [*fill, set_("order", {"prev.$": "$.order"}), set_("k", {"v": 1}), set_("big", {"v.$": "$.pad"})]
    data = {"order": {"id": 1}, "k": "y" * (256 * 1024 - 3000), "pad": "p" * 2000}
    status, text, *_ = await same(chain(*steps), data, monkeypatch, replays=1)
    assert status == "SUCCEEDED" and orjson.loads(text)["order"] == {"prev": {"id": 1}}


@pytest.mark.parametrize("broken, expected", [
    ({"v.$": "$.order.missing"}, "States.Runtime"),
    ({"v.$": "$.items.x"}, "States.Runtime"),
    ({"v.$": "States.MathAdd($.order.id, 1)"}, "States.Runtime"),
    ({"v.$": "States.ArrayGetItem($.items, 9)"}, "States.Runtime"),
    ({"v.$": "$undefined"}, "States.Runtime"),
])
async def test_an_error_names_the_state_that_failed_and_its_event(broken, expected, monkeypatch):
    steps = [set_("a", {"v": 1}), set_("b", {"w.$": "$.a.v"}), set_("c", broken), set_("d", {"z": 0})]
    status, _, error, cause, transitions = await same(chain(*steps), ORDER, monkeypatch)
    assert (status, error, transitions) == ("FAILED", expected, 3)
    assert "'P3'" in cause and "#6" in cause  # entered at event 6: 1 started, then 2 per Pass state


async def test_a_list_input_fails_at_the_first_write(monkeypatch):
    status, _, error, cause, transitions = await same(chain(set_("a", {"v": 1}), set_("b", {"v": 2})), [1, 2],
                                                      monkeypatch)
    assert (status, error, transitions) == ("FAILED", "States.Runtime", 1)


async def test_the_payload_bound_names_the_state_that_passes_it(monkeypatch):
    big = "x" * 100_000
    steps = [set_(f"s{i}", {"v.$": "$.big"}) for i in range(1, 6)]
    status, _, error, cause, transitions = await same(chain(*steps), {"big": big}, monkeypatch)
    assert (status, error, transitions) == ("FAILED", "States.DataLimitExceeded", 2)
    assert "'P2'" in cause


async def test_near_the_bound_the_real_size_is_measured(monkeypatch):
    # each state's bound passes the limit (the key writes are counted generously) but the data fits
    data = {"k": "y" * (256 * 1024 - 300), "pad": "p" * 250}
    steps = [set_("k", {"v.$": "$.pad"}), set_("k2", {"v.$": "$.k"})]
    status, text, *_ = await same(chain(*steps), data, monkeypatch)
    assert status == "SUCCEEDED" and len(text) < 1000


def nested(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels, template", [
    (MAX_DEPTH - 1, {"v.$": "$.deep"}),  # one level too deep once written below $.r.v
    (MAX_DEPTH - 3, {"v.$": "$.deep"}),  # fits exactly
    (MAX_DEPTH - 1, {"v.$": "$.deep[0]"}),  # a longer path: always fits
    (MAX_DEPTH - 2, {"v.$": "States.Array($.deep)"}),
    (MAX_DEPTH - 4, {"v.$": "States.Array($.deep)"}),
])
async def test_nesting_beyond_the_limit_fails_as_the_state_does(levels, template, monkeypatch):
    await same(chain(set_("a", {"x": 1}), set_("r", template)), {"deep": nested(levels)}, monkeypatch)


async def test_long_chains_and_loops_run_in_place(monkeypatch):
    steps = [set_(f"s{i % 7}", {"i": i, "prev.$": f"$.s{(i - 1) % 7}.i"} if i > 1 else {"i": i})
             for i in range(1, 41)]
    assert (await same(chain(*steps), ORDER, monkeypatch))[0] == "SUCCEEDED"
    definition = machine({
        "Init": {"Type": "Pass", "Parameters": {"n": 0, "log": []}, "Next": "A"},
        "A": {"Type": "Pass", "Parameters": {"v.$": "$.n"}, "ResultPath": "$.a", "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"v.$": "$.a.v"}, "ResultPath": "$.b", "Next": "Count"},
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.b.v, 1)", "a.$": "$.a"}, "Next": "Loop"},
        "Loop": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 30, "Next": "A"}],
                 "Default": "Done"},
        "Done": {"Type": "Succeed"},
    }, "Init")
    status, text, _, _, transitions = await same(definition, {}, monkeypatch)
    assert status == "SUCCEEDED" and orjson.loads(text) == {"n": 30, "a": {"v": 29}}
    assert transitions == 1 + 30 * 4 + 1


async def test_a_run_after_a_run_writes_into_the_dict_it_was_given():
    steps = [set_(f"s{i}", {"i": i}) for i in range(1, 2 * pass_runs.MAX_RUN + 1)]
    m = express.Engine().compile(chain(*steps))
    given = {"a": 1}
    ex_result = await m.execute(given)
    assert given == {"a": 1} and len(ex_result.output) == 1 + 2 * pass_runs.MAX_RUN
    # by hand: the first run copies its input once; the second writes into that copy
    from express.engine.frame import Execution, Frame

    ex = Execution("m", "arn", "n", None, given, 0.0, m.engine.clock, 1e18, 1e18)
    frame = Frame(ex, None, None, 7)
    nxt, first = m.block.start.step(frame, given)
    assert first is not given and isinstance(nxt, pass_runs._Owned)
    end, second = nxt.step(frame, first)
    assert second is first and end is None and frame.size >= len(orjson.dumps(second))


async def test_parallel_branches_share_their_input_unharmed(monkeypatch):
    def branch(n: int) -> dict[str, Any]:
        return {"StartAt": f"A{n}", "States": {
            f"A{n}": {"Type": "Pass", "Parameters": {"v.$": "$.order.id"}, "ResultPath": "$.x", "Next": f"B{n}"},
            f"B{n}": {"Type": "Pass", "Result": n, "ResultPath": "$.order", "End": True}}}

    definition = machine({"Par": {"Type": "Parallel", "Branches": [branch(1), branch(2)], "End": True}}, "Par")
    status, text, *_ = await same(definition, ORDER, monkeypatch)
    assert [(b["x"], b["order"]) for b in orjson.loads(text)] == [({"v": "o-1"}, 1), ({"v": "o-1"}, 2)]


async def test_logged_machines_run_state_by_state(monkeypatch):
    definition = chain(set_("a", {"v": 1}), set_("b", {"v": 2}))
    log = {"level": "ALL", "includeExecutionData": True}
    m = express.Engine().compile(definition, logging=log)
    assert not any(getattr(s, "step", None) is not None and getattr(s.step, "__code__", None) is not None
                   and s.step.__code__.co_filename.startswith("<express:pass-run") for s in m.block.states.values())
    r = await m.execute({})
    assert r.output == {"a": {"v": 1}, "b": {"v": 2}}
