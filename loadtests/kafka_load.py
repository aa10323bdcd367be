#!/usr/bin/env python3
"""Kafka load generator for a running express deployment: end-to-end throughput and latency.

    python loadtests/kafka_load.py --bootstrap HOST:PORT --topic orders --events 100000 \\
        [--rate 20000 | (default) as fast as possible] [--input event.json] [--payload-bytes 1024] \\
        [--machine NAME] [--config DIR] [--report out.json] [--chart out.png]

It produces N keyed events to the source topic (bound to a state machine in the deployment's
config; ``--machine`` sets the ``express-machine`` header to pick another one), at ``--rate``
events/s or as fast as it can (the batch API, per partition), and reads the outcome topics
(``T.results``, ``T.failures``, ``T.dlq``) from where they ended before the run. Every event's key
is ``RUN-SEQ``; express copies the key to the outcome, so each outcome is matched to the moment
its event was produced: end-to-end latency = outcome read here - event handed to the producer,
on this one clock. Outcomes of other runs are ignored; redeliveries are counted as duplicates.

It prints progress every second, then a summary, writes a JSON report (``--report``) and a PNG
chart (``--chart``: outcomes/s over time with p50/p99 latency, and the latency percentiles).
It stops after all N outcomes arrived or after ``--timeout`` seconds. ``--config DIR`` takes the
Kafka security settings (SASL/TLS) and outcome suffixes from that folder's express.toml (and
EXPRESS_KAFKA_* variables), as the workers do. Run it on a machine near the brokers: the
generator itself uses about one core at 50-60k events/s.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import sys
import time
from typing import Any

import orjson

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from report import Progress, draw_chart, latency_summary, timeline, write_json  # noqa: E402

BENCH = ROOT.parent / "shared" / "bench" / "machines"
DEFAULT_INPUT = BENCH / "input.json"


def make_value(sample: Any, i: int, pad_to: int) -> bytes:
    doc = dict(sample) if isinstance(sample, dict) else {"value": sample}
    order = doc.get("order")
    if isinstance(order, dict):
        doc["order"] = {**order, "id": f"ord-{i:08d}"}
    else:
        doc["id"] = f"ev-{i:08d}"
    raw = orjson.dumps(doc)
    if pad_to and len(raw) < pad_to:
        doc["pad"] = "x" * max(0, pad_to - len(raw) - 9)
        raw = orjson.dumps(doc)
    return raw


def client_kwargs(args: argparse.Namespace) -> tuple[dict[str, Any], tuple[str, str, str]]:
    """Security options and outcome suffixes: from --config (as the workers read them) or defaults."""
    kw: dict[str, Any] = {"bootstrap_servers": args.bootstrap}
    suffixes = (".results", ".failures", ".dlq")
    if args.config:
        from express.serve.config import load_settings

        k = load_settings(args.config).kafka
        kw["bootstrap_servers"] = args.bootstrap or k.bootstrap
        kw["security_protocol"] = k.security_protocol
        if k.sasl_mechanism:
            kw.update(sasl_mechanism=k.sasl_mechanism, sasl_plain_username=k.sasl_username or None,
                      sasl_plain_password=k.sasl_password or None)
        if k.ssl_cafile or k.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kw["ssl_context"] = create_ssl_context(cafile=k.ssl_cafile or None)
        suffixes = (k.results_suffix, k.failures_suffix, k.dlq_suffix)
    if not kw["bootstrap_servers"]:
        raise SystemExit("--bootstrap is required (or a --config whose [kafka] bootstrap is set)")
    return kw, suffixes


class Run:
    def __init__(self, n: int) -> None:
        self.n = n
        self.sent_at: list[float] = [0.0] * n
        self.sent = 0
        self.acked = 0
        self.seen = bytearray(n)
        self.done_at: list[float] = []
        self.latencies: list[float] = []
        self.kinds = {"results": 0, "failures": 0, "dlq": 0}
        self.duplicates = 0
        self.send_errors = 0
        self.first_error: str | None = None


async def produce(run: Run, producer: Any, topic: str, partitions: int, sample: Any, prefix: str, rate: float,
                  pad_to: int, headers: list[tuple[str, bytes]] | None, deadline: float) -> None:
    from aiokafka.partitioner import murmur2

    loop = asyncio.get_running_loop()
    pending: set[asyncio.Future[Any]] = set()
    hdrs = headers or []

    def acked(fut: asyncio.Future[Any], count: int) -> None:
        pending.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            run.send_errors += count
            if run.first_error is None:
                run.first_error = repr(fut.exception()) if not fut.cancelled() else "cancelled"
        else:
            run.acked += count

    async def ship(builder: Any, p: int, count: int) -> None:
        fut = await producer.send_batch(builder, topic, partition=p)
        pending.add(fut)
        fut.add_done_callback(lambda f, c=count: acked(f, c))

    t0 = time.perf_counter()
    i = 0
    tick = 0.005
    while i < run.n and time.monotonic() < deadline:
        due = run.n if rate <= 0 else min(run.n, int((time.perf_counter() - t0) * rate) + 1)
        if due <= i:
            await asyncio.sleep(tick)
            continue
        batches: dict[int, tuple[Any, int]] = {}
        limit = min(due, i + 20_000)  # yield to the reader now and then
        while i < limit:
            key = f"{prefix}{i:09d}".encode()
            value = make_value(sample, i, pad_to)
            p = (murmur2(key) & 0x7FFFFFFF) % partitions
            entry = batches.get(p)
            if entry is None:
                entry = batches[p] = (producer.create_batch(), 0)
            builder, count = entry
            if builder.append(key=key, value=value, timestamp=None, headers=hdrs) is None:
                await ship(builder, p, count)
                builder, count = producer.create_batch(), 0
                builder.append(key=key, value=value, timestamp=None, headers=hdrs)
            batches[p] = (builder, count + 1)
            run.sent_at[i] = time.perf_counter()
            i += 1
            run.sent = i
        for p, (builder, count) in batches.items():
            if count:
                await ship(builder, p, count)
        if len(pending) > 256:  # bounded: wait for the broker before producing more
            await asyncio.wait(set(pending), return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(0)
    if pending:
        await asyncio.wait(set(pending), timeout=max(1.0, deadline - time.monotonic()))
    del loop


async def read(run: Run, consumer: Any, kinds: dict[str, str], prefix: bytes, deadline: float,
               progress: Progress, t_start: float) -> None:
    plen = len(prefix)
    total = 0
    while total < run.n and time.monotonic() < deadline:
        data = await consumer.getmany(timeout_ms=100, max_records=50_000)
        now = time.perf_counter()
        for tp, recs in data.items():
            kind = kinds[tp.topic]
            for r in recs:
                key = r.key
                if key is None or key[:plen] != prefix:
                    continue
                try:
                    i = int(key[plen:])
                except ValueError:
                    continue
                if not 0 <= i < run.n:
                    continue
                if run.seen[i]:
                    run.duplicates += 1
                    continue
                run.seen[i] = 1
                total += 1
                run.kinds[kind] += 1
                run.done_at.append(now)
                run.latencies.append(now - run.sent_at[i])
        elapsed = now - t_start
        progress.update(f"sent {run.sent:,}/{run.n:,} (acked {run.acked:,})  outcomes {total:,}/{run.n:,}  "
                        f"{total / elapsed if elapsed > 0 else 0:,.0f} events/s  {elapsed:.0f} s")


async def main_async(args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    kw, suffixes = client_kwargs(args)
    sample = json.loads(pathlib.Path(args.input).read_text()) if args.input else {"id": "ev-0", "n": 1}
    topic = args.topic
    outs = {topic + suffixes[0]: "results", topic + suffixes[1]: "failures", topic + suffixes[2]: "dlq"}
    run_id = os.urandom(4).hex()
    prefix = f"lt{run_id}-"
    run = Run(args.events)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, fetch_max_wait_ms=50, max_partition_fetch_bytes=4 << 20,
                                fetch_max_bytes=64 << 20, **kw)
    producer = AIOKafkaProducer(acks="all", enable_idempotence=False, max_batch_size=1 << 20,
                                max_request_size=4 << 20, linger_ms=5, **kw)
    await consumer.start()
    await producer.start()
    try:
        partitions = len(await asyncio.wait_for(producer.partitions_for(topic), 30))
        tps = []
        for t in outs:
            n = len(await asyncio.wait_for(producer.partitions_for(t), 30))
            tps += [TopicPartition(t, p) for p in range(n)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now, before anything of this run can arrive
            await consumer.position(tp)
        print(f"kafka_load: {args.events:,} events to {topic} ({partitions} partitions) on {kw['bootstrap_servers']}, "
              f"{'as fast as possible' if args.rate <= 0 else f'{args.rate:,.0f} events/s'}, "
              f"~{len(make_value(sample, 0, args.payload_bytes)):,} bytes each, run {run_id}", file=sys.stderr)
        headers = [("express-machine", args.machine.encode())] if args.machine else None
        progress = Progress()
        deadline = time.monotonic() + args.timeout
        t_start = time.perf_counter()
        reader = asyncio.create_task(read(run, consumer, outs, prefix.encode(), deadline, progress, t_start))
        try:
            await produce(run, producer, topic, partitions, sample, prefix, args.rate, args.payload_bytes, headers,
                          deadline)
            t_sent = time.perf_counter()
            await reader
        finally:
            if not reader.done():
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
        progress.update("", force=False)
        progress.done()
    finally:
        await producer.stop()
        await consumer.stop()
    received = len(run.done_at)
    last = max(run.done_at) if run.done_at else t_start
    first = min(run.done_at) if run.done_at else t_start
    total_s = last - t_start
    steady_s = last - first
    lat = latency_summary(run.latencies)
    report: dict[str, Any] = {
        "tool": "kafka_load", "run": run_id, "bootstrap": kw["bootstrap_servers"], "topic": topic,
        "machine_header": args.machine, "events": args.events, "rate_target": args.rate or None,
        "payload_bytes": len(make_value(sample, 0, args.payload_bytes)), "partitions": partitions,
        "sent": run.sent, "acked": run.acked, "send_errors": run.send_errors, "first_error": run.first_error,
        "produce_s": round(t_sent - t_start, 3), "outcomes": received, "missing": args.events - received,
        "duplicates": run.duplicates, "by_topic": run.kinds,
        "throughput_eps": round(received / total_s, 1) if total_s > 0 else None,
        "steady_throughput_eps": round(received / steady_s, 1) if steady_s > 0 else None,
        "duration_s": round(total_s, 3), "latency_ms": lat,
        "timeline": timeline(run.done_at, run.latencies, t_start),
        "produced_timeline": timeline(run.sent_at[:run.sent], None, t_start),
    }
    print(f"events {args.events:,}: outcomes {received:,} (results {run.kinds['results']:,}, failures "
          f"{run.kinds['failures']:,}, dlq {run.kinds['dlq']:,}), missing {args.events - received:,}, "
          f"duplicates {run.duplicates:,}")
    print(f"throughput: {report['throughput_eps'] or 0:,.0f} events/s end to end (first event produced -> last "
          f"outcome, {total_s:.2f} s); {report['steady_throughput_eps'] or 0:,.0f} events/s first -> last outcome")
    print("latency ms: " + "  ".join(f"{k} {v:,.2f}" for k, v in lat.items() if v is not None))
    if args.report:
        write_json(args.report, report)
        print(f"report: {args.report}")
    if args.chart:
        draw_chart(args.chart, f"kafka_load: {topic}, {args.events:,} events, {report['throughput_eps'] or 0:,.0f} "
                   f"events/s, p99 {lat['p99'] or 0:,.1f} ms", report["timeline"], lat, "outcomes/s",
                   sent=("produced/s", report["produced_timeline"]))
        print(f"chart: {args.chart}")
    return 0 if received == args.events and not run.send_errors else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=None, help="Kafka HOST:PORT of the deployment")
    ap.add_argument("--topic", required=True, help="source topic bound to a machine in the deployment's config")
    ap.add_argument("-n", "--events", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=0.0, help="events/s to produce (default 0: as fast as possible)")
    ap.add_argument("--input", default=str(DEFAULT_INPUT) if DEFAULT_INPUT.exists() else None,
                    help="sample event JSON file (ids are varied per event)")
    ap.add_argument("--payload-bytes", type=int, default=0, help="pad each event to about this many bytes")
    ap.add_argument("--machine", default=None, help="set the express-machine header (run this machine instead)")
    ap.add_argument("--config", default=None, help="express config folder: Kafka security settings, topic suffixes")
    ap.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    ap.add_argument("--report", default="kafka_load.json", help="JSON report path ('' for none)")
    ap.add_argument("--chart", default="kafka_load.png", help="PNG chart path ('' for none)")
    args = ap.parse_args(argv)
    if args.events < 1:
        ap.error("--events must be at least 1")
    try:
        import uvloop

        return int(uvloop.run(main_async(args)))
    except ImportError:
        return int(asyncio.run(main_async(args)))


if __name__ == "__main__":
    sys.exit(main())
