"""Usage records (metering): what each execution would be billed, and their summary per machine."""
from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson
import pytest

from express import Engine, VirtualClock
from express.asl.errors import ASLError
from express.engine.billing import MB, Prices, bill
from express.observe.metering import UsageRecorder, format_summary, read_records, summarise, usage_record
from express.observe.sinks import MemorySink, StreamSink
from tests.support import MAP_OF_PARALLELS

T0 = 1_000_000.0  # virtual clock start: exact float arithmetic on durations
TIER1_PER_GB_S = 0.06 / 3600


def wait(seconds: float) -> dict[str, Any]:
    """A machine that takes ``seconds`` of (virtual) time: a task sleeping on the engine's clock."""
    return {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "sleep", "Parameters": {"s": seconds},
                                             "End": True}}}


def engine(**kw: Any) -> Engine:
    clock = VirtualClock(T0)

    async def sleep(event: Any) -> Any:
        await clock.sleep(event["s"])
        return event

    return Engine({"sleep": sleep}, clock=clock, **kw)


PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
FAIL = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Custom.Failure", "Cause": "no"}}}


def run_all(coros: list[Any]) -> list[Any]:
    async def main() -> list[Any]:
        return [await c for c in coros]

    return asyncio.run(main())


def records_of(sink: MemorySink) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in sink.records]


# ---------------------------------------------------------------------- records of real executions
@pytest.mark.parametrize(("seconds", "billed_ms"), [(0, 100), (0.05, 100), (0.25, 300), (1.0, 1000), (2.301, 2400)])
def test_record_of_a_real_execution_rounds_duration_up_to_100ms(seconds: float, billed_ms: int) -> None:
    sink = MemorySink()
    eng = engine(usage_sink=sink)
    machine = eng.compile(wait(seconds) if seconds else PASS, "billed")
    result = run_all([machine.execute({"k": "v"}, "exec-1")])[0]
    assert result.status == "SUCCEEDED"
    [rec] = records_of(sink)
    assert rec["machine"] == "billed"
    assert rec["executionName"] == "exec-1"
    assert rec["mode"] == "api"
    assert rec["status"] == "SUCCEEDED"
    assert rec["start"] == T0
    assert rec["durationMs"] == pytest.approx(seconds * 1000, abs=1e-3)
    assert rec["billedDurationMs"] == billed_ms
    assert rec["billedMemoryMB"] == 64
    assert rec["stateTransitions"] == 1
    gb_s = billed_ms / 1000 * 64 / 1024
    assert rec["gbSeconds"] == pytest.approx(gb_s)
    # one request at $1/M plus the duration at the first tier's price
    assert rec["cost"] == pytest.approx(1e-6 + gb_s * TIER1_PER_GB_S)
    # memory estimate: 50 MB + definition + payload (x1 with no Map/Parallel step)
    definition_bytes = len(orjson.dumps(machine.definition))
    assert rec["memoryUsedMB"] == pytest.approx(50 + definition_bytes / MB + len(b'{"k":"v"}') / MB, abs=1e-3)


def test_failed_and_timed_out_executions_are_billed_too() -> None:
    sink = MemorySink()
    eng = engine(usage_sink=sink, max_duration_s=1.0)
    failing = eng.compile(FAIL, "failing")
    slow = eng.compile({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}}, "slow")
    results = run_all([failing.execute({}, "f"), slow.execute({}, "s")])
    assert [r.status for r in results] == ["FAILED", "TIMED_OUT"]
    recs = {r["executionName"]: r for r in records_of(sink)}
    assert recs["f"]["status"] == "FAILED" and recs["f"]["billedDurationMs"] == 100
    assert recs["s"]["status"] == "TIMED_OUT" and recs["s"]["billedDurationMs"] == 1000
    assert recs["s"]["machine"] == "slow"


