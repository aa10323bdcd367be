"""``express serve --workers 2``: the supervisor starts the embedded broker and two worker processes
that share the Kafka partitions and one HTTP port; it restarts a killed worker and drains on SIGTERM.

One supervisor runs for the whole module (starting one costs a few seconds); the tests run in
file order and the last one stops it with SIGTERM."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

pytest.importorskip("aiokafka")

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402

from express.kafka.demo import produce  # noqa: E402

pytestmark = pytest.mark.timeout(60)

PARTITIONS = 4  # what tansu gives an auto-created topic
CHAIN = {"StartAt": "P1", "States": {
    "P1": {"Type": "Pass", "Parameters": {"id.$": "$.id", "n.$": "$.n"}, "ResultPath": "$.p1", "Next": "Check"},
    "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 0, "Next": "P2"}],
              "Default": "Negative"},
    "P2": {"Type": "Pass", "Parameters": {"double.$": "States.MathAdd($.n, $.n)"}, "ResultPath": "$.p2",
           "End": True},
    "Negative": {"Type": "Fail", "Error": "Test.Negative", "Cause": "n is negative"}}}
KAFKA = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300, "commit_interval_ms": 100, "linger_ms": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(root: pathlib.Path, topic: str, *, http_port: int, group: str) -> pathlib.Path:
    (root / "machines").mkdir(parents=True, exist_ok=True)
    (root / "machines" / "chain.asl.json").write_text(json.dumps(CHAIN))
    lines = ["[kafka]", f'group_id = "{group}"'] + [f"{k} = {v}" for k, v in KAFKA.items()]
    lines += ["[http]", 'host = "127.0.0.1"', f"port = {http_port}", "drain_timeout_s = 5",
              "[workers]", 'http = "all"', "stop_timeout_s = 30",
              "[bindings]", f'"{topic}" = "chain"']
    (root / "express.toml").write_text("\n".join(lines) + "\n")
    return root


def serve(config: pathlib.Path, log: pathlib.Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "express", "serve", "--config", str(config), *args],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def wait_log(log: pathlib.Path, pattern: str, timeout_s: float = 20.0, count: int = 1) -> list[re.Match[str]]:
    deadline = time.monotonic() + timeout_s
    while True:
        text = log.read_text() if log.exists() else ""
        found = list(re.finditer(pattern, text))
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} x{count} not in the log after {timeout_s} s:\n{text[-3000:]}")
        time.sleep(0.05)


def events(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(start, start + n):
        value = b"not json" if i % 50 == 7 else orjson.dumps({"id": f"e{i}", "n": -i if i % 10 == 3 else i})
        out.append((f"k{i}".encode(), value))
    return out


def outcome_of(record: Any, kind: str) -> tuple[tuple[int, int], Any]:
    if kind == "dlq":
        h = dict(record.headers)
        return (int(h["express-source-partition"]), int(h["express-source-offset"])), \
            ("dlq", h["express-dlq-reason"].decode(), record.value)
    doc = orjson.loads(record.value)
    source = doc["source"]
    return (source["partition"], source["offset"]), \
        (doc["status"], orjson.dumps(doc.get("output")), doc.get("error"), doc.get("cause"), record.key)


async def read_outcomes(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> dict[Any, set[Any]]:
    """Every outcome of ``topic``'s events, by source (partition, offset), until ``expected`` sources have one."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        kinds = {topic + ".results": "result", topic + ".failures": "failure", topic + ".dlq": "dlq"}
        tps = [TopicPartition(t, p) for t in kinds for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: dict[Any, set[Any]] = {}
        deadline = time.monotonic() + timeout_s
        while len(out) < expected and time.monotonic() < deadline:
            for tp, recs in (await consumer.getmany(timeout_ms=200)).items():
                for r in recs:
                    source, outcome = outcome_of(r, kinds[tp.topic])
                    out.setdefault(source, set()).add(outcome)
        return out
    finally:
        await consumer.stop()


def http_post(port: int, target: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=orjson.dumps(body), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AWSStepFunctions.{target}",
        "Connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), orjson.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), orjson.loads(e.read())


def listeners(port: int) -> int:
    """LISTEN sockets on 127.0.0.1:port (from /proc/net/tcp)."""
    n = 0
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            n += 1
    return n


class Cluster:
    def __init__(self, proc: subprocess.Popen[bytes], log: pathlib.Path, bootstrap: str, port: int,
                 topic: str, root: pathlib.Path) -> None:
        self.proc, self.log, self.bootstrap, self.port, self.topic, self.root = proc, log, bootstrap, port, topic, root

    def worker_pid(self, index: int) -> int:
        found = re.findall(rf"worker {index} (?:started|restarted \(start #\d+\)): pid (\d+)", self.log.read_text())
        return int(found[-1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("supervisor")
    topic = f"sv-{os.urandom(4).hex()}"
    port = free_port()
    config = write_config(root / "config", topic, http_port=port, group=f"g-{topic}")
    log = root / "supervisor.log"
    # env overrides reach the supervisor (and through it the workers)
    proc = serve(config, log, "--workers", "2", env={"EXPRESS_WORKERS_BACKOFF_INITIAL_S": "0.2"})
    try:
        bootstrap = wait_log(log, r"started the embedded broker at (\S+) for all workers")[0].group(1)
        wait_log(log, r"worker \d: Kafka worker consuming", count=2)
        wait_log(log, r"worker \d: HTTP \(AWS JSON 1.0 StepFunctions API\)", count=2)
        yield Cluster(proc, log, bootstrap, port, topic, root)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_two_workers_process_every_event_as_one_worker_does(cluster: Cluster) -> None:
    n = 400
    batch = events(n)
    # reference: the same events through one worker (in-process serve) on its own topic, same broker
    ref_topic = cluster.topic + "-ref"
    ref_config = write_config(cluster.root / "ref", ref_topic, http_port=0, group=f"g-{ref_topic}")
    ref_log = cluster.root / "ref.log"
    ref = serve(ref_config, ref_log, "--workers", "1", "--no-http", "--bootstrap", cluster.bootstrap)
    try:
        wait_log(ref_log, r"Kafka worker consuming")
        assert "supervisor" not in ref_log.read_text()  # --workers 1 runs in-process
        await produce(cluster.bootstrap, cluster.topic, batch, PARTITIONS)
        await produce(cluster.bootstrap, ref_topic, batch, PARTITIONS)
        two = await read_outcomes(cluster.bootstrap, cluster.topic, n)
        one = await read_outcomes(cluster.bootstrap, ref_topic, n)
    finally:
        ref.send_signal(signal.SIGTERM)
        assert ref.wait(30) == 0
    assert len(one) == n, f"one worker: {n - len(one)} events without an outcome"
    assert len(two) == n, f"two workers: {n - len(two)} events without an outcome\n{cluster.log.read_text()[-3000:]}"
    assert set(two) == set(one)
    for source in one:  # duplicates (a redelivery around a rebalance) are allowed, different outcomes are not
        assert two[source] == one[source], source
    kinds = {next(iter(v))[0] for v in one.values()}
    assert kinds == {"SUCCEEDED", "FAILED", "dlq"}


async def test_both_workers_serve_the_one_http_port(cluster: Cluster) -> None:
    assert listeners(cluster.port) == 2  # one SO_REUSEPORT listener per worker
    prefixes = set()
    for _ in range(40):  # a new connection each time: the kernel spreads them over the listeners
        status, headers, body = http_post(cluster.port, "StartSyncExecution", {
            "stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:chain",
            "input": json.dumps({"id": "h", "n": 2})})
        assert status == 200 and body["status"] == "SUCCEEDED", body
        assert json.loads(body["output"])["p2"] == {"double": 4}
        prefixes.add(headers["x-amzn-RequestId"].rsplit("-", 1)[0])  # a random prefix per process
    assert len(prefixes) == 2, prefixes


def sync_started(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("express_executions_started_total") and 'machine="chain"' in line
               and 'mode="sync"' in line)


async def test_named_executions_stay_exactly_once_across_workers(cluster: Cluster) -> None:
    arn = "arn:aws:states:us-east-1:000000000000:stateMachine:chain"
    names = [f"once-{os.urandom(3).hex()}-{i}" for i in range(12)]
    await asyncio.sleep(1.5)  # let both workers flush what earlier tests ran (every second)
    before = sync_started(cluster.port)

    def call(name: str, n: int) -> tuple[int, Any]:
        status, _, body = http_post(cluster.port, "StartSyncExecution",
                                    {"stateMachineArn": arn, "name": name, "input": json.dumps({"id": name, "n": n})})
        return status, body

    # every name requested 8 times at once, each on a new connection: the kernel spreads them over
    # both workers, and each name must still run exactly once
    jobs = [(name, 3) for name in names for _ in range(8)]
    answers = await asyncio.gather(*(asyncio.to_thread(call, name, n) for name, n in jobs))
    by_name: dict[str, set[str]] = {}
    for (name, _), (status, body) in zip(jobs, answers, strict=True):
        assert status == 200 and body["status"] == "SUCCEEDED", body
        by_name.setdefault(name, set()).add(body["executionArn"])
    assert all(len(arns) == 1 for arns in by_name.values()), by_name
    deadline = time.monotonic() + 5
    while sync_started(cluster.port) - before < len(names) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # a second flush interval: any duplicate run would show up by now
    assert sync_started(cluster.port) - before == len(names)
    # the same name with another input is refused, wherever it lands
    for _ in range(6):
        status, body = await asyncio.to_thread(call, names[0], 4)
        assert status == 400 and body["__type"] == "ExecutionAlreadyExists", body


async def test_metrics_are_summed_over_the_workers(cluster: Cluster) -> None:
    def consumed() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("express_kafka_records_consumed_total") and cluster.topic + '"' in line)

    deadline = time.monotonic() + 10
    while consumed() < 400 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    # every scrape, whichever worker answers it, shows what both consumed
    assert [consumed() >= 400 for _ in range(6)] == [True] * 6


async def test_a_killed_worker_is_restarted(cluster: Cluster) -> None:
    victim = cluster.worker_pid(1)
    os.kill(victim, signal.SIGKILL)
    wait_log(cluster.log, r"worker 1 exited with status -9 \(killed by SIGKILL\) after [\d.]+ s: restarting in 0.2 s")
    wait_log(cluster.log, r"worker 1 restarted \(start #2\): pid \d+")
    assert cluster.worker_pid(1) != victim
    wait_log(cluster.log, r"worker 1: Kafka worker consuming", count=2)
    # and the group goes on: every new event still gets an outcome
    await produce(cluster.bootstrap, cluster.topic, events(200, start=400), PARTITIONS)
    out = await read_outcomes(cluster.bootstrap, cluster.topic, 600, timeout_s=40)
    assert len(out) == 600, f"{600 - len(out)} events without an outcome\n{cluster.log.read_text()[-3000:]}"
    assert cluster.proc.poll() is None


def test_sigterm_drains_every_worker_and_the_supervisor_exits_0(cluster: Cluster) -> None:
    pids = [cluster.worker_pid(0), cluster.worker_pid(1)]
    metrics_dir = re.findall(r"metrics aggregated in (\S+)", cluster.log.read_text())[0]
    assert os.path.isdir(metrics_dir)
    cluster.proc.send_signal(signal.SIGTERM)
    assert cluster.proc.wait(40) == 0
    text = cluster.log.read_text()
    assert "SIGTERM: stopping all workers" in text
    assert text.count(": stopping: draining in-flight executions") >= 2  # each worker drained
    assert "worker 0 exited with status 0" in text and "worker 1 exited with status 0" in text
    assert "express: supervisor: stopped" in text
    assert not os.path.exists(metrics_dir)
    for pid in pids:
        assert not pathlib.Path(f"/proc/{pid}").exists() or "zombie" in pathlib.Path(f"/proc/{pid}/status").read_text()


def test_a_crashing_worker_is_restarted_with_capped_exponential_backoff(tmp_path: pathlib.Path) -> None:
    with socket.socket() as busy:  # worker 0 cannot bind its HTTP port: it exits at once, every time
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (tmp_path / "express.toml").write_text(
            f"[http]\nport = {port}\n[workers]\nhttp = \"one\"\nbackoff_initial_s = 0.1\nbackoff_max_s = 0.4\n")
        log = tmp_path / "supervisor.log"
        proc = serve(tmp_path, log, "--workers", "2", "--no-kafka")
        try:
            wait_log(log, r"worker 0 exited with status 1 after [\d.]+ s: restarting in 0.4 s", count=2)
            delays = re.findall(r"worker 0 exited with status 1 after [\d.]+ s: restarting in ([\d.]+) s",
                                log.read_text())
            assert delays[:4] == ["0.1", "0.2", "0.4", "0.4"]
            assert "worker 1 exited" not in log.read_text()  # the healthy worker is left alone
            # workers.http = "one": only worker 0 serves HTTP
            assert f"HTTP on http://127.0.0.1:{port}/ served by worker 0" in log.read_text()
            w1 = re.findall(r"worker 1 started: pid (\d+)", log.read_text())[0]
            assert b"--no-http" in pathlib.Path(f"/proc/{w1}/cmdline").read_bytes().split(b"\0")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 1  # a worker was failing: the supervisor says so
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = log.read_text()
    assert "worker 1 exited with status 0" in text and "worker 0: last exit status 1" in text
