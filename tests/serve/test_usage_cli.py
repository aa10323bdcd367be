"""``express usage FILES [--since] [--until] [--json]`` on a metering log written by StreamSink."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from express import Engine, VirtualClock
from express.observe.sinks import StreamSink
from express.serve.cli import main

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "W"},
                                   "W": {"Type": "Wait", "Seconds": 2, "End": True}}}
FAIL = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Custom.Failure"}}}


@pytest.fixture
def metering_log(tmp_path: Any) -> str:
    """Executions at T0 (orders x2 sync, refunds x1 async, failed) and T0+3600 (orders x1 async)."""
    path = str(tmp_path / "metering.log")
    sink = StreamSink(path, name="usage")

    async def run() -> None:
        for start, runs in ((T0, [("orders", PASS, "sync"), ("orders", PASS, "sync"), ("refunds", FAIL, "async")]),
                            (T0 + 3600, [("orders", PASS, "async")])):
            engine = Engine(clock=VirtualClock(start), usage_sink=sink)
            machines: dict[str, Any] = {}
            for i, (name, definition, mode) in enumerate(runs):
                if name not in machines:
                    machines[name] = engine.compile(definition, name)
                await machines[name].execute({}, f"{name}-{start}-{i}", mode=mode)

    asyncio.run(run())
    sink.close()
    with open(path) as f:
        assert len(f.readlines()) == 4
    return path


def usage(capsys: Any, *args: str) -> tuple[int, str]:
    rc = main(["usage", *args])
    return rc, capsys.readouterr().out


ORDERS_GB_S = 2.0 * 64 / 1024
FAIL_GB_S = 0.1 * 64 / 1024
TIER1 = 0.06 / 3600


def test_usage_json_summarises_per_machine(capsys: Any, metering_log: str, tmp_path: Any) -> None:
    rc, out = usage(capsys, metering_log, "--config", str(tmp_path), "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["since"] is None and data["until"] is None
    assert set(data["machines"]) == {"orders", "refunds"}
    orders = data["machines"]["orders"]
    assert orders == {"executions": 3, "failed": 0, "billedDurationMs": 6000,
                      "gbSeconds": pytest.approx(3 * ORDERS_GB_S), "stateTransitions": 6,
                      "byMode": {"sync": 2, "async": 1}}
    refunds = data["machines"]["refunds"]
    assert refunds["executions"] == 1 and refunds["failed"] == 1 and refunds["billedDurationMs"] == 100
    assert refunds["byMode"] == {"async": 1}
    assert data["requestCost"] == pytest.approx(4e-6)
    assert data["durationCost"] == pytest.approx((3 * ORDERS_GB_S + FAIL_GB_S) * TIER1)
    assert data["cost"] == pytest.approx(data["requestCost"] + data["durationCost"])


def test_usage_window_by_epoch_and_iso_time(capsys: Any, metering_log: str, tmp_path: Any) -> None:
    rc, out = usage(capsys, metering_log, "--config", str(tmp_path), "--json", "--since", str(T0 + 60))
    assert rc == 0
    data = json.loads(out)
    assert data["since"] == T0 + 60
    assert set(data["machines"]) == {"orders"}
    assert data["machines"]["orders"]["executions"] == 1
    assert data["machines"]["orders"]["byMode"] == {"async": 1}
    assert data["requestCost"] == pytest.approx(1e-6)

    until = datetime.fromtimestamp(T0 + 60, UTC).isoformat().replace("+00:00", "Z")
    rc, out = usage(capsys, metering_log, "--config", str(tmp_path), "--json", "--until", until)
    data = json.loads(out)
    assert data["until"] == T0 + 60
    assert data["machines"]["orders"]["executions"] == 2
    assert data["machines"]["refunds"]["executions"] == 1

    rc, out = usage(capsys, metering_log, "--config", str(tmp_path), "--json", "--since", "1h")
    assert json.loads(out)["machines"] == {}  # everything is from 2023


def test_usage_text_output(capsys: Any, metering_log: str, tmp_path: Any) -> None:
    rc, out = usage(capsys, metering_log, "--config", str(tmp_path))
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["machine", "executions", "failed"]
    assert lines[1].split() == ["orders", "3", "0", "6.0", f"{3 * ORDERS_GB_S:.3f}", "6"]
    # (transitions of a failed execution: see test_metering.test_failed_execution_record_counts_its_state_transitions)
    assert lines[2].split()[:5] == ["refunds", "1", "1", "0.1", f"{FAIL_GB_S:.3f}"]
    cost = (3 * ORDERS_GB_S + FAIL_GB_S) * TIER1
    assert lines[3] == f"cost: requests $0.000004 + duration ${cost:.6f} = ${4e-6 + cost:.6f}"


def test_usage_uses_prices_from_the_config(capsys: Any, metering_log: str, tmp_path: Any) -> None:
    (tmp_path / "express.toml").write_text("[metering]\nprice_per_request = 0.5\nprice_gb_hour_tier1 = 3600.0\n")
    rc, out = usage(capsys, metering_log, "--config", str(tmp_path), "--json")
    data = json.loads(out)
    assert data["requestCost"] == pytest.approx(2.0)
    assert data["durationCost"] == pytest.approx(3 * ORDERS_GB_S + FAIL_GB_S)  # $1 per GB-second


def test_usage_skips_a_torn_line_and_reads_several_files(capsys: Any, metering_log: str, tmp_path: Any) -> None:
    other = tmp_path / "other.log"
    with open(metering_log, "rb") as f:
        first = f.readline()
    other.write_bytes(first + b"garbage\n" + first[:30])
    rc, out = usage(capsys, metering_log, str(other), "--config", str(tmp_path), "--json")
    assert rc == 0
    total = sum(m["executions"] for m in json.loads(out)["machines"].values())
    assert total == 5


def test_usage_missing_file_and_bad_time(capsys: Any, tmp_path: Any) -> None:
    assert main(["usage", str(tmp_path / "nope.log"), "--config", str(tmp_path)]) == 1
    assert "express:" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not a time"):
        main(["usage", str(tmp_path / "nope.log"), "--config", str(tmp_path), "--since", "yesterday-ish"])


def test_usage_as_a_command(metering_log: str, tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPRESS_")}
    proc = subprocess.run([sys.executable, "-m", "express", "usage", metering_log, "--config", str(tmp_path),
                           "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["machines"]["orders"]["executions"] == 3
