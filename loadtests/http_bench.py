#!/usr/bin/env python3
"""StartSyncExecution load over keep-alive connections: requests/s and latency percentiles.

Against a running server:
    python loadtests/http_bench.py --url http://127.0.0.1:8080 --machine m1 -n 20000 -c 32

Or let the benchmark start one (``express serve`` in a subprocess, with the machine file given):
    python loadtests/http_bench.py --spawn ../shared/bench/machines/m1_pass_chain.json \\
        --input @../shared/bench/machines/input.json -n 20000 -c 32

``--client aiohttp`` (default) uses one aiohttp session with ``-c`` pooled keep-alive connections;
``--client raw`` uses ``-c`` hand-written asyncio keep-alive connections (much cheaper per request,
so on a small machine it measures the server rather than the client). ``--names`` gives every
request its own execution name (the exactly-once path). Every response is checked (HTTP 200 and
status SUCCEEDED). Requests are bounded by ``-n`` and by ``--max-seconds``.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

TARGET = "AWSStepFunctions.StartSyncExecution"
CT = "application/x-amz-json-1.0"


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def body_for(arn: str, input_text: str, name: str | None) -> bytes:
    req: dict[str, Any] = {"stateMachineArn": arn, "input": input_text}
    if name is not None:
        req["name"] = name
    return orjson.dumps(req)


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.finished: list[float] = []  # perf_counter() at each answer, for throughput over time
        self.errors = 0
        self.first_error: str | None = None

    def fail(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what


def check(status: int, payload: bytes, stats: Stats) -> None:
    if status != 200:
        stats.fail(f"HTTP {status}: {payload[:200]!r}")
        return
    if b'"status":"SUCCEEDED"' not in payload:
        stats.fail(f"not SUCCEEDED: {payload[:200]!r}")


async def run_aiohttp(url: str, bodies: Any, n: int, concurrency: int, deadline: float, stats: Stats,
                      pace: Any = None) -> None:
    import aiohttp

    headers = {"Content-Type": CT, "X-Amz-Target": TARGET}
    counter = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def worker() -> None:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                if pace is not None:
                    await pace(i)
                data = bodies(i)
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=data, headers=headers) as resp:
                        payload = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as e:
                    stats.fail(f"{type(e).__name__}: {e}")
                    continue
                t1 = time.perf_counter()
                stats.latencies.append(t1 - t0)
                stats.finished.append(t1)
                check(status, payload, stats)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_raw(url: str, bodies: Any, n: int, concurrency: int, deadline: float, stats: Stats,
                  pace: Any = None) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counter = iter(range(n))
    head_tpl = (f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {CT}\r\nX-Amz-Target: {TARGET}\r\n"
                "Content-Length: ").encode()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                if pace is not None:
                    await pace(i)
                data = bodies(i)
                t0 = time.perf_counter()
                writer.write(head_tpl + str(len(data)).encode() + b"\r\n\r\n" + data)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                payload = await reader.readexactly(length)
                t1 = time.perf_counter()
                stats.latencies.append(t1 - t0)
                stats.finished.append(t1)
                check(status, payload, stats)
        except (OSError, asyncio.IncompleteReadError) as e:
            stats.fail(f"{type(e).__name__}: {e}")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_server(proc: subprocess.Popen[bytes], folder: str | pathlib.Path | None = None) -> None:
    """SIGTERM (the graceful stop), SIGKILL after 40 s; then its config folder goes."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def run_loop(coro: Any) -> Any:
    """``coro`` on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def round_args(ap: argparse.ArgumentParser, requests: int) -> None:
    """The arguments of a benchmark in rounds: -n, -c, --warmup, --rounds."""
    ap.add_argument("-n", "--requests", type=int, default=requests)
    ap.add_argument("-c", "--concurrency", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--rounds", type=int, default=3)


def spawn_server(machine_file: str, name: str, workers: int = 1) -> tuple[subprocess.Popen[bytes], str, str]:
    tmp = tempfile.mkdtemp(prefix="express-bench-")
    machines = pathlib.Path(tmp) / "machines"
    machines.mkdir()
    shutil.copy(machine_file, machines / f"{name}.asl.json")
    port = free_port()
    env = dict(os.environ, EXPRESS_HTTP_MAX_NAMES="1000000")
    if workers > 1:  # every worker serves the port (SO_REUSEPORT); the bench sends unnamed requests only
        env.update(EXPRESS_WORKERS_HTTP="all", EXPRESS_WORKERS_HTTP_NAMES_PER_PROCESS="true")
    proc = subprocess.Popen([sys.executable, "-m", "express", "serve", "--config", tmp, "--no-kafka",
                             "--http", f"127.0.0.1:{port}", "--workers", str(workers)], env=env)
    return proc, wait_listening(proc, port, "express serve"), tmp


def wait_listening(proc: subprocess.Popen[bytes], port: int, what: str, timeout_s: float = 30.0) -> str:
    """The server's URL once ``port`` accepts connections; SystemExit if ``proc`` exits or times out first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return f"http://127.0.0.1:{port}/"
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{what} exited at start") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{what} did not listen within {timeout_s:g} s")


