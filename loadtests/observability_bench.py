#!/usr/bin/env python3
"""What metrics, usage records and execution logs cost the engine: executions/s of a machine
with each feature on and off, timed in alternating windows in one process (so the ratio holds
on a noisy machine).

Usage (from the project root):
    python loadtests/observability_bench.py [--machine ../shared/bench/machines/m1_pass_chain.json]
        [--input ../shared/bench/machines/input.json] [--seconds 1.0] [--repeats 5]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import statistics
import time
from typing import Any

import express
from express.engine.history import LoggingConfig
from express.observe.sinks import MemorySink

HERE = pathlib.Path(__file__).resolve().parent
BENCH = HERE.parent.parent / "shared" / "bench" / "machines"


def enrich(payload: dict[str, Any]) -> dict[str, Any]:
    return {"score": 75, "orderId": payload.get("orderId"), "echo": payload}


async def rate(machine: express.Machine, inp: Any, seconds: float) -> float:
    n = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(200):
            await machine.execute(inp)
        n += 200
        t = time.perf_counter() - t0
        if t >= seconds:
            return n / t


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--machine", default=str(BENCH / "m1_pass_chain.json"))
    ap.add_argument("--input", default=str(BENCH / "input.json"))
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    definition = json.loads(pathlib.Path(args.machine).read_text())
    inp = json.loads(pathlib.Path(args.input).read_text())
    functions = {"enrich": enrich}
    variants = {
        "off (default)": express.Engine(functions=functions).compile(definition),
        "metrics on": express.Engine(functions=functions, metrics=True).compile(definition),
        "metrics + usage records": express.Engine(functions=functions, metrics=True,
                                                  usage_sink=MemorySink(1000)).compile(definition),
        "logs OFF (configured)": express.Engine(functions=functions, log_sink=MemorySink(1000)).compile(
            definition, logging=LoggingConfig("OFF")),
        "logs ERROR": express.Engine(functions=functions, log_sink=MemorySink(1000)).compile(
            definition, logging=LoggingConfig("ERROR")),
        "logs ALL + data": express.Engine(functions=functions, log_sink=MemorySink(1000)).compile(
            definition, logging=LoggingConfig("ALL", True)),
    }
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for label, machine in variants.items():
            rates[label].append(await rate(machine, inp, args.seconds))
    base = statistics.median(rates["off (default)"])
    print(f"machine {pathlib.Path(args.machine).name}, {args.repeats} x {args.seconds}s windows, median:")
    for label, values in rates.items():
        med = statistics.median(values)
        print(f"  {label:28s} {med:>10,.0f} executions/s  {100.0 * (med - base) / base:+6.1f}%")
    return 0


if __name__ == "__main__":
    try:
        import uvloop

        raise SystemExit(uvloop.run(main()))
    except ImportError:
        raise SystemExit(asyncio.run(main())) from None
