"""The console over several workers: every answer covers the executions of all of them.

``express serve --workers 2 --no-kafka`` (one port, SO_REUSEPORT): executions run on both workers,
and a console request on any connection lists all of them, shows the detail of one the other
worker ran, sums the recent counts; a stopped worker is named in the answer instead of hanging it.
In-process servers (two or three "workers" of one route folder, one of them a socket that never
answers) check the merge itself: the limit applied after merging, search across workers, merged
percentiles, a peer that accepts and never answers.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from consolesupport import ConsoleServer

from express.console import app as console_app
from express.console.peers import PEER_TIMEOUT_S, durations_to_send, merged_percentiles
from express.console.ring import PERCENTILES, nearest_rank
from express.http.routing import ENV_ROUTE_DIR, ENV_WORKER_COUNT, ENV_WORKER_INDEX, NameRouter, socket_path
from tests.http.httpsupport import TwoWorkers

pytestmark = pytest.mark.timeout(240)

ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:"
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"echo.$": "$"}, "End": True}}}
API = "/console/api/"


def get(port: int, path: str, timeout: float = 30.0,
        conn: http.client.HTTPConnection | None = None) -> tuple[int, Any]:
    """``GET path`` on a fresh connection (so on either worker), or on ``conn``."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        resp = c.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        if conn is None:
            c.close()


def owned_by(worker: int, machine: str, count: int = 2, n: int = 6) -> list[str]:
    """``n`` execution names whose owner (express.http.routing) is ``worker``: they run there."""
    router = NameRouter(0, count, tempfile.gettempdir())
    names: list[str] = []
    i = 0
    while len(names) < n:
        name = f"w{worker}-{i}"
        if router.owner(ARN + machine, name) == worker:
            names.append(name)
        i += 1
    return names


# ---------------------------------------------------------------------- express serve --workers 2
@pytest.fixture(name="workers", scope="module")
def workers_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoWorkers]:
    with TwoWorkers.serving(tmp_path_factory.mktemp("console-workers"), {"echo": PASS}) as server:
        yield server


@pytest.fixture(name="ran", scope="module")
def ran_fixture(workers: TwoWorkers) -> dict[str, int]:
    """Executions of ``echo`` run on both workers: name -> the worker that owns (and runs) it."""
    ran: dict[str, int] = {}
    for worker in (0, 1):
        for name in owned_by(worker, "echo"):
            answer = workers.client().start_sync_execution(stateMachineArn=ARN + "echo", name=name,
                                                           input=json.dumps({"n": name}))
            assert answer["status"] == "SUCCEEDED", answer
            ran[name] = worker
    for _ in range(6):  # unnamed ones too: they run where their (fresh) connection lands
        assert workers.client().start_sync_execution(stateMachineArn=ARN + "echo", input="{}")["status"] == \
            "SUCCEEDED"
    return ran


def port_of(workers: TwoWorkers) -> int:
    return int(workers.url.rsplit(":", 1)[1])


def test_every_connection_lists_the_executions_of_both_workers(workers: TwoWorkers, ran: dict[str, int]) -> None:
    port = port_of(workers)
    served_by: set[int] = set()
    for _ in range(12):
        status, body = get(port, API + "machines/echo/executions")
        assert status == 200, body
        assert body["workers"]["answered"] == 2 and body["workers"]["of"] == 2, body["workers"]
        served_by.add(body["workers"]["by"])
        listed = {e["name"]: e for e in body["executions"]}
        assert len(body["executions"]) == len(ran) + 6
        for name, worker in ran.items():
            assert listed[name]["worker"] == worker, listed[name]
            assert listed[name]["id"] % 2 == worker  # the id names the worker that keeps it
        stops = [e["stop_time"] for e in body["executions"]]
        assert stops == sorted(stops, reverse=True)  # newest first, over both workers
        assert len({e["id"] for e in body["executions"]}) == len(body["executions"])
    assert {e["worker"] for e in body["executions"]} == {0, 1}
    # with two workers and 12 fresh connections, both answered some (else the test proves little)
    assert served_by == {0, 1}


def test_recent_counts_and_stats_are_summed(workers: TwoWorkers, ran: dict[str, int]) -> None:
    port = port_of(workers)
    for _ in range(4):
        status, body = get(port, API + "machines")
        assert status == 200 and body["workers"]["answered"] == 2
        echo = next(m for m in body["machines"] if m["name"] == "echo")
        assert echo["recent"] == {"succeeded": len(ran) + 6, "failed": 0}
        status, stats = get(port, API + "stats")
        assert status == 200 and stats["workers"]["answered"] == 2
        assert stats["machines"]["echo"]["observed"]["observed"] == len(ran) + 6
        if stats.get("enabled"):  # the metrics of both workers, from their multi-process files
            assert stats["machines"]["echo"]["executions"] == len(ran) + 6


