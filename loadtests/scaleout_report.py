#!/usr/bin/env python3
"""Kafka scale-out report: `express serve --workers N` for N = 1..cores against one embedded broker.

Usage (from the project root, inside its environment):
    python loadtests/scaleout_report.py [--events 100000] [--max-workers CORES] [--partitions 8]
                                        [--in-flight 10000] [--no-memory]

For each N it uses loadtests/kafka_bench.py's machinery (a fresh topic, the keyed m1 events of
../shared/bench/machines pre-produced, N `express serve --no-http --workers 1` processes, the
results topic read until every outcome arrived) and prints steady events/s and worker and broker
CPU µs per event between the first and the last outcome (start-up and group join left out),
and the per-core figure (events/s one core of workers sustains: 1e6 / worker
µs/event). From the per-core figures of the largest N it prints how many cores (workers plus
broker, at the broker's measured µs/event) 100k and 1M events/s would need.

Memory per in-flight execution: one KafkaWorker (in a child process) with a machine that waits
(a 60 s Wait state), ``max_in_flight`` = --in-flight (default 10,000, the default bound) and 1 KiB
events; resident memory (VmRSS) once the bound is reached minus before the first fetch, divided
by the number in flight.

Everything shares this machine's CPUs (broker, workers, this reader): figures are those of a
shared machine, not of dedicated cores. The default run takes about 1.5 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

import kafka_bench as kb  # noqa: E402

from express.kafka.broker import EmbeddedBroker  # noqa: E402

WAITING = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "Next": "P"},
                                       "P": {"Type": "Pass", "End": True}}}


async def one_run(broker_pid: int, bootstrap: str, machine: Any, sample: Any, n: int, workers: int,
                  partitions: int, tmp: pathlib.Path) -> dict[str, Any]:
    """kafka_bench.run, with the workers' and the broker's CPU sampled at the first outcome: the
    CPU figures are of the steady state (first to last outcome), without start-up and group join."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from express.kafka.admin import ensure_topics
    from express.kafka.demo import produce

    topic = f"scale-{uuid.uuid4().hex[:8]}"
    results = topic + ".results"
    await ensure_topics(bootstrap, {t: partitions for t in (topic, results, topic + ".failures", topic + ".dlq")})
    await produce(bootstrap, topic, list(kb.events(sample, n)), partitions)  # type: ignore[arg-type]
    config = kb.write_config(tmp / topic, machine, topic, f"g-{topic}", {})
    with open(tmp / f"{topic}.log", "ab") as log:
        procs = [subprocess.Popen(kb.serve_command(config, bootstrap), stdout=log, stderr=subprocess.STDOUT)
                 for _ in range(workers)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50,
                                max_partition_fetch_bytes=4 * 1_048_576, fetch_max_bytes=64 * 1_048_576)
    await consumer.start()
    seen = at_first = 0
    first = last = 0.0
    cpu0 = broker0 = cpu1 = broker1 = 0.0
    try:
        tps = [TopicPartition(results, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 60 + n / 1000
        while seen < n and time.monotonic() < deadline:
            data = await consumer.getmany(timeout_ms=200, max_records=100_000)
            got = sum(len(v) for v in data.values())
            if got:
                now = time.perf_counter()
                cpu = sum(kb.cpu_seconds(p.pid) for p in procs)
                broker = kb.cpu_seconds(broker_pid)
                if not seen:
                    first, at_first, cpu0, broker0 = now, got, cpu, broker
                seen += got
                last, cpu1, broker1 = now, cpu, broker
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a worker exited early: see {tmp / topic}.log")
    finally:
        await consumer.stop()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    steady = seen - at_first  # the outcomes read after the first batch
    return {"outcomes": seen, "events": n, "steady_rate": steady / (last - first) if last > first else 0.0,
            "worker_us": 1e6 * (cpu1 - cpu0) / steady if steady else 0.0,
            "broker_us": 1e6 * (broker1 - broker0) / steady if steady else 0.0}


def rss_bytes() -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def memory_child(bootstrap: str, in_flight: int) -> None:
    """In a child process: RSS before and at the in-flight bound, printed as JSON."""
    import gc

    from express.engine.clock import RealClock
    from express.engine.machine import Engine
    from express.kafka.admin import ensure_topics
    from express.kafka.demo import produce
    from express.kafka.worker import KafkaWorker
    from express.serve.config import load_settings
    from express.serve.registry import Registry

    topic = f"mem-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "express.toml").write_text(
            f'[kafka]\ngroup_id = "{topic}"\nmax_in_flight = {in_flight}\n'
            f'[http]\nenabled = false\n[bindings]\n"{topic}" = "waits"\n')
        settings = load_settings(root, env={})
    registry = Registry(Engine(clock=RealClock(), max_duration_s=settings.engine.max_duration_s))
    registry.put("waits", WAITING)
    await ensure_topics(bootstrap, {t: 4 for t in (topic, topic + ".results", topic + ".failures", topic + ".dlq")})
    sample = json.loads((kb.BENCH / "input.json").read_text())
    await produce(bootstrap, topic, kb.events(sample, in_flight, pad=1024), 4)  # type: ignore[arg-type]
    gc.collect()
    worker = KafkaWorker(settings, registry, bootstrap, drain_timeout_s=0.0)
    await worker.start()
    await asyncio.sleep(0.5)
    gc.collect()
    before = rss_bytes()  # started, joined; the first fetch may have begun
    base_in_flight = worker.in_flight
    deadline = time.monotonic() + 60
    while worker.in_flight < in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    gc.collect()
    at_bound = rss_bytes()
    n = worker.in_flight - base_in_flight
    print(json.dumps({"before": before, "at_bound": at_bound, "in_flight": worker.in_flight, "counted": n}), flush=True)
    await worker._dispatcher.abandon()  # the Waits would hold the stop for a minute
    await worker.stop()


def memory_report(bootstrap: str, in_flight: int) -> dict[str, Any] | None:
    out = subprocess.run([sys.executable, __file__, "--memory-child", bootstrap, str(in_flight)],
                         capture_output=True, text=True, timeout=180)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return dict(json.loads(line))
    print(out.stdout[-2000:], out.stderr[-2000:])
    return None


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--in-flight", type=int, default=10_000)
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    machine = json.loads((kb.BENCH / "m1_pass_chain.json").read_text())
    sample = json.loads((kb.BENCH / "input.json").read_text())
    broker = EmbeddedBroker()
    bootstrap = await broker.start()
    cores = os.cpu_count()
    print(f"broker {bootstrap} (embedded tansu), {cores} CPUs, {args.events} events of m1, "
          f"{args.partitions} partitions", flush=True)
    rows = []
    mem = None
    try:
        with tempfile.TemporaryDirectory(prefix="scaleout-") as tmp:
            for n in range(1, args.max_workers + 1):
                r = await one_run(broker.pid or 0, bootstrap, machine, sample, args.events, n, args.partitions,
                                  pathlib.Path(tmp))
                w_us, b_us = r["worker_us"], r["broker_us"]
                rows.append((n, r["steady_rate"], w_us, b_us))
                print(f"workers={n}: {r['outcomes']}/{r['events']} outcomes, steady {r['steady_rate']:,.0f} events/s "
                      f"({r['steady_rate'] / n:,.0f} per worker), worker CPU {w_us:.1f} us/event, "
                      f"broker CPU {b_us:.1f} us/event, per-core figure {1e6 / w_us:,.0f} events/s "
                      f"per worker core", flush=True)
        if not args.no_memory:
            mem = memory_report(bootstrap, args.in_flight)
    finally:
        await broker.stop()
    n, _rate, w_us, b_us = rows[-1]
    print(f"\nat the figures of workers={n} (CPU seconds per event, independent of how busy this machine is):")
    for target in (100_000, 1_000_000):
        wc = target * w_us / 1e6
        bc = target * b_us / 1e6
        print(f"  {target:>9,} events/s: {wc:,.1f} worker cores + {bc:,.1f} broker cores (tansu) = "
              f"{wc + bc:,.1f} cores")
    if mem is not None and mem["counted"] > 0:
        per = (mem["at_bound"] - mem["before"]) / mem["counted"]
        print(f"memory: {mem['in_flight']} executions in flight (Wait state, 1 KiB events): RSS "
              f"{mem['before'] / 2**20:.1f} -> {mem['at_bound'] / 2**20:.1f} MiB, {per:,.0f} bytes per in-flight "
              f"execution ({per * mem['in_flight'] / 2**20:.1f} MiB at the bound)")
    return 0


if __name__ == "__main__":
    import uvloop

    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        uvloop.run(memory_child(sys.argv[2], int(sys.argv[3])))
        sys.exit(0)
    sys.exit(uvloop.run(main()))
