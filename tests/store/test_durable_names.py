"""Exactly-once execution names kept in the state store: a finished name is answered from the store after
every worker is killed and the server restarts (SQLite, the default); two servers sharing one Redis run a
name once under 50 concurrent duplicates; an owner paused past its lease cannot write its late answer.

Each execution runs a Task function that appends the server's id to a file (the side effect counted)."""
from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import signal
import subprocess
import textwrap
import threading
import time
from typing import Any

from tests.store.storesupport import Server

ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:counted"
MACHINE = {"StartAt": "Count", "States": {"Count": {"Type": "Task", "Resource": "count", "End": True}}}
FUNCTION = textwrap.dedent('''
    import asyncio, os

    async def count(event):
        with open(os.environ["SIDE_EFFECTS"], "a") as f:
            f.write(os.environ["SERVER_ID"] + "\\n")
        await asyncio.sleep(event.get("sleep", 0.2))
        return {"server": os.environ["SERVER_ID"], "input": event}
''')


def host(tmp: pathlib.Path, server_id: str, url: str, workers: int = 1, **env: str) -> Server:
    root = tmp / server_id
    (root / "machines").mkdir(parents=True)
    (root / "machines" / "counted.asl.json").write_text(json.dumps(MACHINE))
    (root / "express.toml").write_text('[functions]\ncount = "sidefx:count"\n')
    (tmp / "sidefx.py").write_text(FUNCTION)
    return Server(root, url, workers, env={"PYTHONPATH": f"{tmp}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                                          "SIDE_EFFECTS": str(tmp / "side-effects.txt"), "SERVER_ID": server_id,
                                          **env})


def effects(tmp: pathlib.Path) -> list[str]:
    path = tmp / "side-effects.txt"
    return path.read_text().split() if path.exists() else []


def start_sync(server: Server, name: str, sleep: float = 0.2) -> dict[str, Any]:
    answer = server.client().start_sync_execution(stateMachineArn=ARN, name=name, input=json.dumps({"sleep": sleep}))
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_a_finished_name_is_answered_from_the_store_after_every_worker_is_killed(tmp_path: pathlib.Path) -> None:
    server = host(tmp_path, "a", "", workers=2)  # the default store: SQLite in the config folder
    server.start()
    try:
        first = start_sync(server, "once")
        assert first["status"] == "SUCCEEDED" and effects(tmp_path) == ["a"]
        started = server.client().start_execution(stateMachineArn=ARN, name="async-once", input='{"sleep": 0}')
        deadline = time.monotonic() + 10
        while effects(tmp_path) != ["a", "a"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # its answer written
        server.kill()
        server.start()
        for _ in range(5):  # fresh clients, either worker
            assert start_sync(server, "once") == first
            again = server.client().start_execution(stateMachineArn=ARN, name="async-once", input='{"sleep": 0}')
            assert again["executionArn"] == started["executionArn"]
        assert effects(tmp_path) == ["a", "a"]  # nothing ran again
    finally:
        server.stop()


def test_two_servers_sharing_redis_run_50_concurrent_duplicates_once(tmp_path: pathlib.Path, redis_url: str) -> None:
    a, b = host(tmp_path, "a", redis_url), host(tmp_path, "b", redis_url)
    a.start()
    b.start()
    try:
        clients = [s.client() for s in (a, b)]
        barrier = threading.Barrier(50)

        def duplicate(i: int) -> dict[str, Any]:
            barrier.wait()
            answer = clients[i % 2].start_sync_execution(stateMachineArn=ARN, name="shared", input='{"sleep": 0.5}')
            return {k: v for k, v in answer.items() if k != "ResponseMetadata"}

        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(duplicate, range(50)))
        assert len(effects(tmp_path)) == 1  # one run, on one of the two servers
        assert all(x == answers[0] for x in answers) and answers[0]["status"] == "SUCCEEDED"
        assert json.loads(answers[0]["output"])["server"] == effects(tmp_path)[0]
    finally:
        a.stop()
        b.stop()


def test_an_owner_paused_past_its_lease_cannot_write_its_late_answer(tmp_path: pathlib.Path, redis_url: str) -> None:
    # a short execution cap makes a short lease: the cap (2 s) plus the margin (5 s)
    a = host(tmp_path, "a", redis_url, EXPRESS_ENGINE_MAX_DURATION_S="2")
    b = host(tmp_path, "b", redis_url, EXPRESS_ENGINE_MAX_DURATION_S="2")
    a.start()
    b.start()
    try:
        assert a.proc is not None
        pool = concurrent.futures.ThreadPoolExecutor(1)
        late = pool.submit(start_sync, a, "paused", 1.0)
        deadline = time.monotonic() + 10
        while effects(tmp_path) != ["a"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        workers = _processes_of(a)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(7.5)  # past A's lease
            successor = start_sync(b, "paused", 1.0)
            assert effects(tmp_path) == ["a", "b"] and json.loads(successor["output"])["server"] == "b"
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        answered_late = late.result(30)
        pool.shutdown()
        assert answered_late == successor  # A's own result was not written: the name's answer is B's
        assert start_sync(a, "paused", 1.0) == successor == start_sync(b, "paused", 1.0)
        assert effects(tmp_path) == ["a", "b"]
    finally:
        a.stop()
        b.stop()


def _processes_of(server: Server) -> list[int]:
    """The pids of the server's processes (the supervisor, if any, and every worker)."""
    out = subprocess.run(["pgrep", "-f", "--", f"--config {server.root}( |$)"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]
