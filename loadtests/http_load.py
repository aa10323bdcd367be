#!/usr/bin/env python3
"""HTTP load generator for a running express deployment: StartSyncExecution requests/s and latency.

    python loadtests/http_load.py --url http://HOST:8080/ --machine m1 --input @event.json \\
        [-n 50000] [-c 32] [--rate 5000 | (default) as fast as possible] [--names] \\
        [--client raw|aiohttp] [--report out.json] [--chart out.png]

``-c`` keep-alive connections send ``-n`` requests in all (each answer is checked: HTTP 200 and
status SUCCEEDED), closed loop, or paced to ``--rate`` requests/s in total. It prints progress
every second, then a summary, writes a JSON report and draws a PNG chart (requests/s over time
with p50/p99 latency, and the latency percentiles). The request loops come from
``http_bench.py`` (``--client raw``, the default here, is the cheap hand-written keep-alive
client, so the generator is not the bottleneck; ``aiohttp`` is the ordinary one). Requests are
bounded by ``-n`` and ``--max-seconds``. Against SigV4-protected deployments use boto3 instead;
this tool sends unsigned requests.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import http_bench  # noqa: E402
from report import Progress, draw_chart, latency_summary, timeline, write_json  # noqa: E402

DEFAULT_INPUT = HERE.parent.parent / "shared" / "bench" / "machines" / "input.json"


def load_input(text: str, pad_to: int) -> str:
    import orjson

    raw = pathlib.Path(text[1:]).read_text() if text.startswith("@") else text
    if pad_to:
        doc = orjson.loads(raw)
        if isinstance(doc, dict) and len(raw) < pad_to:
            doc["pad"] = "x" * max(0, pad_to - len(orjson.dumps(doc)) - 9)
            raw = orjson.dumps(doc).decode()
    return raw


async def run(args: argparse.Namespace) -> int:
    input_text = load_input(args.input, args.payload_bytes)
    arn = args.arn or f"arn:aws:states:us-east-1:000000000000:stateMachine:{args.machine}"
    run_id = os.urandom(4).hex()
    plain = http_bench.body_for(arn, input_text, None)

    def bodies(i: int) -> bytes:
        return http_bench.body_for(arn, input_text, f"load-{run_id}-{i}") if args.names else plain

    runner = http_bench.run_raw if args.client == "raw" else http_bench.run_aiohttp
    if args.warmup:
        await runner(args.url, bodies, args.warmup, args.concurrency, time.monotonic() + 30, http_bench.Stats())
        run_id = os.urandom(4).hex()
    stats = http_bench.Stats()
    progress = Progress()
    t0 = time.perf_counter()

    async def pace(i: int) -> None:  # request i may start at t0 + i / rate
        if args.rate > 0:
            delay = t0 + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    async def show() -> None:
        while True:
            await asyncio.sleep(1.0)
            elapsed = time.perf_counter() - t0
            done = len(stats.latencies)
            progress.update(f"requests {done:,}/{args.requests:,}  errors {stats.errors:,}  "
                            f"{done / elapsed:,.0f} req/s  {elapsed:.0f} s")

    print(f"http_load: {args.requests:,} StartSyncExecution requests to {args.url} ({args.machine}), "
          f"{args.concurrency} connections, {'as fast as possible' if args.rate <= 0 else f'{args.rate:,.0f} req/s'}"
          f", client {args.client}", file=sys.stderr)
    shower = asyncio.create_task(show())
    try:
        await runner(args.url, bodies, args.requests, args.concurrency, time.monotonic() + args.max_seconds, stats,
                     pace if args.rate > 0 else None)
    finally:
        shower.cancel()
        await asyncio.gather(shower, return_exceptions=True)
        progress.done()
    elapsed = time.perf_counter() - t0
    done = len(stats.latencies)
    lat = latency_summary(stats.latencies)
    report: dict[str, Any] = {
        "tool": "http_load", "url": args.url, "machine": args.machine, "requests": args.requests, "completed": done,
        "errors": stats.errors, "first_error": stats.first_error, "concurrency": args.concurrency,
        "rate_target": args.rate or None, "client": args.client, "names": bool(args.names),
        "input_bytes": len(input_text.encode()), "duration_s": round(elapsed, 3),
        "throughput_rps": round(done / elapsed, 1) if elapsed > 0 else None, "latency_ms": lat,
        "timeline": timeline(stats.finished, stats.latencies, t0),
    }
    print(f"requests {done:,}/{args.requests:,}, errors {stats.errors:,}"
          + (f" (first: {stats.first_error})" if stats.first_error else ""))
    print(f"throughput: {report['throughput_rps'] or 0:,.0f} req/s over {elapsed:.2f} s, {args.concurrency} connections")
    print("latency ms: " + "  ".join(f"{k} {v:,.2f}" for k, v in lat.items() if v is not None))
    if args.report:
        write_json(args.report, report)
        print(f"report: {args.report}")
    if args.chart:
        draw_chart(args.chart, f"http_load: {args.machine}, {done:,} requests, {report['throughput_rps'] or 0:,.0f} "
                   f"req/s, p99 {lat['p99'] or 0:,.1f} ms", report["timeline"], lat, "requests/s")
        print(f"chart: {args.chart}")
    return 0 if done == args.requests and not stats.errors else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080/")
    ap.add_argument("--machine", default="m1", help="state machine name (default m1)")
    ap.add_argument("--arn", default=None, help="state machine ARN (default: built from --machine)")
    ap.add_argument("--input", default=f"@{DEFAULT_INPUT}" if DEFAULT_INPUT.exists() else "{}",
                    help="input JSON or @file")
    ap.add_argument("--payload-bytes", type=int, default=0, help="pad the input to about this many bytes")
    ap.add_argument("-n", "--requests", type=int, default=20_000)
    ap.add_argument("-c", "--concurrency", type=int, default=32)
    ap.add_argument("--rate", type=float, default=0.0, help="requests/s in total (default 0: as fast as possible)")
    ap.add_argument("--warmup", type=int, default=1_000)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--client", choices=("raw", "aiohttp"), default="raw")
    ap.add_argument("--names", action="store_true", help="give each request a unique execution name")
    ap.add_argument("--report", default="http_load.json", help="JSON report path ('' for none)")
    ap.add_argument("--chart", default="http_load.png", help="PNG chart path ('' for none)")
    args = ap.parse_args(argv)
    try:
        import uvloop

        return int(uvloop.run(run(args)))
    except ImportError:
        return int(asyncio.run(run(args)))


if __name__ == "__main__":
    sys.exit(main())
