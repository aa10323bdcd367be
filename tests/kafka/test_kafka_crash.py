"""kill -9 a worker process mid-stream: after a new one takes over, every event has an outcome."""
from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import time

from kafka_helpers import Outcomes, create_topics, send, source_offsets, unique, waiting, write_config


def serve_command(config: pathlib.Path, bootstrap: str) -> list[str]:
    script = pathlib.Path(sys.executable).parent / "express"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "express"]
    return [*base, "serve", "--config", str(config), "--bootstrap", bootstrap, "--no-http", "--workers", "1"]


def spawn(config: pathlib.Path, bootstrap: str, log: pathlib.Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(serve_command(config, bootstrap), stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


async def test_sigkill_mid_stream_loses_nothing(bootstrap, tmp_path):
    topic = unique("crash")
    group = unique("g")
    config = write_config(tmp_path / "config", {"slow": waiting(1)}, {topic: "slow"},
                          kafka={"group_id": group, "max_in_flight": 3000})
    await create_topics(bootstrap, topic)
    log = tmp_path / "workers.log"
    first = spawn(config, bootstrap, log)
    second = None
    try:
        per_wave, n, after_kill = 200, 0, 0
        async with Outcomes(bootstrap, topic) as out:
            killed_at = None
            deadline = time.monotonic() + 40
            # produce a wave every ~0.2 s; kill -9 once outcomes flow (with hundreds still in their
            # 1-second Wait), then keep producing a few more waves for the successor
            while after_kill < 5 and time.monotonic() < deadline:
                await send(bootstrap, topic, [{"id": f"{n + i}"} for i in range(per_wave)],
                           keys=[f"{n + i}".encode() for i in range(per_wave)])
                n += per_wave
                await out.poll(0.2)
                if killed_at is None and out.total >= 200:
                    first.send_signal(signal.SIGKILL)
                    killed_at = out.total
                    first.wait(10)
                    second = spawn(config, bootstrap, log)
                elif killed_at is not None:
                    after_kill += 1
            assert killed_at is not None, f"no outcomes before the deadline; log:\n{log.read_text()[-3000:]}"
            ok = await out.until(lambda o: len(o.sources()) >= n, 60)
            sources = out.sources()
            assert ok, f"{n - len(sources)} of {n} events have no outcome; log:\n{log.read_text()[-3000:]}"
            assert first.returncode == -signal.SIGKILL
            assert killed_at is not None and killed_at < n, "the kill was not mid-stream"
        assert sources == await source_offsets(bootstrap, topic)
        # and the survivor shuts down cleanly on SIGTERM
        assert second is not None
        second.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert second.wait(30) == 0
        assert time.monotonic() - t0 < 30
    finally:
        reap(first)
        if second is not None:
            reap(second)
    await asyncio.sleep(0)