@pytest.mark.parametrize(("n_items", "billed_mb"), [(0, 64), (60, 64), (80, 128)])
def test_billed_memory_counts_map_and_parallel_steps_in_64mb_steps(n_items: int, billed_mb: int) -> None:
    # 200 KB of payload per step: 50 MB + 61 x 0.19 MB < 64 MB, but 50 MB + 81 x 0.19 MB > 64 MB
    payload = {"items": list(range(n_items)), "pad": "x" * 200_000}
    payload_bytes = len(orjson.dumps(payload))
    sink = MemorySink()
    eng = engine(usage_sink=sink)
    machine = eng.compile(MAP_OF_PARALLELS, "mapped")
    result = run_all([machine.execute(payload, "m")])[0]
    assert result.status == "SUCCEEDED", result
    [rec] = records_of(sink)
    steps = 1 + n_items  # the Map state, and the Parallel state of each iteration
    definition_bytes = len(orjson.dumps(machine.definition))
    expected = 50 + definition_bytes / MB + payload_bytes / MB * steps
    assert rec["memoryUsedMB"] == pytest.approx(expected, abs=1e-3)
    assert rec["billedMemoryMB"] == billed_mb
    assert rec["billedMemoryMB"] == max(64, math.ceil(expected / 64) * 64)
    assert rec["gbSeconds"] == pytest.approx(0.1 * billed_mb / 1024)


def test_usage_record_reports_the_billing_the_result_carries() -> None:
    # the Map -> Parallel run over 100 items of issue 11: ~200 KB x 101 steps -> 128 MB
    payload = {"items": list(range(100)), "pad": "x" * 200_000}
    text = orjson.dumps(payload, option=orjson.OPT_INDENT_2)  # the caller read it as this text
    sink = MemorySink()
    eng = engine(usage_sink=sink)
    machine = eng.compile(MAP_OF_PARALLELS, "same")
    result = run_all([machine.execute(payload, "m", input_size=len(text))])[0]
    assert result.status == "SUCCEEDED"
    [rec] = records_of(sink)
    assert (rec["billedDurationMs"], rec["billedMemoryMB"]) == (result.billed_duration_ms, result.billed_memory_mb)
    assert (result.billed_duration_ms, result.billed_memory_mb) == (100, 128)
    expected = 50 + machine.definition_size / MB + len(text) / MB * 101  # the size the caller gave
    assert rec["memoryUsedMB"] == pytest.approx(expected, abs=1e-3)
    assert rec["gbSeconds"] == pytest.approx(0.1 * 128 / 1024)


def test_records_carry_the_mode_the_execution_was_started_with() -> None:
    sink = MemorySink()
    eng = engine(usage_sink=sink)
    machine = eng.compile(PASS, "moded")
    run_all([machine.execute({}, "a", mode="sync"), machine.execute({}, "b", mode="async"),
             machine.execute({}, "c", mode="sync"), machine.execute({}, "d")])
    assert [(r["executionName"], r["mode"]) for r in records_of(sink)] == [
        ("a", "sync"), ("b", "async"), ("c", "sync"), ("d", "api")]
    summary = summarise(records_of(sink))
    assert summary.machines["moded"].by_mode == {"sync": 2, "async": 1, "api": 1}


def test_no_usage_sink_no_records_and_custom_prices_apply() -> None:
    prices = Prices(per_request=5e-6, gb_hour_tiers=((math.inf, 3.6),))  # $0.001 per GB-second
    sink = MemorySink()
    eng = engine(usage_sink=sink, prices=prices)
    run_all([eng.compile(wait(1), "priced").execute({}, "p")])
    [rec] = records_of(sink)
    assert rec["cost"] == pytest.approx(5e-6 + 0.0625 * 0.001)
    silent = engine()
    assert silent.usage_sink is None
    assert run_all([silent.compile(PASS).execute({})])[0].status == "SUCCEEDED"


def test_usage_record_function_matches_its_json() -> None:
    b = bill(0.1234, 1000, 2000)
    rec = usage_record("m", "n", "sync", "SUCCEEDED", 5.0, 0.1234, b.billed_duration_ms, b.billed_memory_mb,
                       b.memory_used_mb, 3)
    data = orjson.loads(rec.to_json())
    assert data["billedDurationMs"] == 200
    assert data["durationMs"] == pytest.approx(123.4)
    assert data["gbSeconds"] == pytest.approx(rec.gb_seconds) == pytest.approx(0.2 * 64 / 1024)
    assert data["cost"] == pytest.approx(rec.cost)
    assert rec.request_cost == pytest.approx(1e-6)


# ---------------------------------------------------------------------- summaries
def rec(machine: str, start: float, gb_hours: float = 0.0, *, billed_ms: int = 100, status: str = "SUCCEEDED",
        mode: str = "sync", transitions: int = 2) -> dict[str, Any]:
    return {"machine": machine, "executionName": f"{machine}-{start}", "mode": mode, "status": status,
            "start": start, "billedDurationMs": billed_ms, "billedMemoryMB": 64,
            "gbSeconds": gb_hours * 3600.0, "stateTransitions": transitions}