async def bench(args: argparse.Namespace, url: str) -> int:
    input_text = (pathlib.Path(args.input[1:]).read_text() if args.input.startswith("@") else args.input)
    arn = args.arn or f"arn:aws:states:us-east-1:000000000000:stateMachine:{args.machine}"
    run_id = os.urandom(4).hex()
    plain = body_for(arn, input_text, None)

    def bodies(i: int) -> bytes:
        return body_for(arn, input_text, f"bench-{run_id}-{i}") if args.names else plain

    runner = run_raw if args.client == "raw" else run_aiohttp
    if args.warmup:
        await runner(url, bodies, args.warmup, args.concurrency, time.monotonic() + 30, Stats())
        run_id = os.urandom(4).hex()
    stats = Stats()
    t0 = time.perf_counter()
    await runner(url, bodies, args.requests, args.concurrency, time.monotonic() + args.max_seconds, stats)
    elapsed = time.perf_counter() - t0
    lat = sorted(stats.latencies)
    done = len(lat)
    ms = [x * 1000 for x in lat]
    print(f"client={args.client} requests={done} concurrency={args.concurrency} names={'yes' if args.names else 'no'} "
          f"errors={stats.errors} elapsed={elapsed:.2f}s")
    if stats.first_error:
        print(f"first error: {stats.first_error}")
    if done:
        print(f"throughput: {done / elapsed:,.0f} req/s")
        print(f"latency ms: p50 {percentile(ms, 50):.2f}  p95 {percentile(ms, 95):.2f}  "
              f"p99 {percentile(ms, 99):.2f}  max {ms[-1]:.2f}  mean {statistics.fmean(ms):.2f}")
    return 0 if done and not stats.errors else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080/")
    ap.add_argument("--spawn", metavar="MACHINE.json", help="start `express serve` with this machine first")
    ap.add_argument("--machine", default="m1", help="machine name (default m1)")
    ap.add_argument("--arn", default=None, help="state machine ARN (default: built from --machine)")
    ap.add_argument("--input", default="{}", help="input JSON or @file")
    ap.add_argument("-n", "--requests", type=int, default=20_000)
    ap.add_argument("-c", "--concurrency", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--client", choices=("aiohttp", "raw"), default="aiohttp")
    ap.add_argument("--names", action="store_true", help="give each request a unique execution name")
    ap.add_argument("--workers", type=int, default=1, help="with --spawn: `express serve --workers N`")
    args = ap.parse_args()
    proc = None
    tmp = None
    url = args.url
    if args.spawn:
        proc, url, tmp = spawn_server(args.spawn, args.machine, args.workers)
    try:
        return int(run_loop(bench(args, url)))
    finally:
        if proc is not None:
            stop_server(proc, tmp)


if __name__ == "__main__":
    sys.exit(main())
