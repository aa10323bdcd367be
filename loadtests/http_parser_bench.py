#!/usr/bin/env python3
"""Requests/s of the HTTP server with one HTTP/1.1 connection implementation against another, in one run.

    python loadtests/http_parser_bench.py --before /tmp/protocol_before.py

``--before`` and ``--after`` name a file defining ``HttpConnection`` (a version of
express/http/protocol.py; ``--after`` defaults to the one in the tree, ``current``). For each
version a server process runs (uvloop, one state machine) with that ``HttpConnection`` in place of
the tree's, and a raw keep-alive client (``-c`` connections, default 32, another process: the
client takes the other core) measures StartSyncExecution (a 3-state Pass chain) and
``GET /healthz`` for ``--seconds`` each after a warm-up. The versions alternate, ``--runs`` times
(default 3), and the medians are printed: requests/s, and the server's CPU time per request (user +
system, from /proc), which other load on the machine disturbs much less. Every answer is checked
(status 200).

Then, in this process, the connection alone (``--micro-rounds``, 0 to skip; ``--micro-only`` skips
the servers): the same requests given to an ``HttpConnection`` whose transport discards the
answers and whose handler answers at once, in CPU time per request (best of the rounds): the
parser, the request loop and the answer's formatting, without the sockets, the engine or the client.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

MACHINE = {"StartAt": "A", "States": {
    "A": {"Type": "Pass", "Parameters": {"order.$": "$.order", "step": 1}, "Next": "B"},
    "B": {"Type": "Pass", "Result": {"ok": True}, "ResultPath": "$.check", "Next": "C"},
    "C": {"Type": "Pass", "End": True}}}
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:bench"
BODY = json.dumps({"stateMachineArn": ARN, "input": json.dumps({"order": {"id": 42, "items": [1, 2, 3]}})}).encode()
REQUESTS = {
    "StartSyncExecution": (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n"
                           b"X-Amz-Target: AWSStepFunctions.StartSyncExecution\r\nUser-Agent: bench\r\n"
                           b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY),
    "/healthz": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n",
}


# ---------------------------------------------------------------------- the server process
def load_connection(path: str) -> Any:
    if path == "current":
        from express.http.protocol import HttpConnection

        return HttpConnection
    spec = importlib.util.spec_from_file_location(f"protocol_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    # An older version builds today's requests: the API's stack keeps what it found on them.
    from express.http.messages import Request

    module.Request = Request
    return module.HttpConnection


async def serve(path: str) -> None:
    import express.http.server as server_module
    from express.engine.machine import Engine
    from express.http import HttpServer
    from express.serve.config import EngineSettings, HttpSettings, Settings
    from express.serve.registry import Registry

    server_module.HttpConnection = load_connection(path)  # type: ignore[attr-defined,misc]
    settings = Settings(engine=EngineSettings(), http=HttpSettings(host="127.0.0.1", port=0))
    registry = Registry(Engine())
    registry.put("bench", json.dumps(MACHINE))
    server = HttpServer(settings, registry, host="127.0.0.1", port=0)
    await server.start()
    print(server.port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()


# ---------------------------------------------------------------------- the client process
async def load(port: int, request: bytes, connections: int, seconds: float) -> tuple[int, int, float]:
    """(answers, errors, elapsed) of ``connections`` clients sending ``request`` one after the other."""
    done = errors = 0
    deadline = 0.0

    async def client() -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                start = head.find(b"Content-Length: ") + 16
                await reader.readexactly(int(head[start:head.find(b"\r\n", start)]))
                if head[9:12] == b"200":
                    done += 1
                else:
                    errors += 1
        finally:
            writer.close()

    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return done, errors, time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid: int, port: int, endpoint: str, connections: int, seconds: float,
            warmup: float) -> tuple[float, float]:
    """(requests/s, server CPU microseconds per request)"""
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    request = REQUESTS[endpoint]
    run(load(port, request, connections, warmup))
    cpu0 = cpu_seconds(pid)
    done, errors, elapsed = run(load(port, request, connections, seconds))
    cpu = cpu_seconds(pid) - cpu0
    if errors:
        raise SystemExit(f"{endpoint}: {errors} answers were not 200")
    return done / elapsed, cpu / done * 1e6


# ---------------------------------------------------------------------- the connection alone, in process
class _NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


class _Owner:
    def __init__(self, module: Any) -> None:
        self.module = module
        self.limits = module.Limits()
        self.connections: set[Any] = set()
        self.closing = False
        self.answer = module.Response(200, b'{"status":"ok"}', "application/json", [("x-amzn-RequestId", "r")])

    async def handler(self, request: Any) -> Any:
        return self.answer

    def error(self, status: int, code: str, message: str) -> Any:
        return self.module.Response(status, message.encode())

    def track(self, task: Any) -> None:
        pass


async def micro(paths: dict[str, str], rounds: int, n: int = 20_000) -> dict[tuple[str, str], float]:
    """CPU microseconds per request of each HttpConnection, best of ``rounds``."""
    modules = {v: sys.modules[load_connection(path).__module__] for v, path in paths.items()}
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for variant, module in modules.items():
            for endpoint, request in REQUESTS.items():
                conn = module.HttpConnection(_Owner(module))
                conn.connection_made(_NullTransport())
                t0 = time.process_time()
                for _ in range(n):
                    conn.data_received(request)
                    await asyncio.sleep(0)  # the handler's task runs and answers
                us = (time.process_time() - t0) / n * 1e6
                best[(variant, endpoint)] = min(best.get((variant, endpoint), us), us)
    return best


def start_server(path: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", path], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit(f"the server with {path} did not start")
    return proc, int(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=False, default=None, help="file with the HttpConnection to compare")
    ap.add_argument("--after", default="current", help="file with the other HttpConnection (default: the tree's)")
    ap.add_argument("-c", "--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--micro-rounds", type=int, default=5)
    ap.add_argument("--micro-only", action="store_true")
    ap.add_argument("--serve", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        try:
            import uvloop

            uvloop.run(serve(args.serve))
        except ImportError:
            asyncio.run(serve(args.serve))
        return 0
    variants = {"before": args.before, "after": args.after} if args.before else {"after": args.after}
    results: dict[tuple[str, str], list[float]] = {(v, e): [] for v in variants for e in REQUESTS}
    costs: dict[tuple[str, str], list[float]] = {(v, e): [] for v in variants for e in REQUESTS}
    for run in range(0 if args.micro_only else args.runs):
        for variant, path in variants.items():
            proc, port = start_server(path)
            try:
                for endpoint in REQUESTS:
                    rate, cost = measure(proc.pid, port, endpoint, args.connections, args.seconds, args.warmup)
                    results[(variant, endpoint)].append(rate)
                    costs[(variant, endpoint)].append(cost)
                    print(f"run {run + 1} {variant:6} {endpoint:20} {rate:9,.0f} req/s  server CPU {cost:6.1f} us/req",
                          flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    for v, path in variants.items():
        print(f"{v}: {path}")
    if not args.micro_only:
        report(results, costs, variants, args)
    if args.micro_rounds:
        try:
            import uvloop

            best = uvloop.run(micro(variants, args.micro_rounds))
        except ImportError:
            best = asyncio.run(micro(variants, args.micro_rounds))
        print(f"\nthe connection alone, CPU per request (best of {args.micro_rounds} rounds of 20,000):")
        for endpoint in REQUESTS:
            line = "  ".join(f"{v} {best[(v, endpoint)]:6.2f} us/req" for v in variants)
            if "before" in variants:
                line += f"  change {100 * (best[('after', endpoint)] / best[('before', endpoint)] - 1):+.1f}%"
            print(f"  {endpoint:20} {line}")
    return 0


def report(results: dict[tuple[str, str], list[float]], costs: dict[tuple[str, str], list[float]],
           variants: dict[str, str], args: argparse.Namespace) -> None:
    print(f"\nmedian of {args.runs} runs, {args.connections} connections, {args.seconds:g} s each:")
    for endpoint in REQUESTS:
        rates = {v: statistics.median(results[(v, endpoint)]) for v in variants}
        us = {v: statistics.median(costs[(v, endpoint)]) for v in variants}
        line = "  ".join(f"{v} {rates[v]:8,.0f} req/s {us[v]:6.1f} us/req" for v in variants)
        if "before" in rates:
            line += (f"  change: req/s {100 * (rates['after'] / rates['before'] - 1):+.1f}%,"
                     f" CPU/req {100 * (us['after'] / us['before'] - 1):+.1f}%")
        print(f"  {endpoint:20} {line}")


if __name__ == "__main__":
    sys.exit(main())