def test_summary_applies_the_tiers_to_the_window_total() -> None:
    records = [rec("a", 10, 600), rec("a", 20, 200, status="FAILED"), rec("b", 30, 700, mode="async")]
    s = summarise(records)
    # 1,500 GB-hours: 1,000 at $0.06 + 500 at $0.03; priced per machine alone, each would be tier 1
    assert s.duration_cost == pytest.approx(1000 * 0.06 + 500 * 0.03)
    assert s.request_cost == pytest.approx(3e-6)
    assert s.cost == pytest.approx(75.000003)
    a, b = s.machines["a"], s.machines["b"]
    assert (a.executions, a.failed, a.billed_duration_ms, a.state_transitions) == (2, 1, 200, 4)
    assert a.gb_seconds == pytest.approx(800 * 3600)
    assert (b.executions, b.failed) == (1, 0)
    assert b.gb_seconds == pytest.approx(700 * 3600)
    assert a.by_mode == {"sync": 2} and b.by_mode == {"async": 1}


def test_summary_third_tier() -> None:
    s = summarise([rec("a", 1, 3000), rec("b", 2, 3000)])
    assert s.duration_cost == pytest.approx(1000 * 0.06 + 4000 * 0.03 + 1000 * 0.01642)


def test_summary_window_is_half_open_and_excluded_records_do_not_count_towards_tiers() -> None:
    records = [rec("a", 99.9, 5000), rec("a", 100, 1), rec("b", 150, 2), rec("a", 199.99, 3), rec("a", 200, 5000)]
    s = summarise(records, since=100, until=200)
    assert s.since == 100 and s.until == 200
    assert s.machines["a"].executions == 2 and s.machines["b"].executions == 1
    assert s.duration_cost == pytest.approx(6 * 0.06)  # all in tier 1: the 5,000 GB-h records are outside
    assert s.request_cost == pytest.approx(3e-6)
    assert summarise(records, since=200).machines.keys() == {"a"}
    assert summarise(records, until=100).machines["a"].executions == 1
    assert summarise(records, since=500).machines == {}


def test_summary_with_custom_prices() -> None:
    prices = Prices(per_request=1e-3, gb_hour_tiers=((10.0, 1.0), (math.inf, 0.5)))
    s = summarise([rec("a", 1, 8), rec("a", 2, 8)], prices=prices)
    assert s.request_cost == pytest.approx(2e-3)
    assert s.duration_cost == pytest.approx(10 * 1.0 + 6 * 0.5)


def test_summary_computes_gb_seconds_when_a_record_lacks_them() -> None:
    r = rec("a", 1)
    del r["gbSeconds"]
    r["billedDurationMs"] = 2000
    r["billedMemoryMB"] = 128
    s = summarise([r])
    assert s.machines["a"].gb_seconds == pytest.approx(2 * 128 / 1024)


def test_read_records_skips_malformed_lines(tmp_path: Any) -> None:
    good1, good2 = rec("a", 1, 1), rec("b", 2, 1)
    path = tmp_path / "usage.log"
    path.write_bytes(b"\n".join([
        orjson.dumps(good1),
        b"",
        b"not json at all",
        b"[1, 2, 3]",
        b'{"machine": "x"}',  # no billedDurationMs
        b'{"billedDurationMs": 100}',  # no machine
        b"   ",
        orjson.dumps(good2),
        orjson.dumps(rec("c", 3))[:25],  # a torn last line
    ]))
    assert list(read_records([path])) == [good1, good2]
    other = tmp_path / "more.log"
    other.write_bytes(orjson.dumps(rec("c", 4)) + b"\n")
    assert [r["machine"] for r in read_records([str(path), other])] == ["a", "b", "c"]


def test_format_summary_lists_machines_and_cost() -> None:
    s = summarise([rec("zeta", 1, 1, transitions=7), rec("alpha", 2, 0, status="FAILED", billed_ms=2500)])
    lines = format_summary(s).splitlines()
    assert lines[0].split() == ["machine", "executions", "failed", "billed", "s", "GB-s", "transitions"]
    assert lines[1].split() == ["alpha", "1", "1", "2.5", "0.000", "2"]
    assert lines[2].split() == ["zeta", "1", "0", "0.1", "3600.000", "7"]
    assert lines[3] == "cost: requests $0.000002 + duration $0.060000 = $0.060002"


