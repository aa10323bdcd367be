"""Helpers shared by the tests (import: ``from tests.support import ...``): engine runs, ``express serve``
subprocesses, and AWS's Express billing formula."""
from __future__ import annotations

import asyncio
import math
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import express


class FakeFrame:
    """Stands in for express.engine.frame.Frame where a getter/template only needs vars and ``$$``."""

    def __init__(self, vars: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> None:
        self.vars = vars or {}
        self._context = context or {}

    def context_object(self) -> dict[str, Any]:
        return self._context


def machine(states: dict[str, Any], start: str | None = None, **top: Any) -> dict[str, Any]:
    """A definition from a States dict (StartAt = first state unless given)."""
    return {"StartAt": start or next(iter(states)), "States": states, **top}


def single(state: dict[str, Any]) -> dict[str, Any]:
    """A one-state machine; adds End:true where the state type needs it."""
    s = dict(state)
    if s["Type"] not in ("Succeed", "Fail", "Choice") and "Next" not in s:
        s.setdefault("End", True)
    return machine({"S": s})


async def run(definition: Any, input: Any = None, functions: dict[str, Any] | None = None,
              **engine_kw: Any) -> express.ExecutionResult:
    engine_kw.setdefault("clock", express.VirtualClock())
    engine = express.Engine(functions=functions, **engine_kw)
    m = engine.compile(definition)
    if input is None:
        return await m.execute()
    return await m.execute(input)


# ---------------------------------------------------------------------- an ``express serve`` subprocess
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(config: pathlib.Path, log: pathlib.Path, *args: str, env: dict[str, str] | None = None,
          cwd: pathlib.Path | None = None) -> subprocess.Popen[bytes]:
    """``python -m express.serve.cli serve --config CONFIG ARGS...``, its output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "express", "serve", "--config", str(config), *args],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def wait_log(log: pathlib.Path, pattern: str, proc: subprocess.Popen[Any] | None = None,
             timeout_s: float = 60.0) -> re.Match[str]:
    """The first match of ``pattern`` in the log; fails once the process (if given) has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text() if log.exists() else "")
        if m:
            return m
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in the log:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    """SIGTERM (the graceful stop), then SIGKILL if it has not exited within ``timeout_s``."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# ---------------------------------------------------------------------- billing
MB = 1024 * 1024
# a Map whose every iteration runs a Parallel: 1 + len(items) Map/Parallel steps
MAP_OF_PARALLELS = {"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemsPath": "$.items", "ResultPath": None, "End": True,
    "ItemProcessor": {"StartAt": "Par", "States": {"Par": {
        "Type": "Parallel", "End": True,
        "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": 1, "End": True}}}]}}}}}}


def aws_billing(duration_s: float, definition_bytes: int, payload_bytes: int, steps: int) -> dict[str, int]:
    """billingDetails by AWS's Express formula, written out independently (express-spec.md 2.6)."""
    ms = max(100, math.ceil(round(duration_s * 1000, 6) / 100) * 100)
    used = 50 + definition_bytes / MB + payload_bytes / MB * max(1, steps)
    return {"billedDurationInMilliseconds": ms, "billedMemoryUsedInMB": max(64, math.ceil(used / 64) * 64)}


async def read_record(bootstrap: str, topic: str, partition: int, offset: int) -> Any:
    """The Kafka record at (topic, partition, offset), read with a plain aiokafka consumer."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        return await asyncio.wait_for(consumer.getone(tp), 30)
    finally:
        await consumer.stop()
