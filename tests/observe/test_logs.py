"""The service's own log lines (express/logs.py): levels, the text and JSON formats, the
[logging] keys, and `serve`'s progress line (express/progress.py) from a real `serve` process."""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from express.observe import logs
from express.serve.config import ConfigError, load_settings
from tests.support import free_port, serve, stop, wait_log

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
FAIL = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "on purpose"}}}


@pytest.fixture(autouse=True)
def default_logs() -> Iterator[None]:
    yield
    logs.configure("text")


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_lines_carry_time_level_worker_event_message_and_fields(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json", worker=3)
    logs.emit("kafka", "consuming orders", event="consuming", topics=["orders"], partitions=4)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    (line,) = json_lines(err)
    assert set(line) == {"time", "level", "worker", "component", "event", "message", "fields"}
    assert line["level"] == "info" and line["worker"] == 3 and line["component"] == "kafka"
    assert line["event"] == "consuming" and line["message"] == "consuming orders"
    assert line["fields"] == {"topics": ["orders"], "partitions": 4}
    assert line["time"].endswith("Z")
    t = datetime.datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
    assert t.utcoffset() == datetime.timedelta(0)


def test_levels_filter_and_show_in_text(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("text", level="warning")
    logs.emit("http", "quiet", level="info")
    logs.emit("http", "debugging", level="debug")
    logs.emit("http", "disk nearly full", level="warning")
    logs.emit("", "gave up", level="error")
    assert capsys.readouterr().err.splitlines() == ["express: http: WARNING: disk nearly full",
                                                    "express: ERROR: gave up"]
    logs.configure("text", level="debug")
    logs.emit("http", "debugging", level="debug")
    assert capsys.readouterr().err == "express: http: debugging\n"


def test_module_log_functions_keep_their_wording_and_get_a_level(capsys: pytest.CaptureFixture[str]) -> None:
    from express.http.server import log as http_log
    from express.kafka.worker import log as kafka_log
    from express.serve.supervisor import log as supervisor_log

    kafka_log("consuming orders")
    http_log("WARNING: serving without authentication")
    supervisor_log("worker 1 started: pid 42")
    assert capsys.readouterr().err.splitlines() == ["express: kafka: consuming orders",
                                                    "express: http: WARNING: serving without authentication",
                                                    "express: supervisor: worker 1 started: pid 42"]
    logs.configure("json", worker="supervisor")
    kafka_log("commit failed (KafkaError: x); will retry")
    http_log("WARNING: serving without authentication")
    a, b = json_lines(capsys.readouterr().err)
    assert (a["level"], a["component"], a["worker"]) == ("warning", "kafka", "supervisor")
    assert (b["level"], b["message"]) == ("warning", "serving without authentication")


def test_python_library_warnings_come_out_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    logs.configure("json", worker=0)
    logging.getLogger("aiokafka.consumer").warning("heartbeat failed for %s", "group")
    (line,) = json_lines(capsys.readouterr().err)
    assert line["level"] == "warning" and line["message"] == "heartbeat failed for group"
    assert line["fields"] == {"logger": "aiokafka.consumer"}
    logs.configure("text")
    assert not any(type(h).__name__ == "_JsonHandler" for h in logging.getLogger().handlers)


def test_the_logging_keys_are_read_once_from_the_file_and_the_environment(tmp_path: pathlib.Path) -> None:
    s = load_settings(tmp_path, env={})
    assert (s.logging.format, s.logging.service_level, s.logging.progress_s) == ("text", "info", 10.0)
    (tmp_path / "express.toml").write_text('[logging]\nformat = "json"\nprogress_s = 0\n')
    s = load_settings(tmp_path, env={"EXPRESS_LOGGING_SERVICE_LEVEL": "debug"})
    assert (s.logging.format, s.logging.service_level, s.logging.progress_s) == ("json", "debug", 0.0)
    assert load_settings(tmp_path, env={"EXPRESS_LOGGING_FORMAT": "text"}).logging.format == "text"
    with pytest.raises(ConfigError, match="logging.format: must be one of text, json, got 'yaml'"):
        load_settings(tmp_path, env={"EXPRESS_LOGGING_FORMAT": "yaml"})
    with pytest.raises(ConfigError, match="logging.service_level"):
        load_settings(tmp_path, env={"EXPRESS_LOGGING_SERVICE_LEVEL": "loud"})


# ---------------------------------------------------------------------- a real serve


def config(root: pathlib.Path, toml: str) -> pathlib.Path:
    (root / "machines").mkdir(parents=True)
    (root / "machines" / "ok.asl.json").write_text(json.dumps(PASS))
    (root / "machines" / "bad.asl.json").write_text(json.dumps(FAIL))
    (root / "express.toml").write_text(toml)
    return root


def start_sync(port: int, machine: str) -> dict[str, Any]:
    body = json.dumps({"stateMachineArn": f"arn:aws:states:us-east-1:000000000000:stateMachine:{machine}",
                       "input": "{}"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AWSStepFunctions.StartSyncExecution"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def test_serve_in_json_logs_json_lines_and_a_progress_line_by_status(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path / "cfg", "[logging]\nprogress_s = 1\n")
    log = tmp_path / "serve.log"
    port = free_port()
    proc = serve(cfg, log, "--no-kafka", "--workers", "1", "--http", f"127.0.0.1:{port}",
                 env={"EXPRESS_LOGGING_FORMAT": "json"})
    try:
        wait_log(log, r'"event":"http_listening"', proc)
        for _ in range(3):
            assert start_sync(port, "ok")["status"] == "SUCCEEDED"
        assert start_sync(port, "bad")["status"] == "FAILED"
        wait_log(log, r'"event":"progress".*"FAILED":1', proc)
    finally:
        stop(proc)
    lines = log.read_text().splitlines()
    assert lines and all(line.startswith("{") for line in lines), lines  # nothing but JSON
    records = [json.loads(line) for line in lines]
    assert all(r["worker"] == 0 and r["level"] in logs.LEVELS for r in records)
    progress = [r for r in records if r["event"] == "progress"]
    finished = {s: sum(r["fields"]["finished"][s] for r in progress) for s in ("SUCCEEDED", "FAILED", "TIMED_OUT")}
    assert finished == {"SUCCEEDED": 3, "FAILED": 1, "TIMED_OUT": 0}
    busy = next(r for r in progress if r["fields"]["finished"]["FAILED"])
    assert busy["fields"]["in_flight"] == 0 and busy["fields"]["lag"] is None and busy["fields"]["dlq"] is None
    assert busy["fields"]["per_s"]["FAILED"] > 0
    assert "executions/s" in busy["message"] and "FAILED" in busy["message"]
    # idle seconds after the work write no progress line (at most once a minute)
    assert len(progress) <= 3, progress
    assert records[-1]["message"] == "stopped" and records[-1]["event"] == "stopped"
    listening = next(r for r in records if r["event"] == "http_listening")
    assert listening["fields"] == {"host": "127.0.0.1", "port": port}


def test_serve_in_text_logs_a_readable_progress_line(tmp_path: pathlib.Path) -> None:
    cfg = config(tmp_path / "cfg", "[logging]\nprogress_s = 1\n")
    log = tmp_path / "serve.log"
    port = free_port()
    proc = serve(cfg, log, "--no-kafka", "--workers", "1", "--http", f"127.0.0.1:{port}")
    try:
        wait_log(log, r"express: HTTP .* on http://", proc)
        assert start_sync(port, "ok")["status"] == "SUCCEEDED"
        m = wait_log(log, r"express: progress: [0-9.]+ executions/s \(SUCCEEDED [0-9.]+/s\), in flight 0\n", proc)
    finally:
        stop(proc)
    assert "{" not in log.read_text().replace(m.group(0), "")  # no JSON in text mode
    assert os.path.exists(cfg)