# ---------------------------------------------------------------------- to a metering log and back
def test_records_written_by_a_stream_sink_summarise_back(tmp_path: Any) -> None:
    path = tmp_path / "metering.log"
    sink = StreamSink(str(path), name="usage")
    eng = engine(usage_sink=sink)
    ok = eng.compile(wait(0.5), "ok")
    bad = eng.compile(FAIL, "bad")
    run_all([ok.execute({}, f"ok{i}", mode="sync") for i in range(3)] + [bad.execute({}, "bad0", mode="async")])
    sink.close()
    records = list(read_records([path]))
    assert len(records) == 4
    s = summarise(records)
    assert s.machines["ok"].executions == 3 and s.machines["ok"].billed_duration_ms == 1500
    assert s.machines["bad"].failed == 1 and s.machines["bad"].by_mode == {"async": 1}
    assert s.request_cost == pytest.approx(4e-6)
    assert s.duration_cost == pytest.approx((3 * 0.5 + 0.1) * 64 / 1024 * TIER1_PER_GB_S)


def test_usage_sink_never_sees_an_exception_from_a_failing_task() -> None:
    def boom(event: Any) -> Any:
        raise ASLError("Boom", "x")

    sink = MemorySink()
    eng = Engine({"boom": boom}, clock=VirtualClock(T0), usage_sink=sink)
    m = eng.compile({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "boom", "End": True}}}, "t")
    assert run_all([m.execute({}, "x")])[0].error == "Boom"
    assert records_of(sink)[0]["status"] == "FAILED"


def test_failed_execution_record_counts_its_state_transitions() -> None:
    sink = MemorySink()
    eng = engine(usage_sink=sink)
    m = eng.compile({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "F"},
                                                "F": {"Type": "Fail", "Error": "E"}}}, "transitions")
    run_all([m.execute({}, "x")])
    assert records_of(sink)[0]["stateTransitions"] == 3


# ---------------------------------------------------------------------- the engine's usage hook
def test_a_usage_recorder_as_usage_sink_writes_the_very_records_of_a_plain_sink() -> None:
    prices = Prices(per_request=5e-6, gb_hour_tiers=((10.0, 3.6), (math.inf, 1.0)))
    plain, recorded = MemorySink(), MemorySink()
    by_sink = engine(usage_sink=plain, prices=prices)
    by_recorder = engine(usage_sink=UsageRecorder(recorded, prices))
    assert by_sink.usage_sink is plain  # the sink given stays the engine's usage_sink
    assert isinstance(by_sink.usage, UsageRecorder) and by_sink.usage.prices is prices
    payload = {"items": list(range(100)), "pad": "x" * 200_000}  # 128 MB billed
    for eng in (by_sink, by_recorder):
        run_all([eng.compile(wait(1.25), "slow").execute({}, "s", mode="sync"),
                 eng.compile(FAIL, "failing").execute({}, "f", mode="async"),
                 eng.compile(MAP_OF_PARALLELS, "big").execute(payload, "b")])
    assert len(plain.records) == 3
    assert list(recorded.records) == list(plain.records)
    slow, failing, big = records_of(plain)
    assert (slow["billedDurationMs"], slow["gbSeconds"], failing["status"], big["billedMemoryMB"]) == (
        1300, 1.3 * 64 / 1024, "FAILED", 128)


def test_any_usage_hook_is_told_of_every_execution_with_its_billing() -> None:
    class Hook:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, str, int, int, float]] = []

        def record(self, machine: str, mode: str, result: Any, memory_used_mb: float) -> None:
            self.calls.append((machine, mode, result.status, result.billed_duration_ms, result.billed_memory_mb,
                               memory_used_mb))

    hook = Hook()
    eng = engine(usage_sink=hook)
    assert eng.usage is hook
    machine = eng.compile(wait(0.25), "hooked")
    run_all([machine.execute({}, "h", mode="sync", input_size=200_000)])
    assert hook.calls == [("hooked", "sync", "SUCCEEDED", 300, 64, 50 + machine.definition_size / MB + 200_000 / MB)]
