"""``express serve --workers N``: N worker processes under one small supervisor.

One Python process uses one core; the supervisor runs ``N`` copies of ``express serve --worker``
(each a complete :class:`express.serve.service.Service` on its own uvloop) and owns what they share:

* **Kafka**: every worker is a member of the one consumer group (``kafka.group_id``), so the
  partitions are shared among them; when no bootstrap servers are configured the supervisor
  starts the single embedded broker and hands its address to every worker (``--bootstrap``).
  Several machines running the same config form one consumer group: that is how to scale out.
* **HTTP**: one port. ``workers.http = "one"`` (default): worker 0 serves it, so the
  exactly-once table of named executions lives in one process. ``"all"``: every worker listens
  on the port with ``SO_REUSEPORT`` and the kernel spreads connections over them; a name's
  table is then per process, so this mode refuses to start unless
  ``workers.http_names_per_process = true`` says that is accepted.
* **Metrics**: a fresh ``PROMETHEUS_MULTIPROC_DIR`` for the workers (set in their environment
  before they import prometheus_client), so a scrape of ``/metrics`` on any worker shows the
  sum over all of them; when a worker exits its live gauges are dropped
  (``mark_process_dead``); the folder is removed at stop.
* **Restarts**: a worker that exits while the supervisor is running is started again after a
  delay that doubles per crash (``workers.backoff_initial_s`` .. ``workers.backoff_max_s``)
  and is reset once a worker has been up ``workers.stable_after_s``.
* **Signals**: SIGTERM or SIGINT is forwarded (as SIGTERM) to every worker, which drains its
  in-flight executions, writes their outcomes and commits; the supervisor exits when all of
  them have (0 if every worker exited 0). A second signal (a second later) kills the workers at
  once. Workers run in their own session, so a terminal's Ctrl-C reaches the supervisor only. Workers
  die with the supervisor (``PR_SET_PDEATHSIG``): kill -9 of the supervisor is kill -9 of the
  whole service, never orphans.

Every task and process has an owner: each worker *slot* has one task (spawn, wait, back off,
spawn again) that owns the process and the task copying its stderr, prefixed with the worker
number, to ours. ``start`` and ``stop`` are idempotent.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from express.observe import logs
from express.serve.config import (
    CONFIG_FILE,
    ENV_PREFIX,
    ENV_ROUTE_DIR,
    ENV_WORKER_COUNT,
    ENV_WORKER_INDEX,
    ConfigError,
    Settings,
)


def log(message: str) -> None:
    from express.observe.logs import emit_message

    emit_message("supervisor", message)


def default_count(settings: Settings) -> int:
    """``workers.count``, where 0 means one worker per CPU core this process may run on."""
    if settings.workers.count:
        return settings.workers.count
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_http_mode(settings: Settings, count: int, http_enabled: bool, env: Any = None) -> None:
    """Refuse a configuration that would silently weaken exactly-once execution names: with HTTP
    on every worker, names are routed to their owner over Unix sockets, which must exist here."""
    env = os.environ if env is None else env
    w = settings.workers
    if count > 1 and http_enabled and w.http == "all" and not w.http_names_per_process \
            and not hasattr(socket, "AF_UNIX"):
        in_env = ENV_PREFIX + "WORKERS_HTTP" in env
        where = "environment" if in_env else os.path.join(settings.config_dir, CONFIG_FILE)
        raise ConfigError(where, ENV_PREFIX + "WORKERS_HTTP" if in_env else "workers.http",
                          f"'all' with {count} workers routes each execution name to one worker over Unix "
                          "sockets, which this platform lacks: use 'one' (worker 0 serves HTTP)")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _embedded_broker() -> Any:
    """The one embedded broker all workers share (it runs in a session of its own, see
    :mod:`express.kafka.broker`, so a terminal's Ctrl-C cannot stop it mid-drain)."""
    from express.kafka.broker import EmbeddedBroker

    return EmbeddedBroker()


class _Slot:
    """Worker number ``index``: the process currently running for it and the task that owns it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None
        self.starts = 0
        self.last_returncode: int | None = None

    @property
    def pid(self) -> int | None:
        p = self.process
        return p.pid if p is not None and p.returncode is None else None

    def signal(self, sig: int) -> None:
        p = self.process
        if p is not None and p.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(sig)


class Supervisor:
    """``await start()`` / ``await stop()`` (idempotent), or ``await run_until_signalled()`` -> exit code."""

    def __init__(self, settings: Settings, count: int, *, bootstrap: str | None = None,
                 http: tuple[str, int] | None = None, kafka: bool = True, http_enabled: bool | None = None,
                 python: str | None = None) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.settings = settings
        self.count = count
        self.bootstrap = bootstrap if bootstrap is not None else (settings.kafka.bootstrap or None)
        self.http_address = http if http is not None else (settings.http.host, settings.http.port)
        self.kafka_enabled = kafka
        self.http_enabled = settings.http.enabled if http_enabled is None else http_enabled
        self.python = python or sys.executable
        w = settings.workers
        self.backoff_initial_s = max(0.01, w.backoff_initial_s)
        self.backoff_max_s = max(self.backoff_initial_s, w.backoff_max_s)
        self.stable_after_s = w.stable_after_s
        self.stop_timeout_s = w.stop_timeout_s or settings.engine.max_duration_s + 30.0
        self.http_all = w.http == "all"
        # Several workers on one port keep exactly-once names by routing each name to its owner,
        # unless the operator chose per-process name tables.
        self.routes_names = self.http_all and self.count > 1 and not w.http_names_per_process
        self.broker: Any = None
        self.metrics_dir: str | None = None
        # private sockets through which workers hand named executions to the name's owner
        self.route_dir: str | None = None
        self.slots: list[_Slot] = []
        self.restarts = 0
        self._started = False
        self._stopped = False
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        async with self._lock:
            if self._started:
                return
            self._started = True
            check_http_mode(self.settings, self.count, self.http_enabled)
            try:
                await self._start()
            except BaseException:
                self._stopped = True
                await self._teardown()
                raise

    async def _start(self) -> None:
        settings = self.settings
        wants_kafka = self.kafka_enabled and (
            bool(settings.bindings) or "kafka" in (settings.metering.destination, settings.logging.destination))
        if wants_kafka and self.bootstrap is None:
            self.broker = _embedded_broker()
            self.bootstrap = await self.broker.start()
            log(f"no Kafka bootstrap servers configured: started the embedded broker at {self.bootstrap} "
                "for all workers")
        if self.http_enabled and self.http_address[1] == 0:
            from express.kafka.broker import free_port

            # every worker (and every restart of one) must bind the same port
            self.http_address = (self.http_address[0], free_port(self.http_address[0] or "127.0.0.1"))
        self.metrics_dir = tempfile.mkdtemp(prefix="express-metrics-")
        if self.routes_names:
            self.route_dir = tempfile.mkdtemp(prefix="express-routes-")  # mode 0700: only our user
        if self.http_enabled:
            host, port = self.http_address
            who = f"all {self.count} workers (SO_REUSEPORT)" if self.http_all else "worker 0"
            log(f"HTTP on http://{host}:{port}/ served by {who}")
            if self.routes_names:
                log("named executions are routed to the worker that owns the name (exactly-once across workers)")
            elif self.http_all and self.count > 1:
                log("WARNING: workers.http_names_per_process = true: an execution name is exactly-once only "
                    "within the worker that ran it")
        if self.kafka_enabled and settings.bindings:
            log(f"{self.count} Kafka consumer group member(s) in group {settings.kafka.group_id!r}")
        elif not self.http_all and self.count > 1:
            log(f"WARNING: no Kafka topics to consume and HTTP served by worker 0 only: workers 1..{self.count - 1} "
                "have nothing to do")
        log(f"starting {self.count} worker process(es); metrics aggregated in {self.metrics_dir}")
        loop = asyncio.get_running_loop()
        for i in range(self.count):
            slot = _Slot(i)
            self.slots.append(slot)
            slot.task = loop.create_task(self._run_slot(slot), name=f"express-worker-{i}")

    async def stop(self) -> int:
        """SIGTERM every worker, wait for all (SIGKILL after ``stop_timeout_s``), stop the broker.
        Returns 0 if every worker's last exit status was 0, else 1."""
        async with self._lock:
            if not self._started or self._stopped:
                return 0
            self._stopped = True
            return await self._teardown()

    async def _teardown(self) -> int:
        self._stopping.set()
        live = [s for s in self.slots if s.pid is not None]
        if live:
            log(f"stopping: SIGTERM to {len(live)} worker(s) ({', '.join(str(s.pid) for s in live)}); "
                "they drain in-flight executions")
        for s in self.slots:
            s.signal(signal.SIGTERM)
        tasks = [s.task for s in self.slots if s.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.stop_timeout_s)
            if pending:
                log(f"stopping: {len(pending)} worker(s) still running after {self.stop_timeout_s:g} s: SIGKILL")
                self.kill()
                await asyncio.wait(pending, timeout=10.0)
        if self.broker is not None:
            await self.broker.stop()
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        if self.route_dir is not None:
            shutil.rmtree(self.route_dir, ignore_errors=True)
        failed = [s for s in self.slots if s.last_returncode not in (0, None)]
        for s in failed:
            log(f"worker {s.index}: last exit status {_describe(s.last_returncode)}")
        log("stopped")
        return 1 if failed else 0

    def kill(self) -> None:
        for s in self.slots:
            s.signal(signal.SIGKILL)

    async def run_until_signalled(self) -> int:
        loop = asyncio.get_running_loop()
        requested = asyncio.Event()
        first: float | None = None

        def on_signal(sig: int) -> None:
            nonlocal first
            if first is None:
                first = time.monotonic()
                log(f"{signal.Signals(sig).name}: stopping all workers")
                requested.set()
            elif time.monotonic() - first > 1.0:  # not the same signal delivered twice (process group + pid)
                log(f"{signal.Signals(sig).name} again: killing all workers")
                self.kill()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await self.start()
            await requested.wait()
        finally:
            rc = await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return rc

    # ------------------------------------------------------------------ workers
    def command(self, slot: _Slot) -> list[str]:
        cmd = [self.python, "-m", "express", "serve", "--worker", "--config", self.settings.config_dir]
        if not self.kafka_enabled:
            cmd.append("--no-kafka")
        elif self.bootstrap is not None:
            cmd += ["--bootstrap", self.bootstrap]
        if self.http_enabled and (self.http_all or slot.index == 0):
            host, port = self.http_address
            cmd += ["--http", f"{host}:{port}"]
        else:
            cmd.append("--no-http")
        return cmd

    def environment(self, slot: _Slot) -> dict[str, str]:
        env = dict(os.environ)
        env[ENV_WORKER_INDEX] = str(slot.index)
        env["PYTHONUNBUFFERED"] = "1"
        if self.metrics_dir is not None:
            env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        if self.http_all and self.count > 1:
            env[ENV_PREFIX + "HTTP_REUSE_PORT"] = "true"
        if self.route_dir is not None:
            env[ENV_ROUTE_DIR] = self.route_dir
            env[ENV_WORKER_COUNT] = str(self.count)
        return env

    async def _run_slot(self, slot: _Slot) -> None:
        delay = self.backoff_initial_s
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self.command(slot), env=self.environment(slot), stdin=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE, start_new_session=True,  # signals come from us only
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            except OSError as e:
                log(f"worker {slot.index}: cannot start: {e}")
                rc: int | None = None
            else:
                slot.process = proc
                slot.starts += 1
                if self._stopping.is_set():  # stop() ran while we were spawning it
                    slot.signal(signal.SIGTERM)
                what = "started" if slot.starts == 1 else f"restarted (start #{slot.starts})"
                log(f"worker {slot.index} {what}: pid {proc.pid}")
                assert proc.stderr is not None
                copier = asyncio.get_running_loop().create_task(self._copy_stderr(slot.index, proc.stderr))
                try:
                    rc = await proc.wait()
                finally:
                    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                        await asyncio.wait_for(copier, 5.0)  # stderr ends with the process
                slot.last_returncode = rc
                self._mark_dead(proc.pid)
            if self._stopping.is_set():
                log(f"worker {slot.index} exited with status {rc}")
                return
            uptime = time.monotonic() - started
            if uptime >= self.stable_after_s:
                delay = self.backoff_initial_s
            self.restarts += 1
            log(f"worker {slot.index} exited with status {_describe(rc)} after {uptime:.1f} s: "
                f"restarting in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _copy_stderr(self, index: int, stream: asyncio.StreamReader) -> None:
        prefix = f"express: worker {index}: "
        out = sys.stderr
        as_json = logs.current_format() == "json"
        while True:
            try:
                line = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):  # an over-long line: pass it on in pieces
                line = await stream.read(65536)
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\n")
            if as_json:  # the worker's own lines name it already; anything else (a traceback) is wrapped
                if not text.startswith("{"):
                    text = logs.format_json("warning", "worker", "stderr", text, worker=index)
            else:
                text = prefix + (text[len("express: "):] if text.startswith("express: ") else text)
            with contextlib.suppress(OSError, ValueError):
                out.write(text + "\n")
                out.flush()

    def _mark_dead(self, pid: int) -> None:
        if self.metrics_dir is None:
            return
        try:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.metrics_dir)
        except Exception as e:  # never let metrics housekeeping stop a restart
            log(f"could not drop the live metrics of pid {pid}: {e}")

    @property
    def pids(self) -> list[int | None]:
        return [s.pid for s in self.slots]


def _describe(rc: int | None) -> str:
    if rc is None:
        return "unknown (not started)"
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"{rc} (killed by {signal.Signals(-rc).name})"
    return str(rc)
