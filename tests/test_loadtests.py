"""The load harness runs a tiny load against a real ``express serve`` (embedded broker, HTTP on a
loopback port) and writes its JSON report and PNG chart."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("aiokafka")
pytest.importorskip("matplotlib")

from tests.support import free_port, serve, stop, wait_log  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
MACHINE = {"StartAt": "A", "States": {
    "A": {"Type": "Pass", "Parameters": {"id.$": "$.order.id", "step": 1}, "ResultPath": "$.a", "Next": "B"},
    "B": {"Type": "Pass", "Parameters": {"id.$": "$.order.id", "step": 2}, "ResultPath": "$.b", "End": True}}}
SAMPLE = {"order": {"id": "ord-0", "amount": 12.5, "customer": {"name": "Ann", "tier": "gold"}}}
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, pathlib.Path]]:
    root = tmp_path_factory.mktemp("loadtest")
    (root / "config" / "machines").mkdir(parents=True)
    (root / "config" / "machines" / "m1.asl.json").write_text(json.dumps(MACHINE))
    port = free_port()
    (root / "config" / "express.toml").write_text(
        "[kafka]\nsession_timeout_ms = 2000\nheartbeat_interval_ms = 300\ncommit_interval_ms = 100\n"
        f'[http]\nport = {port}\n[bindings]\nload = "m1"\n')
    (root / "input.json").write_text(json.dumps(SAMPLE))
    log = root / "serve.log"
    proc = serve(root / "config", log, "--workers", "1")
    try:
        bootstrap = wait_log(log, r"started the embedded broker at (\S+)", timeout_s=20).group(1)
        wait_log(log, r"Kafka worker consuming", timeout_s=20)
        wait_log(log, r"HTTP \(AWS JSON 1.0 StepFunctions API\) on", timeout_s=20)
        yield bootstrap, port, root
    finally:
        stop(proc)


def run_tool(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "loadtests" / script), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_kafka_load_measures_200_events_end_to_end(deployment):
    bootstrap, _, root = deployment
    report, chart = root / "kafka.json", root / "kafka.png"
    proc = run_tool("kafka_load.py", "--bootstrap", bootstrap, "--topic", "load", "--events", "200",
                    "--input", str(root / "input.json"), "--payload-bytes", "512", "--timeout", "40",
                    "--report", str(report), "--chart", str(chart))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "events 200: outcomes 200 (results 200" in proc.stdout
    assert "latency ms: p50" in proc.stdout and "events/s" in proc.stdout
    assert "outcomes" in proc.stderr  # progress
    data = json.loads(report.read_text())
    assert data["outcomes"] == 200 and data["missing"] == 0 and data["by_topic"]["results"] == 200
    assert data["payload_bytes"] >= 500
    assert data["throughput_eps"] > 0 and data["latency_ms"]["p50"] > 0
    assert data["latency_ms"]["p50"] <= data["latency_ms"]["p99"] <= data["latency_ms"]["max"]
    assert sum(row["per_s"] for row in data["timeline"]) > 0
    assert chart.read_bytes()[:8] == PNG


def test_kafka_load_at_a_given_rate(deployment):
    bootstrap, _, root = deployment
    report = root / "rate.json"
    t0 = time.monotonic()
    proc = run_tool("kafka_load.py", "--bootstrap", bootstrap, "--topic", "load", "--events", "200", "--rate", "400",
                    "--input", str(root / "input.json"), "--timeout", "40", "--report", str(report), "--chart", "")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(report.read_text())
    assert data["outcomes"] == 200 and data["rate_target"] == 400
    assert data["produce_s"] >= 0.4  # 200 events at 400/s take about half a second to send
    assert time.monotonic() - t0 < 40


def test_http_load_measures_200_sync_executions(deployment):
    _, port, root = deployment
    report, chart = root / "http.json", root / "http.png"
    proc = run_tool("http_load.py", "--url", f"http://127.0.0.1:{port}/", "--machine", "m1",
                    "--input", f"@{root / 'input.json'}", "-n", "200", "-c", "4", "--warmup", "20",
                    "--report", str(report), "--chart", str(chart))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "requests 200/200, errors 0" in proc.stdout
    data = json.loads(report.read_text())
    assert data["completed"] == 200 and data["errors"] == 0 and data["throughput_rps"] > 0
    assert data["latency_ms"]["p99"] is not None
    assert chart.read_bytes()[:8] == PNG
