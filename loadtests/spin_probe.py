#!/usr/bin/env python3
"""A spinning execution beside a /healthz probe, on one `express serve` worker.

    python loadtests/spin_probe.py              # the Express cap: 5 minutes of spinning
    python loadtests/spin_probe.py --cap 60     # a shorter run: the engine's cap is set to 60 s

Starts `express serve --workers 1 --no-kafka` on a free loopback port with one machine, a
Pass <-> Choice loop that never ends for its input (it stops only at the execution's cap), runs
``--spinners`` StartSyncExecutions of it and, beside them, a probe that asks for /healthz every
10 ms over its own keep-alive connection. Printed: the spinners' outcome (TIMED_OUT at the cap),
how many probes were answered while they ran, and the probe latency (p50, p99, worst).
Target: worst under 20 ms. Exit status 1 if a spinner did not end TIMED_OUT or a probe failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SPIN = {"StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": -1, "Next": "D"}], "Default": "P"},
    "P": {"Type": "Pass", "Next": "C"},
    "D": {"Type": "Succeed"}}}
TARGET = "AWSStepFunctions.StartSyncExecution"
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:spin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float:
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def spawn(cap: float) -> tuple[subprocess.Popen[bytes], int, str]:
    tmp = tempfile.mkdtemp(prefix="express-spin-")
    (pathlib.Path(tmp) / "machines").mkdir()
    (pathlib.Path(tmp) / "machines" / "spin.asl.json").write_text(json.dumps(SPIN))
    (pathlib.Path(tmp) / "express.toml").write_text(f"[engine]\nmax_duration_s = {cap}\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "express", "serve", "--config", tmp, "--no-kafka",
                             "--http", f"127.0.0.1:{port}", "--workers", "1"], env=dict(os.environ))
    t_end = time.monotonic() + 20
    while time.monotonic() < t_end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port, tmp
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("the server exited at start") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start listening within 20 s")


async def run(port: int, cap: float, spinners: int, every_s: float) -> int:
    import aiohttp

    url = f"http://127.0.0.1:{port}"
    body = json.dumps({"stateMachineArn": ARN, "input": json.dumps({"x": 1})})
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET}
    timeout = aiohttp.ClientTimeout(total=cap + 60)
    async with aiohttp.ClientSession(timeout=timeout) as spin_session, \
            aiohttp.ClientSession(timeout=timeout) as probe_session:
        async with probe_session.get(url + "/healthz") as resp:  # connect before the spin starts
            await resp.read()

        async def spin() -> dict[str, object]:
            async with spin_session.post(url + "/", data=body, headers=headers) as resp:
                return json.loads(await resp.read())  # type: ignore[no-any-return]

        t0 = time.perf_counter()
        tasks = [asyncio.ensure_future(spin()) for _ in range(spinners)]
        await asyncio.sleep(0.05)  # the spinners are running
        latencies: list[float] = []
        failures = 0
        next_at = time.perf_counter()
        while not all(t.done() for t in tasks):
            sent = time.perf_counter()
            try:
                async with probe_session.get(url + "/healthz") as resp:
                    await resp.read()
                    ok = resp.status == 200
            except aiohttp.ClientError:
                ok = False
            if not all(t.done() for t in tasks):
                latencies.append(time.perf_counter() - sent)
                failures += not ok
            next_at += every_s
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        answers = [t.result() for t in tasks]
        elapsed = time.perf_counter() - t0
    statuses = sorted({str(a.get("status")) for a in answers})
    print(f"spinners={spinners} cap={cap:g}s ran {elapsed:.1f}s -> {','.join(statuses)} "
          f"({answers[0].get('error')}: {answers[0].get('cause')})")
    ms = sorted(x * 1000 for x in latencies)
    if ms:
        print(f"probe: {len(ms)} /healthz every {every_s * 1000:g} ms while spinning, {failures} failed; "
              f"latency ms p50 {percentile(ms, 50):.2f}  p99 {percentile(ms, 99):.2f}  worst {ms[-1]:.2f} "
              f"(target: worst under 20)")
    return 0 if statuses == ["TIMED_OUT"] and ms and not failures else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cap", type=float, default=300.0, help="the engine's max_duration_s (default: 300, AWS's)")
    ap.add_argument("--spinners", type=int, default=1, help="spinning executions at once (default 1)")
    ap.add_argument("--every-ms", type=float, default=10.0, help="probe interval (default 10 ms)")
    args = ap.parse_args()
    proc, port, tmp = spawn(args.cap)
    try:
        try:
            import uvloop

            return uvloop.run(run(port, args.cap, args.spinners, args.every_ms / 1000))
        except ImportError:
            return asyncio.run(run(port, args.cap, args.spinners, args.every_ms / 1000))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
