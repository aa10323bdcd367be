"""billingDetails over HTTP are the engine's billing of the execution: the same figures as its usage
record, by AWS's Express formula (express-spec.md 2.6), against the real server."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from httpsupport import ServerThread, arn, running

from express.engine.machine import Engine
from express.observe.sinks import MemorySink
from express.serve.registry import Registry
from tests.support import MAP_OF_PARALLELS, MB, aws_billing


class MeteredServer(ServerThread):
    """The test server with usage records on (kept in memory) and the Map -> Parallel machine."""

    def __init__(self) -> None:
        super().__init__(max_duration_s=30.0)
        self.usage = MemorySink()

    def build_registry(self) -> Registry:
        registry = Registry(Engine(max_duration_s=self.max_duration_s, usage_sink=self.usage))
        registry.put("mapped", json.dumps(MAP_OF_PARALLELS))
        return registry

    def usage_of(self, name: str, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.usage.records):
                record = orjson.loads(line)
                if record["executionName"] == name:
                    return dict(record)
            time.sleep(0.02)
        raise AssertionError(f"no usage record for {name}")


@pytest.fixture(name="metered")
def metered_fixture() -> Iterator[MeteredServer]:
    with running(MeteredServer()) as s:
        yield s


DEFINITION_BYTES = len(orjson.dumps(MAP_OF_PARALLELS))


@pytest.mark.parametrize("pad", ["x" * 200_000, "é" * 100_000], ids=["ascii", "utf8"])
def test_sync_billing_details_match_the_usage_record_and_aws(metered: MeteredServer, pad: str) -> None:
    # ~200 KB of input x 101 Map/Parallel steps: 50 MB + ~19.3 MB, billed 128 MB (input + output
    # with one step, what the HTTP answer used to bill, gives 64)
    text = json.dumps({"items": list(range(100)), "pad": pad}, ensure_ascii=False)
    size = len(text.encode())
    assert 200_000 < size < 256 * 1024
    status, r = metered.api("StartSyncExecution", {"stateMachineArn": arn("mapped"), "name": f"sync-{len(pad)}",
                                                   "input": text})
    assert status == 200 and r["status"] == "SUCCEEDED", r
    expected = aws_billing(r["stopDate"] - r["startDate"], DEFINITION_BYTES, size, 101)
    assert expected["billedMemoryUsedInMB"] == 128
    assert r["billingDetails"] == expected
    record = metered.usage_of(f"sync-{len(pad)}")
    assert {"billedDurationInMilliseconds": record["billedDurationMs"],
            "billedMemoryUsedInMB": record["billedMemoryMB"]} == r["billingDetails"]
    assert record["memoryUsedMB"] == pytest.approx(50 + (DEFINITION_BYTES + size * 101) / MB, abs=1e-3)
    assert record["mode"] == "sync"


def test_unnamed_sync_and_async_executions_are_billed_alike(metered: MeteredServer) -> None:
    text = json.dumps({"items": list(range(100)), "pad": "y" * 200_000})
    status, r = metered.api("StartSyncExecution", {"stateMachineArn": arn("mapped"), "input": text,
                                                   "includedData": "METADATA_ONLY"})
    assert status == 200 and r["status"] == "SUCCEEDED", r
    assert "output" not in r
    assert r["billingDetails"]["billedMemoryUsedInMB"] == 128
    record = metered.usage_of(r["name"])
    assert (record["billedDurationMs"], record["billedMemoryMB"]) == (
        r["billingDetails"]["billedDurationInMilliseconds"], 128)
    status, started = metered.api("StartExecution", {"stateMachineArn": arn("mapped"), "name": "async-1",
                                                     "input": text})
    assert status == 200, started
    record = metered.usage_of("async-1")
    assert record["mode"] == "async" and record["status"] == "SUCCEEDED"
    assert record["billedMemoryMB"] == 128
