#!/usr/bin/env python3
"""StartSyncExecution on this tree against an earlier revision, in one run, one worker each:

    python loadtests/http_ab.py --base 6b03f60 -n 20000 -c 32 --rounds 3

``--base`` (a git revision) is exported with ``git archive`` into a temporary folder; both servers run
``express serve --no-kafka --workers 1`` with this virtualenv's Python (each tree first on its
``PYTHONPATH``) and the same machine (m1 of ../shared/bench) and input. Rounds alternate between
the two servers (so a busy spell of the machine hits both), every answer is checked, and each
round reports requests/s, p50/p99 latency and the server's CPU per request (from /proc). The
medians, their spread and the ratio head/base are printed last.
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
from names_bench import cpu_s  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench" / "machines"
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:m1"


def export(revision: str) -> pathlib.Path:
    """The tree of ``revision`` in a temporary folder."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="express-base-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def start(tree: pathlib.Path) -> tuple[subprocess.Popen[bytes], str, pathlib.Path]:
    config = pathlib.Path(tempfile.mkdtemp(prefix="express-ab-"))
    (config / "machines").mkdir()
    shutil.copy(BENCH / "m1_pass_chain.json", config / "machines" / "m1.asl.json")
    port = hb.free_port()
    env = dict(os.environ, PYTHONPATH=str(tree), EXPRESS_STATE_URL="memory:")
    entry = "express" if (tree / "express" / "__main__.py").exists() else "express.cli"  # before the layout
    proc = subprocess.Popen([sys.executable, "-m", entry, "serve", "--config", str(config), "--no-kafka",
                             "--http", f"127.0.0.1:{port}", "--workers", "1"], env=env, cwd=str(config),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, hb.wait_listening(proc, port, f"express serve of {tree}"), config


async def one_round(proc: subprocess.Popen[bytes], url: str, n: int, concurrency: int,
                    body: bytes) -> tuple[float, float, float, float]:
    stats = hb.Stats()
    before = cpu_s(proc.pid)
    t0 = time.perf_counter()
    await hb.run_raw(url, lambda i: body, n, concurrency, time.monotonic() + 120, stats)
    elapsed = time.perf_counter() - t0
    if stats.errors:
        raise SystemExit(f"{stats.errors} failed requests, the first: {stats.first_error}")
    ms = sorted(x * 1000 for x in stats.latencies)
    return n / elapsed, hb.percentile(ms, 50), hb.percentile(ms, 99), (cpu_s(proc.pid) - before) / n * 1e6


async def main_async(args: argparse.Namespace) -> int:
    base_tree = export(args.base)
    body = hb.body_for(ARN, (BENCH / "input.json").read_text(), None)
    servers = {"head": start(ROOT), f"base {args.base}": start(base_tree)}
    results: dict[str, list[tuple[float, float, float, float]]] = {label: [] for label in servers}
    try:
        for proc, url, _ in servers.values():
            await one_round(proc, url, args.warmup, args.concurrency, body)
        for r in range(args.rounds):
            for label, (proc, url, _) in servers.items():
                figures = await one_round(proc, url, args.requests, args.concurrency, body)
                results[label].append(figures)
                rate, p50, p99, cpu = figures
                print(f"round {r + 1} {label:14} {rate:>9,.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
                      f"server CPU {cpu:.0f} µs/request", flush=True)
    finally:
        for proc, _, config in servers.values():
            hb.stop_server(proc, config)
        shutil.rmtree(base_tree, ignore_errors=True)
    medians = {}
    for label, rows in results.items():
        rates = [row[0] for row in rows]
        medians[label] = statistics.median(rates)
        print(f"{label:14} median {medians[label]:,.0f} req/s (min {min(rates):,.0f}, max {max(rates):,.0f}), "
              f"p99 {statistics.median(row[2] for row in rows):.2f} ms, "
              f"CPU {statistics.median(row[3] for row in rows):.0f} µs/request")
    head, base = medians["head"], medians[f"base {args.base}"]
    print(f"head / base: {head / base:.2f}x requests/s (target: at least 1.4x)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="6b03f60", help="the git revision to compare with (default: 6b03f60, "
                    "the tree measured on 2026-12-01)")
    hb.round_args(ap, 20_000)
    return int(hb.run_loop(main_async(ap.parse_args())))


if __name__ == "__main__":
    sys.exit(main())