def test_the_detail_of_an_execution_the_other_worker_ran(workers: TwoWorkers, ran: dict[str, int]) -> None:
    port = port_of(workers)
    checked: set[int] = set()
    for _ in range(40):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            status, body = get(port, API + "machines/echo/executions", conn=conn)
            here = body["workers"]["by"]
            if here in checked:
                continue
            other = next(e for e in body["executions"] if e["worker"] != here and e["name"] in ran)
            status, detail = get(port, API + f"machines/echo/executions/{other['id']}", conn=conn)  # same worker
        finally:
            conn.close()
        assert status == 200, detail
        assert detail["name"] == other["name"] and detail["worker"] == ran[other["name"]] != here
        assert detail["id"] == other["id"] and detail["status"] == "SUCCEEDED" and detail["path"] == ["P"]
        checked.add(here)
        if checked == {0, 1}:
            break
    assert checked == {0, 1}
    status, body = get(port, API + "machines/echo/executions/999999")
    assert status == 404


def test_search_covers_both_workers(workers: TwoWorkers, ran: dict[str, int]) -> None:
    status, body = get(port_of(workers), API + "machines/echo/executions?search=W1-")
    assert status == 200
    assert sorted(e["name"] for e in body["executions"]) == sorted(n for n, w in ran.items() if w == 1)


def test_the_peer_routes_are_not_served_on_the_public_port(workers: TwoWorkers, ran: dict[str, int]) -> None:
    for path in ("/console/peer/counts", "/console/peer/machines/echo/executions", "/console/peer/stats"):
        for _ in range(4):
            status, body = get(port_of(workers), path)
            assert status == 404, body


def _pid_of(workers: TwoWorkers, worker: int) -> int:
    log = workers.root / f"serve-{workers.starts}.log"
    found = re.findall(rf"worker {worker} (?:re)?started[^\n]*pid (\d+)", log.read_text())
    assert found, log.read_text()[-3000:]
    return int(found[-1])


def test_a_stopped_worker_is_reported_not_waited_for(workers: TwoWorkers, ran: dict[str, int]) -> None:
    """Runs last in this module: worker 1 is stopped (SIGSTOP: its sockets accept, nothing answers)."""
    port = port_of(workers)
    pid = _pid_of(workers, 1)
    # A keep-alive connection that landed on worker 0, chosen while both answer: a new connection
    # could land on the stopped worker and wait for nothing.
    for _ in range(40):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PEER_TIMEOUT_S + 8)
        status, body = get(port, API + "machines/echo/executions", conn=conn)
        if status == 200 and body["workers"]["by"] == 0:
            break
        conn.close()
    else:
        raise AssertionError("no connection reached worker 0")
    os.kill(pid, signal.SIGSTOP)
    try:
        status, body = get(port, API + "machines/echo/executions", conn=conn)
        assert status == 200, body
        assert body["workers"] == {"answered": 1, "of": 2, "unanswered": [1], "by": 0}
        assert {e["worker"] for e in body["executions"]} == {0}
        assert {n for n, w in ran.items() if w == 0} <= {e["name"] for e in body["executions"]}
        assert any(w == 1 for w in ran.values())  # worker 1 ran some: they are missing, not waited for
        status, machines = get(port, API + "machines", conn=conn)
        assert status == 200 and machines["workers"]["unanswered"] == [1]
        status, stats = get(port, API + "stats", conn=conn)
        assert status == 200 and stats["workers"]["unanswered"] == [1]
        status, detail = get(port, API + "machines/echo/executions/1", conn=conn)  # an id of worker 1: odd
        assert status == 404 and "worker 1" in detail["error"], detail
    finally:
        os.kill(pid, signal.SIGCONT)
        conn.close()
    # once it runs again, it answers again
    for _ in range(4):
        status, body = get(port, API + "machines/echo/executions")
        assert status == 200 and body["workers"]["answered"] == 2


