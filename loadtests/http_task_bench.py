#!/usr/bin/env python3
"""What the HTTP Task (arn:aws:states:::http:invoke) costs over the request itself: executions/s of a
machine with one HTTP Task against a local aiohttp server, beside a bare aiohttp request loop written by
hand (one keep-alive session, the same headers, the JSON body parsed), timed in alternating windows in
one run so the ratio holds on a noisy machine. The server runs in its own process.

Usage (from the project root):
    python loadtests/http_task_bench.py [--seconds 1.0] [--repeats 5] [--concurrency 16]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

import orjson

ANSWER = orjson.dumps({"ok": True, "items": [1, 2, 3], "name": "bench"})


def serve() -> None:
    """The server process: a tiny aiohttp.web app on a free loopback port, printed on stdout."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/api", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    _loop_policy()
    asyncio.run(main())


def _loop_policy() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass


async def window(one: Any, seconds: float, concurrency: int) -> tuple[float, float]:
    """(calls of ``one()`` per second, this process's CPU seconds per call), ``concurrency`` at a time,
    for about ``seconds``."""
    stop = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(i: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            for _ in range(10):
                await one()
            n += 10
        counts[i] = n

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    calls = sum(counts)
    return calls / (time.perf_counter() - t0), (time.process_time() - cpu0) / calls


async def bench(port: int, seconds: float, repeats: int, concurrency: int) -> int:
    import aiohttp

    import express
    from express.integrations import Integrations
    from express.integrations.connections import Connection

    url = f"http://127.0.0.1:{port}/api"
    connection = Connection("bench", "API_KEY", api_key_name="x-api-key", api_key_value="k")
    integrations = Integrations(connections={"bench": connection})
    machine = express.Engine(integrations=integrations).compile({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "arn:aws:states:::http:invoke", "End": True,
        "Parameters": {"ApiEndpoint": url, "Method": "GET", "Authentication": {"ConnectionArn": connection.arn},
                       "Headers": {"X-Request": "bench"}}}}})
    headers = {"X-Request": "bench", "x-api-key": "k", "User-Agent": "Amazon|StepFunctions|HttpInvoke|us-east-1",
               "Range": "bytes=0-262144"}
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
    session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"))

    async def bare() -> None:
        async with session.get(url, headers=headers) as resp:
            orjson.loads(await resp.read())

    async def task() -> None:
        result = await machine.execute({})
        if result.status != "SUCCEEDED":
            raise SystemExit(f"the HTTP Task failed: {result.error}: {result.cause}")

    try:
        await bare()
        await task()  # warm: sessions, connections, the compiled machine
        variants = {"bare aiohttp request": bare, "HTTP Task execution": task}
        rates: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(repeats):
            for label, one in variants.items():
                rate, cpu_each = await window(one, seconds, concurrency)
                rates[label].append(rate)
                cpu[label].append(cpu_each)
    finally:
        await session.close()
        await integrations.aclose()
    print(f"{repeats} x {seconds}s windows, {concurrency} in flight, server in its own process; median:")
    for label in variants:
        print(f"  {label:22s} {statistics.median(rates[label]):>9,.0f} /s   "
              f"{1e6 * statistics.median(cpu[label]):7.1f} us client CPU each")
    bare_label, task_label = list(variants)
    by_rate = statistics.median(rates[bare_label]) / statistics.median(rates[task_label])
    by_cpu = statistics.median(cpu[task_label]) / statistics.median(cpu[bare_label])
    print(f"  HTTP Task / bare request: {by_rate:.2f}x by throughput, {by_cpu:.2f}x by client CPU "
          "(target: at most 2x)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve()
        return 0
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        _loop_policy()
        return asyncio.run(bench(port, args.seconds, args.repeats, args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
