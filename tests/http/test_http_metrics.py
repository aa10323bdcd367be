"""/metrics over real HTTP: executions started through boto3, scraped and parsed with prometheus-client."""
from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping

import httpsupport
import pytest
from botocore.exceptions import ClientError
from httpsupport import ServerThread, arn
from prometheus_client.parser import text_string_to_metric_families

import express
from express.engine.machine import Engine

Key = tuple[str, frozenset[tuple[str, str]]]


@pytest.fixture(name="server")
def metered_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    # httpsupport builds its Engine on the server thread: the same server, with metrics on.
    monkeypatch.setattr(httpsupport, "Engine", functools.partial(Engine, metrics=True))
    s = ServerThread().start()
    try:
        yield s
    finally:
        s.stop()


def scrape(server: ServerThread) -> tuple[dict[Key, float], bytes, dict[str, str]]:
    status, headers, body = server.request("GET", "/metrics")
    assert status == 200
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, body, headers


def delta(before: Mapping[Key, float], after: Mapping[Key, float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_scraped_over_http(server: ServerThread) -> None:
    sfn = server.client()
    before, _, _ = scrape(server)
    names = [f"metered-{i}-{time.time_ns()}" for i in range(3)]
    for n in names:
        assert sfn.start_sync_execution(stateMachineArn=arn("pass"), name=n, input="{}")["status"] == "SUCCEEDED"
    failed = sfn.start_sync_execution(stateMachineArn=arn("fail"), input="{}")
    assert failed["status"] == "FAILED"
    with pytest.raises(ClientError):
        sfn.start_sync_execution(stateMachineArn=arn("does-not-exist"))
    started = sfn.start_execution(stateMachineArn=arn("pass"), input="{}")
    # the async execution finishes in the background
    deadline = time.monotonic() + 10
    while True:
        after, body, headers = scrape(server)
        if delta(before, after, "express_executions_total", machine="pass", mode="async", status="SUCCEEDED") >= 1:
            break
        assert time.monotonic() < deadline, "the async execution was not counted"
        time.sleep(0.05)

    assert headers["content-type"].startswith("text/plain")
    assert delta(before, after, "express_executions_started_total", machine="pass", mode="sync") == 3
    assert delta(before, after, "express_executions_started_total", machine="pass", mode="async") == 1
    assert delta(before, after, "express_executions_total", machine="pass", mode="sync", status="SUCCEEDED") == 3
    assert delta(before, after, "express_executions_total", machine="pass", mode="async", status="SUCCEEDED") == 1
    assert delta(before, after, "express_executions_total", machine="fail", mode="sync", status="FAILED") == 1
    assert delta(before, after, "express_execution_errors_total", machine="fail", error="Custom.Failure") == 1
    assert delta(before, after, "express_execution_duration_seconds_count", machine="pass", mode="sync") == 3
    assert delta(before, after, "express_execution_duration_seconds_bucket", machine="pass", mode="sync",
                 le="+Inf") == 3
    assert delta(before, after, "express_state_transitions_total", machine="pass") == 4
    # a Pass machine bills AWS's minimum: 100 ms at 64 MB per execution
    assert delta(before, after, "express_billed_duration_seconds_total", machine="pass") == pytest.approx(0.4)
    assert delta(before, after, "express_billed_duration_gigabyte_seconds_total", machine="pass") == pytest.approx(0.4 / 16)
    # requests by operation and HTTP status
    assert delta(before, after, "express_http_requests_total", operation="StartSyncExecution", status="200") == 4
    assert delta(before, after, "express_http_requests_total", operation="StartSyncExecution", status="400") == 1
    assert delta(before, after, "express_http_requests_total", operation="StartExecution", status="200") == 1
    # and their durations, per operation (every answer, errors included)
    assert delta(before, after, "express_http_request_duration_seconds_count", operation="StartSyncExecution") == 5
    assert delta(before, after, "express_http_request_duration_seconds_bucket", operation="StartSyncExecution",
                 le="+Inf") == 5
    assert delta(before, after, "express_http_request_duration_seconds_count", operation="StartExecution") == 1
    assert delta(before, after, "express_http_request_duration_seconds_sum", operation="StartSyncExecution") > 0
    assert after[("express_in_flight_executions", frozenset({("mode", "sync")}))] == \
        before.get(("express_in_flight_executions", frozenset({("mode", "sync")})), 0.0)
    # never an execution name or ARN in a label
    for n in names + [started["executionArn"], failed["executionArn"], failed["name"]]:
        assert n.encode() not in body
    for (_, labels) in after:
        for _, v in labels:
            assert not v.startswith("arn:") and "metered-" not in v


def test_metrics_route_is_get_only(server: ServerThread) -> None:
    status, _, _ = server.request("POST", "/metrics", b"")
    assert status == 405
    status, _, _ = server.request("HEAD", "/metrics")
    assert status == 200


def test_every_family_is_exported_without_created_series(server: ServerThread) -> None:
    sfn = server.client()
    sfn.start_sync_execution(stateMachineArn=arn("fail"), input="{}")
    sfn.start_sync_execution(stateMachineArn=arn("counted"), input="{}")
    _, body, _ = scrape(server)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name in ("express_executions_started", "express_executions", "express_execution_errors",
                 "express_execution_duration_seconds", "express_task_duration_seconds",
                 "express_http_requests", "express_http_request_duration_seconds", "express_executions_throttled",
                 "express_in_flight_executions", "express_billed_duration_seconds",
                 "express_billed_duration_gigabyte_seconds", "express_kafka_consumer_lag",
                 "express_kafka_dlq_records", "express_build_info", "process_cpu_seconds",
                 "process_resident_memory_bytes", "process_start_time_seconds", "python_info"):
        assert name in families, name
    assert "express_billed_gb_seconds" not in families
    # prometheus-client's *_created series (one per counter/histogram child) are off
    assert not [s.name for f in families.values() for s in f.samples if s.name.endswith("_created")]
    assert b"_created" not in body
    [build] = families["express_build_info"].samples
    assert build.labels == {"version": express.__version__} and build.value == 1
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert families["process_cpu_seconds"].samples[0].value > 0
    tasks = {(s.labels["integration"], s.labels["status"]) for s in families["express_task_duration_seconds"].samples
             if s.labels.get("machine") == "counted"}
    assert ("function", "SUCCEEDED") in tasks
