"""A real HttpServer on 127.0.0.1:0, run on its own event loop in a thread, for real clients.

The fixtures are imported by the test modules (``from httpsupport import server_fixture, ...``):
no conftest.py here, as a second ``conftest`` module would shadow tests/conftest.py for the
modules that import helpers from it.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import http.client
import json
import pathlib
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import pytest
from botocore.config import Config

from express.engine.machine import Engine
from express.http import HttpServer
from express.serve.config import EngineSettings, HttpSettings, Settings
from express.serve.registry import Registry
from tests.support import serve, stop

ACCOUNT = "000000000000"
REGION = "us-east-1"


def arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


class Counter:
    """A task function that counts its invocations (the side effect exactly-once is about)."""

    def __init__(self) -> None:
        self.calls = 0
        self.delay = 0.2

    async def __call__(self, event: Any) -> Any:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return {"calls": self.calls, "event": event}


PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"echo.$": "$"}, "End": True}}}
COUNTED = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "count", "End": True}}}
FAIL = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Custom.Failure", "Cause": "it failed"}}}
SLOW = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}}
SLEEPY = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}}


class ServerThread:
    def __init__(self, *, max_duration_s: float = 1.0, credentials: dict[str, str] | None = None,
                 max_names: int = 1000, retention_s: float = 3600.0, max_body_bytes: int = 1_048_576,
                 **server_kw: Any) -> None:
        self.settings = Settings(
            engine=EngineSettings(max_duration_s=max_duration_s),
            http=HttpSettings(host="127.0.0.1", port=0, max_names=max_names, name_retention_s=retention_s,
                              max_body_bytes=max_body_bytes))
        self.counter = Counter()
        self.max_duration_s = max_duration_s
        self.credentials = credentials
        self.server_kw = server_kw
        self.loop = asyncio.new_event_loop()
        self.server: HttpServer | None = None
        self.registry: Registry | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        # Built on the server's thread: compiled JSONata expressions must stay on their thread.
        self.registry = self.build_registry()
        self.server = HttpServer(self.settings, self.registry, host="127.0.0.1", port=0,
                                 credentials=self.credentials, **self.server_kw)
        self.loop.run_until_complete(self.server.start())
        self._ready.set()
        self.loop.run_forever()
        self.server = None
        self.registry = None
        gc.collect()

    def build_registry(self) -> Registry:
        engine = Engine(functions={"count": self.counter}, max_duration_s=self.max_duration_s)
        registry = Registry(engine)
        for name, definition in (("pass", PASS), ("counted", COUNTED), ("fail", FAIL), ("slow", SLOW),
                                 ("sleepy", SLEEPY)):
            registry.put(name, json.dumps(definition))
        return registry

    def start(self) -> ServerThread:
        # The caller's cyclic garbage (compiled JSONata among it) is freed here, on its own thread:
        # the server thread's last gc.collect() would otherwise free it on the wrong one.
        gc.collect()
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        return self

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop_async(self) -> Any:
        assert self.server is not None
        return asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        if self.server is not None:
            self.stop_async().result(60)
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()
        gc.collect()

    def client(self, **kw: Any) -> Any:
        return make_client(self.url, **kw)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def api(self, op: str, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AWSStepFunctions.{op}"}
        h.update(headers or {})
        status, _, data = self.request("POST", "/", body, h)
        return status, json.loads(data)


S = TypeVar("S", bound=ServerThread)


def make_client(url: str, access_key: str = "AKIDEXAMPLE", secret: str = "secret", **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    config.setdefault("inject_host_prefix", False)
    config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
    config.setdefault("read_timeout", 30)
    return boto3.client("stepfunctions", endpoint_url=url, region_name=REGION, aws_access_key_id=access_key,
                        aws_secret_access_key=secret, config=Config(**config))


def replace_settings(settings: Settings, **http: Any) -> Settings:
    return dataclasses.replace(settings, http=dataclasses.replace(settings.http, **http))


@contextlib.contextmanager
def running(server: S, *, task_delay_s: float | None = None) -> Iterator[S]:
    """``server`` started, and stopped on the way out; ``task_delay_s`` sets how long the counting
    task function takes."""
    if task_delay_s is not None:
        server.counter.delay = task_delay_s
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_all_workers(log: pathlib.Path, proc: subprocess.Popen[bytes], workers: int = 2,
                     timeout_s: float = 30.0) -> str:
    """The port of an ``express serve --workers N`` with EXPRESS_WORKERS_HTTP=all, once every worker serves."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = log.read_text()
        port = re.search(rf"HTTP on http://127\.0\.0\.1:(\d+)/ served by all {workers} workers", text)
        if port and len(re.findall(r"worker \d: HTTP .* on http://", text)) == workers:
            return port.group(1)
        assert proc.poll() is None and time.monotonic() < deadline, text[-3000:]
        time.sleep(0.05)


@pytest.fixture(name="server")
def server_fixture() -> Iterator[ServerThread]:
    with running(ServerThread()) as s:
        yield s


@pytest.fixture(name="sfn")
def sfn_fixture(server: ServerThread) -> Any:
    return server.client()


class TwoWorkers:
    """``express serve --workers 2 --no-kafka`` on a free port over the config folder ``root``, with
    the default machine store; start and stop as often as needed (e.g. to test a restart)."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0

    @classmethod
    @contextlib.contextmanager
    def serving(cls, root: pathlib.Path, machines: dict[str, Any]) -> Iterator[TwoWorkers]:
        """Two workers over ``root``, with ``machines`` (name -> definition) in its machines folder."""
        (root / "machines").mkdir()
        for name, definition in machines.items():
            (root / "machines" / f"{name}.asl.json").write_text(json.dumps(definition))
        server = cls(root)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def start(self) -> None:
        self.starts += 1
        log = self.root / f"serve-{self.starts}.log"
        self.proc = serve(self.root, log, "--no-kafka", "--http", "127.0.0.1:0", "--workers", "2",
                          env={"EXPRESS_WORKERS_HTTP": "all"})
        self.url = f"http://127.0.0.1:{wait_all_workers(log, self.proc)}"

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def every_client(self, check: Callable[[Any], None], clients: int = 20) -> None:
        """``check(fresh client)`` passes for each of ``clients`` fresh clients, each retried up to the
        documented propagation bound (a change made through one worker reaches the other)."""
        from botocore.exceptions import ClientError

        from express.store.follower import PROPAGATION_BOUND_S

        for _ in range(clients):
            sfn = self.client()
            deadline = time.monotonic() + PROPAGATION_BOUND_S
            while True:
                try:
                    check(sfn)
                    break
                except (AssertionError, ClientError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def client(self) -> Any:
        """A fresh client: its own connection pool, so its requests land on either worker."""
        return boto3.session.Session().client(
            "stepfunctions", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="x", config=Config(retries={"max_attempts": 0}, inject_host_prefix=False))
