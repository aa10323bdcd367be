#!/usr/bin/env python3
"""Named StartSyncExecution (the exactly-once path) with each place names can live, in one run:

- ``memory:``  names in the serving process only (the figure before the durable store);
- ``sqlite``   the embedded default: names survive a restart of any worker or of the server;
- ``redis``    names shared by several servers (a redis-server started here on a free port).

    python loadtests/names_bench.py -n 10000 -c 32 [--rounds 3]

Each variant starts ``express serve --no-kafka --workers 1`` with ``EXPRESS_STATE_URL`` set, warms up, then
sends ``-n`` requests with unique names over ``-c`` raw keep-alive connections (``http_bench.run_raw``),
every answer checked. Prints requests/s and latency per variant (median of ``--rounds``) and the ratio
to ``memory:`` (target: the durable default within 1.5x of its cost).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import http_bench as hb  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench" / "machines"
MACHINE = BENCH / "m1_pass_chain.json"
INPUT = BENCH / "input.json"


def start_redis() -> tuple[subprocess.Popen[bytes] | None, str]:
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        return None, ""
    port = hb.free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc, f"redis://127.0.0.1:{port}/0"


def spawn(state_url: str) -> tuple[subprocess.Popen[bytes], str, str]:
    tmp = tempfile.mkdtemp(prefix="express-names-")
    (pathlib.Path(tmp) / "machines").mkdir()
    text = MACHINE.read_text()
    (pathlib.Path(tmp) / "machines" / "m1.asl.json").write_text(text)
    port = hb.free_port()
    env = dict(os.environ, EXPRESS_HTTP_MAX_NAMES="1000000", EXPRESS_STATE_URL=state_url)
    proc = subprocess.Popen([sys.executable, "-m", "express", "serve", "--config", tmp, "--no-kafka",
                             "--http", f"127.0.0.1:{port}", "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, hb.wait_listening(proc, port, f"express serve (EXPRESS_STATE_URL={state_url})"), tmp


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its living children so far, all their threads (the
    SQLite store's names helper included)."""
    total = 0.0
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_s(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


async def one_round(url: str, n: int, concurrency: int, input_text: str) -> tuple[float, list[float], int]:
    arn = "arn:aws:states:us-east-1:000000000000:stateMachine:m1"
    run_id = os.urandom(4).hex()

    def bodies(i: int) -> bytes:
        return hb.body_for(arn, input_text, f"bench-{run_id}-{i}")

    stats = hb.Stats()
    t0 = time.perf_counter()
    await hb.run_raw(url, bodies, n, concurrency, time.monotonic() + 120, stats)
    elapsed = time.perf_counter() - t0
    return len(stats.latencies) / elapsed, sorted(x * 1000 for x in stats.latencies), stats.errors


async def variant(label: str, state_url: str, args: argparse.Namespace, input_text: str) -> float:
    proc, url, tmp = spawn(state_url)
    try:
        await one_round(url, args.warmup, args.concurrency, input_text)
        rates, p99s, cpus, errors = [], [], [], 0
        for _ in range(args.rounds):
            before = cpu_s(proc.pid)
            rate, ms, errs = await one_round(url, args.requests, args.concurrency, input_text)
            cpus.append((cpu_s(proc.pid) - before) / args.requests * 1e6)
            rates.append(rate)
            p99s.append(hb.percentile(ms, 99))
            errors += errs
        med = statistics.median(rates)
        print(f"{label:8} {med:>9,.0f} req/s  (rounds {', '.join(f'{r:,.0f}' for r in rates)})  "
              f"p99 {statistics.median(p99s):.2f} ms  server CPU {statistics.median(cpus):.0f} µs/request  "
              f"errors {errors}", flush=True)
        return med
    finally:
        hb.stop_server(proc, tmp)


async def main_async(args: argparse.Namespace) -> int:
    input_text = INPUT.read_text()
    print(f"named StartSyncExecution, {args.requests} requests x {args.rounds} rounds, {args.concurrency} "
          "connections, 1 worker", flush=True)
    results = {"memory:": await variant("memory:", "memory:", args, input_text)}
    state = tempfile.mkdtemp(prefix="express-state-")
    try:
        results["sqlite"] = await variant("sqlite", f"sqlite:///{state}/express.db", args, input_text)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    redis_proc, redis_url = start_redis()
    if redis_proc is not None:
        try:
            results["redis"] = await variant("redis", redis_url, args, input_text)
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
    else:
        print("redis    (redis-server not installed: skipped)")
    base = results["memory:"]
    for label, rate in results.items():
        if label != "memory:":
            print(f"cost of {label} vs memory: {base / rate:.2f}x")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    hb.round_args(ap, 10_000)
    for needed in (MACHINE, INPUT):  # a figure for another machine or input would compare nothing
        if not needed.exists():
            raise SystemExit(f"names_bench: {needed} not found (the shared bench folder beside the project root)")
    return int(hb.run_loop(main_async(ap.parse_args())))


if __name__ == "__main__":
    sys.exit(main())