# ---------------------------------------------------------------------- in-process workers
class Silent:
    """A worker's private socket that accepts connections and never answers (a hung worker)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture(name="pair")
def pair_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ConsoleServer, ConsoleServer, Silent]]:
    """Workers 0 and 1 of 3 (in this process, each its own server, ring and port) and worker 2,
    which never answers."""
    directory = tempfile.mkdtemp(prefix="cw-", dir="/tmp")  # short: a socket path is at most 107 bytes
    monkeypatch.setenv(ENV_ROUTE_DIR, directory)
    monkeypatch.setenv(ENV_WORKER_COUNT, "3")
    servers = []
    silent = Silent(socket_path(directory, 2))
    try:
        for index in (0, 1):
            monkeypatch.setenv(ENV_WORKER_INDEX, str(index))
            servers.append(ConsoleServer(ring_size=50, failed_size=50).start())
        yield servers[0], servers[1], silent
    finally:
        for s in servers:
            s.stop()
        silent.close()
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_in_process_merge_limit_search_and_a_hung_peer(pair: tuple[ConsoleServer, ConsoleServer, Silent],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, _ = pair
    for i in range(6):
        (a if i % 2 == 0 else b).execute("simple", {}, name=f"run-{i}")
    b.execute("simple", {}, name="needle-b")
    a.execute("simple", {}, name="needle-a")
    status, body = a.get_json(API + "machines/simple/executions")
    assert status == 200
    # worker 2 accepts and never answers: reported, the answer comes anyway
    assert body["workers"] == {"answered": 2, "of": 3, "unanswered": [2], "by": 0}
    assert [e["name"] for e in body["executions"]] == ["needle-a", "needle-b"] + [f"run-{i}" for i in range(5, -1, -1)]
    assert [e["worker"] for e in body["executions"]] == [0, 1, 1, 0, 1, 0, 1, 0]
    assert all(e["id"] % 3 == e["worker"] for e in body["executions"])
    # the limit applies to the merged list: the newest of all workers
    monkeypatch.setattr(console_app, "MAX_EXECUTIONS_LISTED", 3)
    status, body = b.get_json(API + "machines/simple/executions")
    assert [e["name"] for e in body["executions"]] == ["needle-a", "needle-b", "run-5"]
    status, body = b.get_json(API + "machines/simple/executions?search=NEEDLE")
    assert sorted(e["name"] for e in body["executions"]) == ["needle-a", "needle-b"]
    # a detail from the other worker, by the id the console handed out
    needle_a = next(e for e in body["executions"] if e["name"] == "needle-a")
    status, detail = b.get_json(API + f"machines/simple/executions/{needle_a['id']}")
    assert status == 200 and detail["name"] == "needle-a" and detail["worker"] == 0
    # an id of the hung worker: 404 naming it, not a hang and not a 5xx
    status, detail = b.get_json(API + "machines/simple/executions/5")  # 5 % 3 == 2
    assert status == 404 and "worker 2" in detail["error"]
    status, machines = a.get_json(API + "machines")
    simple = next(m for m in machines["machines"] if m["name"] == "simple")
    assert simple["recent"] == {"succeeded": 8, "failed": 0} and machines["workers"]["unanswered"] == [2]
    status, stats = a.get_json(API + "stats")
    assert status == 200 and stats["machines"]["simple"]["observed"]["observed"] == 8
    # the console's own start answers the id it lists
    status, _, raw = a.request("POST", API + "machines/simple/executions", json.dumps({"name": "started"}).encode())
    started = json.loads(raw)
    assert status == 200 and started["id"] % 3 == 0
    status, detail = b.get_json(API + f"machines/simple/executions/{started['id']}")
    assert status == 200 and detail["name"] == "started"


def test_a_single_worker_asks_no_one() -> None:
    with_one = ConsoleServer().start()
    try:
        with_one.execute("simple", {}, name="alone")
        status, body = with_one.get_json(API + "machines/simple/executions")
        assert status == 200 and "workers" not in body and body["executions"][0]["id"] == 1
        assert "worker" not in body["executions"][0]
        assert with_one.server is not None and with_one.server.router is None
    finally:
        with_one.stop()


def test_merged_percentiles_are_those_of_the_union() -> None:
    a = [0.001 * i for i in range(1, 401)]
    b = [0.002 * i for i in range(1, 301)]
    union = sorted(a + b)
    whole = merged_percentiles([{"n": len(a), "values": a}, {"n": len(b), "values": b}], PERCENTILES)
    assert whole["observed"] == 700
    for q in PERCENTILES:
        assert whole[f"p{round(q * 100)}_s"] == nearest_rank(union, q)
    # thinned: many machines, fewer values each; the percentiles stay close to the exact ones
    sent = durations_to_send({f"m{i}": sorted(b) for i in range(2000)})
    assert len(sent["m0"]["values"]) < len(b) and sent["m0"]["n"] == len(b)
    thinned = merged_percentiles([{"n": len(a), "values": a}, sent["m0"]], PERCENTILES)
    assert thinned["observed"] == 700
    for q in PERCENTILES:
        exact = nearest_rank(union, q)
        assert exact is not None and abs(thinned[f"p{round(q * 100)}_s"] - exact) <= 0.05 * exact + 0.01


def test_peer_questions_are_bounded_by_the_timeout() -> None:
    """A hung peer costs one timeout, not more, and is named (Peers on its own, no server)."""
    from express.console.peers import Peers

    directory = tempfile.mkdtemp(prefix="cw-", dir="/tmp")
    silent = Silent(socket_path(directory, 1))
    try:
        peers = Peers(0, 3, directory, timeout_s=0.2)

        async def ask() -> tuple[list[Any], list[int]]:
            return await peers.ask_all("/console/peer/counts")

        answers, unanswered = asyncio.run(ask())
        assert answers == [] and unanswered == [1, 2]  # 1 hangs, 2 has no socket at all
        assert peers.report(unanswered) == {"answered": 1, "of": 3, "unanswered": [1, 2], "by": 0}
    finally:
        silent.close()
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)
