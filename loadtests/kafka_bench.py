#!/usr/bin/env python3
"""End-to-end Kafka throughput: events/s through `express serve` worker processes.

Usage (from the project root, inside its environment):
    python loadtests/kafka_bench.py [--events 200000] [--workers 1 2] [--partitions 8]
                                    [--bootstrap HOST:PORT] [--machine PATH --input PATH]

For each worker count it creates a fresh topic (and its outcome topics), pre-produces N events
(the bench input of ../shared/bench/machines, ids varied, keyed) with the batch API, starts the
`express serve --no-http` processes, and reads the results topic until N outcomes have arrived.
It prints:
  * events/s over the whole run (from starting the workers: includes process start and group join),
  * events/s in steady state (first outcome to last outcome),
  * each worker's peak resident memory (VmHWM from /proc/PID/status).
The broker is the embedded tansu (a child process of this script) unless --bootstrap is given.
Everything runs on this machine: broker, workers and this reader share the CPUs.

    --memory  instead: one worker with a 1-second Wait machine, 1 KiB events and the default
              in-flight bound, to measure resident memory at the bound.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from express.kafka.admin import ensure_topics  # noqa: E402
from express.kafka.broker import EmbeddedBroker  # noqa: E402
from express.kafka.demo import produce  # noqa: E402

TIMELINE = False
BENCH = ROOT.parent / "shared" / "bench" / "machines"


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def serve_command(config: pathlib.Path, bootstrap: str) -> list[str]:
    script = pathlib.Path(sys.executable).parent / "express"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "express"]
    # one worker per process: the bench starts (and measures) the processes itself
    return [*base, "serve", "--config", str(config), "--bootstrap", bootstrap, "--no-http", "--workers", "1"]


def write_config(root: pathlib.Path, machine: Any, topic: str, group: str, kafka: dict[str, Any]) -> pathlib.Path:
    (root / "machines").mkdir(parents=True, exist_ok=True)
    (root / "machines" / "bench.asl.json").write_text(json.dumps(machine))
    lines = ["[kafka]", f'group_id = "{group}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in kafka.items()]
    lines += ["[http]", "enabled = false", "[bindings]", f'"{topic}" = "bench"']
    (root / "express.toml").write_text("\n".join(lines) + "\n")
    return root


def events(sample: Any, n: int, pad: int = 0) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(n):
        doc = dict(sample)
        order = dict(doc.get("order") or {})
        order["id"] = f"ord-{i:07d}"
        doc["order"] = order
        if pad:
            doc["pad"] = ""
            raw = orjson.dumps(doc)
            doc["pad"] = "x" * max(0, pad - len(raw))
        out.append((order["id"].encode(), orjson.dumps(doc)))
    return out


async def read_outcomes(bootstrap: str, topics: list[str], partitions: int, n: int, timeout_s: float,
                        procs: list[subprocess.Popen[bytes]], peaks: dict[int, float]) -> tuple[int, float, float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50,
                                max_partition_fetch_bytes=4 * 1_048_576, fetch_max_bytes=64 * 1_048_576)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        first = last = 0.0
        deadline = time.monotonic() + timeout_s
        next_sample = 0.0
        timeline: list[tuple[float, int]] = []
        t_start = time.perf_counter()
        while seen < n and time.monotonic() < deadline:
            data = await consumer.getmany(timeout_ms=200, max_records=100_000)
            now = time.perf_counter()
            got = sum(len(v) for v in data.values())
            if got:
                if not seen:
                    first = now
                seen += got
                last = now
            if time.monotonic() > next_sample:  # VmHWM is a high-water mark; sample while alive
                next_sample = time.monotonic() + 0.5
                timeline.append((round(time.perf_counter() - t_start, 1), seen))
                for p in procs:
                    m = vm_hwm_mb(p.pid)
                    if m is not None:
                        peaks[p.pid] = max(peaks.get(p.pid, 0.0), m)
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited early")
        if TIMELINE:
            print("  timeline (s since workers started, outcomes read):", timeline, flush=True)
        return seen, first, last
    finally:
        await consumer.stop()


async def run(broker_pid: int | None, bootstrap: str, machine: Any, sample: Any, n: int, workers: int, partitions: int,
              kafka: dict[str, Any], pad: int, tmp: pathlib.Path) -> dict[str, Any]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    group = f"bench-{uuid.uuid4().hex[:8]}"
    outs = [topic + ".results", topic + ".failures", topic + ".dlq"]
    await ensure_topics(bootstrap, {t: partitions for t in [topic, *outs]})
    t = time.perf_counter()
    await produce(bootstrap, topic, events(sample, n, pad), partitions)
    produce_s = time.perf_counter() - t
    config = write_config(tmp / topic, machine, topic, group, kafka)
    log = tmp / f"{topic}.log"
    procs = []
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        for _ in range(workers):
            procs.append(subprocess.Popen(serve_command(config, bootstrap), stdout=out, stderr=subprocess.STDOUT))
    peaks: dict[int, float] = {}
    broker_cpu0 = cpu_seconds(broker_pid)
    try:
        seen, first, last = await read_outcomes(bootstrap, outs, partitions, n, 120 + n / 2000, procs, peaks)
    finally:
        broker_cpu = cpu_seconds(broker_pid) - broker_cpu0
        worker_cpu = [cpu_seconds(p.pid) for p in procs]
        for p in procs:
            m = vm_hwm_mb(p.pid)
            if m is not None:
                peaks[p.pid] = max(peaks.get(p.pid, 0.0), m)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    total_s = last - t0
    steady_s = last - first
    return {"workers": workers, "events": n, "outcomes": seen, "produce_s": produce_s,
            "total_s": total_s, "total_rate": seen / total_s if total_s > 0 else 0.0,
            "steady_s": steady_s, "steady_rate": (seen / steady_s) if steady_s > 0 else 0.0,
            "peak_rss_mb": [round(peaks.get(p.pid, 0.0), 1) for p in procs],
            "exit_codes": [p.returncode for p in procs], "log": str(log),
            "broker_cpu_s": broker_cpu, "worker_cpu_s": [round(c, 2) for c in worker_cpu]}


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--bootstrap", default=None)
    ap.add_argument("--machine", default=str(BENCH / "m1_pass_chain.json"))
    ap.add_argument("--input", default=str(BENCH / "input.json"))
    ap.add_argument("--max-in-flight", type=int, default=None)
    ap.add_argument("--memory", action="store_true", help="resident memory at the in-flight bound (see above)")
    ap.add_argument("--timeline", action="store_true", help="print outcomes read every 0.5 s")
    args = ap.parse_args()
    global TIMELINE
    TIMELINE = args.timeline

    machine = json.loads(pathlib.Path(args.machine).read_text())
    sample = json.loads(pathlib.Path(args.input).read_text())
    kafka: dict[str, Any] = {}
    if args.max_in_flight:
        kafka["max_in_flight"] = args.max_in_flight
    pad = 0
    workers = args.workers
    if args.memory:
        machine = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Next": "P"},
                                               "P": {"Type": "Pass", "End": True}}}
        pad = 1024
        workers = [1]
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = EmbeddedBroker()
        bootstrap = await broker.start()
    print(f"broker {bootstrap} ({'embedded tansu' if broker else 'external'}), {os.cpu_count()} CPUs, "
          f"{args.events} events, {args.partitions} partitions, machine {pathlib.Path(args.machine).name}"
          + (" [memory mode: 1 s Wait, 1 KiB events]" if args.memory else ""), flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="kafka-bench-") as tmp:
            for w in workers:
                r = await run(broker.pid if broker else None, bootstrap, machine, sample, args.events, w, args.partitions, kafka, pad,
                              pathlib.Path(tmp))
                print(f"workers={w}: {r['outcomes']}/{r['events']} outcomes; "
                      f"{r['total_rate']:,.0f} events/s overall ({r['total_s']:.2f} s incl. start + join), "
                      f"{r['steady_rate']:,.0f} events/s steady ({r['steady_s']:.2f} s first->last outcome); "
                      f"peak RSS per worker {r['peak_rss_mb']} MB; exit codes {r['exit_codes']}; "
                      f"pre-produce {r['produce_s']:.2f} s; CPU s: workers {r['worker_cpu_s']}, "
                      f"broker {r['broker_cpu_s']:.2f}", flush=True)
                if r["outcomes"] < r["events"]:
                    print(pathlib.Path(r["log"]).read_text()[-2000:])
    finally:
        if broker is not None:
            await broker.stop()
    return 0


if __name__ == "__main__":
    try:
        import uvloop

        sys.exit(uvloop.run(main()))
    except ImportError:
        sys.exit(asyncio.run(main()))
