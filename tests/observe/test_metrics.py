"""Prometheus metrics of executions: exact sample values, parsed from the text exposition.

RECORDER and the metrics are process-global: every test uses machine names of its own and reads
values before and after, asserting the deltas.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import express
from express import Engine, VirtualClock
from express.asl.errors import ASLError
from express.observe.metrics import DURATION_BUCKETS, RECORDER, exposition

T0 = 1_000_000.0
Key = tuple[str, frozenset[tuple[str, str]]]


def scrape(text: bytes | None = None) -> dict[Key, float]:
    data = exposition() if text is None else text
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(data.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Mapping[Key, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Mapping[Key, float], after: Mapping[Key, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def run_all(coros: list[Any]) -> list[Any]:
    async def main() -> list[Any]:
        return [await c for c in coros]

    return asyncio.run(main())


def wait(seconds: int) -> dict[str, Any]:
    if seconds == 0:
        return {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    return {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": seconds, "End": True}}}


FAIL = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "F"},
                                   "F": {"Type": "Fail", "Error": "Custom.Failure", "Cause": "no"}}}


# ---------------------------------------------------------------------- executions by status
def test_succeeded_failed_and_timed_out_executions_are_counted() -> None:
    ok, bad, slow = unique("ok"), unique("bad"), unique("slow")
    engine = Engine(clock=VirtualClock(T0), metrics=True, max_duration_s=2.0)
    m_ok, m_bad, m_slow = engine.compile(wait(0), ok), engine.compile(FAIL, bad), engine.compile(wait(10), slow)
    before = scrape()
    results = run_all([m_ok.execute({}, "ok-1"), m_ok.execute({}, "ok-2", mode="sync"),
                       m_bad.execute({}, "bad-1", mode="async"), m_slow.execute({}, "slow-1", mode="sync")])
    assert [r.status for r in results] == ["SUCCEEDED", "SUCCEEDED", "FAILED", "TIMED_OUT"]
    after = scrape()

    assert delta(before, after, "express_executions_started_total", machine=ok, mode="api") == 1
    assert delta(before, after, "express_executions_started_total", machine=ok, mode="sync") == 1
    assert delta(before, after, "express_executions_started_total", machine=bad, mode="async") == 1
    assert delta(before, after, "express_executions_total", machine=ok, mode="api", status="SUCCEEDED") == 1
    assert delta(before, after, "express_executions_total", machine=ok, mode="sync", status="SUCCEEDED") == 1
    assert delta(before, after, "express_executions_total", machine=bad, mode="async", status="FAILED") == 1
    assert delta(before, after, "express_executions_total", machine=slow, mode="sync", status="TIMED_OUT") == 1
    assert delta(before, after, "express_executions_total", machine=bad, mode="async", status="SUCCEEDED") == 0
    # failures and timeouts by ASL error name; successes have none
    assert delta(before, after, "express_execution_errors_total", machine=bad, error="Custom.Failure") == 1
    assert delta(before, after, "express_execution_errors_total", machine=slow, error="States.Timeout") == 1
    assert not [k for k in after if k[0] == "express_execution_errors_total" and ("machine", ok) in k[1]]
    # billed duration: 100 ms minimum each; the timed-out one ran its 2 s cap
    assert delta(before, after, "express_billed_duration_seconds_total", machine=ok) == pytest.approx(0.2)
    assert delta(before, after, "express_billed_duration_seconds_total", machine=bad) == pytest.approx(0.1)
    assert delta(before, after, "express_billed_duration_seconds_total", machine=slow) == pytest.approx(2.0)
    assert delta(before, after, "express_billed_duration_gigabyte_seconds_total", machine=slow) == pytest.approx(2.0 * 64 / 1024)
    assert delta(before, after, "express_billed_duration_gigabyte_seconds_total", machine=ok) == pytest.approx(0.2 * 64 / 1024)
    assert delta(before, after, "express_state_transitions_total", machine=ok) == 2


def test_definition_timeout_counts_as_timed_out_without_an_error_name() -> None:
    name = unique("deftimeout")
    engine = Engine(clock=VirtualClock(T0), metrics=True)
    m = engine.compile({**wait(10), "TimeoutSeconds": 1}, name)
    before = scrape()
    assert run_all([m.execute({})])[0].status == "TIMED_OUT"
    after = scrape()
    assert delta(before, after, "express_executions_total", machine=name, mode="api", status="TIMED_OUT") == 1
    assert not [k for k in after if k[0] == "express_execution_errors_total" and ("machine", name) in k[1]]


def test_error_label_is_bounded() -> None:
    name = unique("longerror")
    engine = Engine(clock=VirtualClock(T0), metrics=True)
    m = engine.compile({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E" * 300}}}, name)
    run_all([m.execute({})])
    errors = [dict(k[1])["error"] for k in scrape() if k[0] == "express_execution_errors_total"
              and ("machine", name) in k[1]]
    assert errors == ["E" * 64]


def test_metrics_off_records_nothing_for_the_machine() -> None:
    name = unique("off")
    engine = Engine(clock=VirtualClock(T0))
    m = engine.compile(FAIL, name)
    run_all([m.execute({}) for _ in range(3)])
    assert not [k for k in scrape() if ("machine", name) in k[1]]


# ---------------------------------------------------------------------- histogram
def test_duration_histogram_buckets_are_exact() -> None:
    name = unique("hist")
    engine = Engine(clock=VirtualClock(T0), metrics=True)
    durations = [0, 0, 1, 3, 7, 7, 400]
    engine_long = Engine(clock=VirtualClock(T0), metrics=True, max_duration_s=1000)
    machines = {d: (engine_long if d > 300 else engine).compile(wait(d), name) for d in set(durations)}
    before = scrape()
    results = run_all([machines[d].execute({}) for d in durations])
    assert [r.status for r in results] == ["SUCCEEDED"] * len(durations)
    after = scrape()
    labels = {"machine": name, "mode": "api"}
    for le in DURATION_BUCKETS:
        expected = sum(1 for d in durations if d <= le)
        got = delta(before, after, "express_execution_duration_seconds_bucket", le=repr(float(le)), **labels)
        assert got == expected, (le, got, expected)
    assert delta(before, after, "express_execution_duration_seconds_bucket", le="+Inf", **labels) == len(durations)
    assert delta(before, after, "express_execution_duration_seconds_count", **labels) == len(durations)
    assert delta(before, after, "express_execution_duration_seconds_sum", **labels) == pytest.approx(sum(durations))
    # the boundary belongs to its bucket (le = less than or equal)
    assert delta(before, after, "express_execution_duration_seconds_bucket", le="1.0", **labels) == 3


# ---------------------------------------------------------------------- retries, catches, tasks
def retry_catch_machine() -> tuple[dict[str, Any], dict[str, Any]]:
    calls = {"flaky": 0}

    def flaky(event: Any) -> Any:
        calls["flaky"] += 1
        if calls["flaky"] <= 2:
            raise ASLError("Flaky.Error", "try again")
        return {"ok": True}

    def boom(event: Any) -> Any:
        raise ASLError("Boom.Error", "bad")

    definition = {"StartAt": "T1", "States": {
        "T1": {"Type": "Task", "Resource": "flaky", "Next": "T2",
               "Retry": [{"ErrorEquals": ["Flaky.Error"], "IntervalSeconds": 1, "MaxAttempts": 3}]},
        "T2": {"Type": "Task", "Resource": "boom", "Next": "Done",
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Done": {"Type": "Succeed"},
        "Caught": {"Type": "Pass", "End": True}}}
    return definition, {"flaky": flaky, "boom": boom}


def test_retries_and_catches_are_counted_by_error_name() -> None:
    name = unique("recover")
    definition, functions = retry_catch_machine()
    engine = Engine(functions, clock=VirtualClock(T0), metrics=True)
    m = engine.compile(definition, name)
    before = scrape()
    result = run_all([m.execute({})])[0]
    assert result.status == "SUCCEEDED"
    after = scrape()
    assert delta(before, after, "express_retries_total", machine=name, error="Flaky.Error") == 2
    assert delta(before, after, "express_catches_total", machine=name, error="Boom.Error") == 1
    assert delta(before, after, "express_catches_total", machine=name, error="Flaky.Error") == 0
    # the retries' intervals (1 s + 2 s on the virtual clock) are in the execution's duration
    assert delta(before, after, "express_execution_duration_seconds_sum", machine=name, mode="api") \
        == pytest.approx(3.0)
    assert delta(before, after, "express_billed_duration_seconds_total", machine=name) == pytest.approx(3.0)


def test_retries_of_a_machine_without_metrics_are_not_counted() -> None:
    name = unique("recover_off")
    definition, functions = retry_catch_machine()
    m = Engine(functions, clock=VirtualClock(T0)).compile(definition, name)
    run_all([m.execute({})])
    assert not [k for k in scrape() if ("machine", name) in k[1]]


def test_task_duration_histogram_with_logging_on() -> None:
    name = unique("tasks")

    async def slow(event: Any) -> Any:
        await asyncio.sleep(0.02)
        return event

    engine = Engine({"slow": slow}, clock=VirtualClock(T0), metrics=True)
    m = engine.compile({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "slow", "End": True}}},
                       name, logging={"level": "ALL"})
    before = scrape()
    run_all([m.execute({}), m.execute({})])
    after = scrape()
    assert delta(before, after, "express_task_duration_seconds_count", machine=name, integration="function",
                 status="SUCCEEDED") == 2


def test_task_duration_histogram_with_logging_off() -> None:
    name = unique("tasks_nolog")
    engine = Engine({"echo": lambda e: e}, clock=VirtualClock(T0), metrics=True)
    m = engine.compile({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "echo", "End": True}}}, name)
    before = scrape()
    run_all([m.execute({})])
    assert delta(before, scrape(), "express_task_duration_seconds_count", machine=name, integration="function",
                 status="SUCCEEDED") == 1


@pytest.mark.parametrize("logging", [None, {"level": "ALL"}], ids=["logging_off", "logging_all"])
def test_failed_tasks_are_observed_by_outcome(logging: dict[str, str] | None) -> None:
    name = unique("taskfail")
    definition, functions = retry_catch_machine()

    async def stuck(event: Any) -> Any:
        await asyncio.Event().wait()

    functions["slow"] = stuck
    definition["States"]["Caught"] = {"Type": "Task", "Resource": "slow", "TimeoutSeconds": 1,
                                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}], "End": True}
    engine = Engine(functions, clock=VirtualClock(T0), metrics=True)
    m = engine.compile(definition, name, **({"logging": logging} if logging else {}))
    before = scrape()
    assert run_all([m.execute({})])[0].status == "SUCCEEDED"
    after = scrape()
    labels = {"machine": name, "integration": "function"}
    # T1: two failed attempts then one that returned; T2 fails; the slow Task times out after 1 s
    assert delta(before, after, "express_task_duration_seconds_count", status="SUCCEEDED", **labels) == 1
    assert delta(before, after, "express_task_duration_seconds_count", status="FAILED", **labels) == 3
    assert delta(before, after, "express_task_duration_seconds_count", status="TIMED_OUT", **labels) == 1
    assert delta(before, after, "express_task_duration_seconds_sum", status="TIMED_OUT", **labels) \
        == pytest.approx(1.0)
    assert delta(before, after, "express_task_duration_seconds_bucket", status="TIMED_OUT", le="1.0", **labels) == 1


@pytest.mark.parametrize(("resource", "label"), [
    ("echo", "function"),
    ("arn:aws:lambda:us-east-1:123456789012:function:echo", "lambda"),
    ("arn:aws:states:::lambda:invoke", "lambda"),
    ("arn:aws:states:::sqs:sendMessage", "sqs"),
    ("arn:aws:states:::aws-sdk:s3:getObject", "aws-sdk"),
    ("arn:aws:states:::http:invoke", "http"),
    ("arn:aws:states:::states:startExecution", "states"),
    ("arn:express:::kafka:produce", "kafka"),
    ("arn:aws:sns:us-east-1:123456789012:t", "function"),  # an ARN bound to a local callable
])
def test_task_metrics_are_labelled_by_integration_kind(resource: str, label: str) -> None:
    """The label is named once, when the Task is compiled (express.integrations.kind), never a full ARN."""
    name = unique("kind")
    engine = Engine({resource: lambda e: {"ok": True}, "f": lambda e: {"ok": True}}, clock=VirtualClock(T0),
                    metrics=True)
    params = {"FunctionName": "f"} if resource.endswith("lambda:invoke") else {}
    m = engine.compile({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource,
                                                         "Parameters": params, "End": True}}}, name)
    before = scrape()
    assert run_all([m.execute({})])[0].status == "SUCCEEDED"
    after = scrape()
    assert delta(before, after, "express_task_duration_seconds_count", machine=name, integration=label,
                 status="SUCCEEDED") == 1


def test_state_transitions_by_state_type() -> None:
    name = unique("bytype")
    engine = Engine(clock=VirtualClock(T0), metrics=True)
    m = engine.compile(FAIL, name, logging={"level": "ALL"})
    before = scrape()
    run_all([m.execute({})])
    after = scrape()
    assert delta(before, after, "express_state_transitions_by_type_total", machine=name, state_type="Pass") == 1


def test_in_flight_executions_gauge() -> None:
    name = unique("inflight")
    release = asyncio.Event

    async def main() -> tuple[float, float, float]:
        gate = release()

        async def hold(event: Any) -> Any:
            await gate.wait()
            return event

        engine = Engine({"hold": hold}, metrics=True)
        m = engine.compile({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "hold", "End": True}}},
                           name)
        base = value(scrape(), "express_in_flight_executions", mode="sync")
        tasks = [asyncio.create_task(m.execute({}, mode="sync")) for _ in range(3)]
        await asyncio.sleep(0.05)
        during = value(scrape(), "express_in_flight_executions", mode="sync")
        gate.set()
        await asyncio.gather(*tasks)
        return base, during, value(scrape(), "express_in_flight_executions", mode="sync")

    base, during, end = asyncio.run(main())
    assert during - base == 3
    assert end == base


# ---------------------------------------------------------------------- labels
def test_no_execution_id_in_any_label() -> None:
    name = unique("labels")
    definition, functions = retry_catch_machine()
    engine = Engine(functions, clock=VirtualClock(T0), metrics=True)
    m = engine.compile(definition, name)
    exec_names = [f"exec-{uuid.uuid4()}" for _ in range(3)]
    results = run_all([m.execute({}, n, mode="sync") for n in exec_names])
    text = exposition()
    for n in exec_names:
        assert n.encode() not in text
    allowed = {"machine", "mode", "status", "error", "state_type", "topic", "kind", "reason", "partition",
               "operation", "sink", "le", "integration", "worker",
               "version", "implementation", "major", "minor", "patchlevel"}  # express_build_info, python_info
    for (_, labels) in scrape(text):
        for key, label_value in labels:
            assert key in allowed, key
            assert "arn:" not in label_value and "exec-" not in label_value
    assert {r.name for r in results} == set(exec_names)
    ours = [dict(labels) for (_, labels) in scrape(text) if ("machine", name) in labels]
    assert ours and all(set(d) <= {"machine", "mode", "status", "error", "integration", "le"} for d in ours)


# ---------------------------------------------------------------------- several processes
WORKER = textwrap.dedent("""
    import asyncio, sys
    from express import Engine, VirtualClock
    from express.observe.metrics import RECORDER

    n = int(sys.argv[1])
    engine = Engine(clock=VirtualClock(1000000.0), metrics=True)
    ok = engine.compile({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, "mp_ok")
    bad = engine.compile({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Custom.Failure"}}}, "mp_bad")

    async def main():
        for i in range(n):
            await ok.execute({}, f"x{i}", mode="async")
        await bad.execute({}, "y", mode="sync")

    asyncio.run(main())
    RECORDER.flush()
""")
SCRAPER = "import sys; from express.observe.metrics import exposition; sys.stdout.write(exposition().decode())"


def test_several_processes_are_summed_in_one_scrape(tmp_path: Any) -> None:
    n = 25
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(n)], env={**env, "EXPRESS_WORKER_INDEX": str(i)},
                                stderr=subprocess.PIPE) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
    assert len(list(tmp_path.iterdir())) >= 2  # each process wrote its own files
    proc = subprocess.run([sys.executable, "-c", SCRAPER], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    s = scrape(proc.stdout)
    assert value(s, "express_executions_started_total", machine="mp_ok", mode="async") == 2 * n
    assert value(s, "express_executions_total", machine="mp_ok", mode="async", status="SUCCEEDED") == 2 * n
    assert value(s, "express_executions_total", machine="mp_bad", mode="sync", status="FAILED") == 2
    assert value(s, "express_execution_errors_total", machine="mp_bad", error="Custom.Failure") == 2
    assert value(s, "express_state_transitions_total", machine="mp_ok") == 2 * n
    assert value(s, "express_execution_duration_seconds_count", machine="mp_ok", mode="async") == 2 * n
    assert value(s, "express_execution_duration_seconds_bucket", machine="mp_ok", mode="async", le="0.0005") == 2 * n
    assert value(s, "express_execution_duration_seconds_bucket", machine="mp_ok", mode="async", le="+Inf") == 2 * n
    assert value(s, "express_billed_duration_seconds_total", machine="mp_ok") == pytest.approx(0.1 * 2 * n)
    assert value(s, "express_billed_duration_gigabyte_seconds_total", machine="mp_ok") == pytest.approx(0.1 * 64 / 1024 * 2 * n)
    assert value(s, "express_in_flight_executions", mode="async") == 0
    # each worker's own process figures, by worker index; one build_info and python_info
    for worker in ("0", "1"):
        assert value(s, "process_resident_memory_bytes", worker=worker) > 0
        assert value(s, "process_start_time_seconds", worker=worker) > 0
        assert value(s, "process_cpu_seconds_total", worker=worker) > 0
    assert not [k for k in s if k[0].startswith("process_") and "worker" not in dict(k[1])]
    assert value(s, "express_build_info", version=express.__version__) == 1
    assert [k for k in s if k[0] == "python_info"]
    assert not [k for k in s if k[0].endswith("_created")]
    # a scrape without the directory sees only its own (empty) process
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    alone = subprocess.run([sys.executable, "-c", SCRAPER], env=env, capture_output=True, timeout=120)
    assert value(scrape(alone.stdout), "express_executions_total", machine="mp_ok", mode="async",
                 status="SUCCEEDED") == 0


def test_recorder_flush_is_idempotent() -> None:
    name = unique("flush")
    engine = Engine(clock=VirtualClock(T0), metrics=True)
    m = engine.compile(wait(0), name)
    before = scrape()
    run_all([m.execute({})])
    RECORDER.flush()
    RECORDER.flush()
    mid = scrape()
    after = scrape()
    assert delta(before, mid, "express_executions_total", machine=name, mode="api", status="SUCCEEDED") == 1
    assert delta(mid, after, "express_executions_total", machine=name, mode="api", status="SUCCEEDED") == 0


# ---------------------------------------------------------------------- billing and the recorder passed in
def test_billed_metrics_use_the_billing_of_the_result() -> None:
    name = unique("mapped")
    engine = Engine(clock=VirtualClock(T0), metrics=True)
    m = engine.compile({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "ResultPath": None, "End": True,
        "ItemProcessor": {"StartAt": "Par", "States": {"Par": {
            "Type": "Parallel", "End": True,
            "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}]}}}}}}, name)
    before = scrape()
    [result] = run_all([m.execute({"items": list(range(100)), "pad": "x" * 200_000})])
    after = scrape()
    assert (result.status, result.billed_duration_ms, result.billed_memory_mb) == ("SUCCEEDED", 100, 128)
    assert delta(before, after, "express_billed_duration_seconds_total", machine=name) == pytest.approx(0.1)
    assert delta(before, after, "express_billed_duration_gigabyte_seconds_total", machine=name) == pytest.approx(0.1 * 128 / 1024)


def test_executions_are_counted_in_the_recorder_the_engine_is_given() -> None:
    from express.observe.metrics import Recorder

    name = unique("own")
    definition, functions = retry_catch_machine()
    own = Recorder()
    engine = Engine(functions, clock=VirtualClock(T0), metrics=own)
    assert engine.metrics is own
    m = engine.compile(definition, name)
    before = scrape()
    assert run_all([m.execute({}, mode="sync")])[0].status == "SUCCEEDED"
    series = own.series(name, "sync")
    assert (series.started, series.succeeded, series.minimum_billed) == (1, 1, 0)  # 3 s of retries: not minimum
    assert not [k for k in scrape() if ("machine", name) in k[1]]  # the process recorder saw nothing
    own.flush()
    after = scrape()
    assert delta(before, after, "express_executions_total", machine=name, mode="sync", status="SUCCEEDED") == 1
    assert delta(before, after, "express_retries_total", machine=name, error="Flaky.Error") == 2
    assert delta(before, after, "express_catches_total", machine=name, error="Boom.Error") == 1
    tasks = {"machine": name, "integration": "function"}
    assert delta(before, after, "express_task_duration_seconds_count", status="SUCCEEDED", **tasks) == 1
    assert delta(before, after, "express_task_duration_seconds_count", status="FAILED", **tasks) == 3
    assert delta(before, after, "express_billed_duration_seconds_total", machine=name) == pytest.approx(3.0)
    assert Engine(metrics=False).metrics is None and Engine().metrics is None
    assert Engine(metrics=True).metrics is RECORDER
