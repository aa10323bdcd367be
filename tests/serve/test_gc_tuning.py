"""The collector tuned once per serving process, and only from Python's defaults (run in a child
process: tuning is process-wide)."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

SCRIPT = """
import gc, json
from express.serve.gc_tuning import GEN0_THRESHOLD, tune_gc
if {custom}:
    gc.set_threshold(1234, 11, 12)
before = gc.get_freeze_count()
garbage = [[] for _ in range(1000)]
tune_gc()
tuned, frozen = gc.get_threshold(), gc.get_freeze_count() - before
tune_gc(7)
print(json.dumps({{"tuned": tuned, "frozen": frozen, "again": gc.get_threshold(), "gen0": GEN0_THRESHOLD}}))
"""


def run(custom: bool) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(custom=custom)], capture_output=True, text=True,
                         check=True)
    return dict(json.loads(out.stdout))


def test_the_defaults_are_tuned_once_and_what_exists_is_frozen() -> None:
    r = run(False)
    assert r["tuned"] == [r["gen0"], 10, 10] and r["frozen"] >= 1000
    assert r["again"] == r["tuned"]  # a second call changes nothing


def test_a_program_that_tuned_its_own_collector_keeps_its_tuning() -> None:
    r = run(True)
    assert r["tuned"] == r["again"] == [1234, 11, 12] and r["frozen"] == 0


SERVE = """
import asyncio, gc, json, sys
from express.serve.config import HttpSettings, Settings, StateSettings
from express.serve.service import Service

async def main():
    settings = Settings(config_dir=sys.argv[1], http=HttpSettings(host="127.0.0.1", port=0),
                        state=StateSettings(url="memory:"))
    service = Service(settings, kafka=False)
    before = gc.get_threshold()
    await service.start()
    try:
        print(json.dumps({"before": before, "serving": gc.get_threshold()}))
    finally:
        await service.stop()

asyncio.run(main())
"""


def test_an_http_only_server_tunes_the_collector_as_the_kafka_worker_does(tmp_path: Any) -> None:
    out = subprocess.run([sys.executable, "-c", SERVE, str(tmp_path)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["before"] == [700, 10, 10] and r["serving"] == [50_000, 10, 10]
