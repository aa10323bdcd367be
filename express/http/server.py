"""The HTTP server: AWS JSON 1.0 StepFunctions API on ``POST /``, plus ``/healthz``, ``/readyz``
and ``/metrics``.

``HttpServer(settings, registry, host=..., port=..., kafka=None, credentials=None)``;
``await start()`` binds (port 0 picks a free port, see ``.port``), ``await stop()`` stops accepting,
answers ``/readyz`` with 503, lets running requests and background executions finish for up to
``drain_timeout_s``, then cancels what is left and closes every connection. Both are idempotent.

Tasks the server owns (all awaited by ``stop``): one per request being handled, one per
StartExecution running in the background, and the sweeper that enforces connection timeouts
and expires execution names.

Routing is by ``X-Amz-Target`` only: any ``Host`` is accepted, so clients that prepend ``sync-``
to the host for StartSyncExecution and TestState work when that name resolves to us; otherwise
they use ``Config(inject_host_prefix=False)`` or ``AWS_DISABLE_HOST_PREFIX_INJECTION=true``.

Authentication (SigV4, :mod:`express.http.auth`) is on when ``credentials`` (access key id ->
secret) are given; the health, readiness and metrics routes never require it. With it, a signed
request must name a Host this server answers for (``[http] allowed_hosts``, by default the
address it listens on), so the any-Host routing above is then limited to those names.

``POST /`` goes through the API's stack (:mod:`express.http.middleware`: metrics, stopping,
authentication, decoding, routing to the worker that owns a name, the operation), built once at
start; the private routing socket's connections use the same stack without the wrappers that the
forwarding worker already applied.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Awaitable, Mapping
from typing import Any

import orjson

from express.http.api import StepFunctionsApi
from express.http.auth import SigV4Verifier
from express.http.messages import Handler, Request, Response, in_task
from express.http.middleware import (
    JSON_CT,
    answered,
    decoded,
    dispatch,
    resolved,
    routed,
    unless_stopping,
    with_auth,
    with_metrics,
)
from express.http.names import NameTable
from express.http.protocol import HttpConnection, Limits
from express.http.routing import NameRouter
from express.serve.config import Settings
from express.serve.registry import Registry

SWEEP_INTERVAL_S = 1.0


def log(message: str) -> None:
    from express.observe.logs import emit_message

    emit_message("http", message)


class _RequestIds:
    """x-amzn-RequestId values: a random UUID-shaped prefix per process and a counter."""

    def __init__(self) -> None:
        r = os.urandom(10).hex()
        self._prefix = f"{r[:8]}-{r[8:12]}-{r[12:16]}-{r[16:20]}-"
        self._n = 0

    def next(self) -> str:
        self._n += 1
        return f"{self._prefix}{self._n:012x}"


class HttpServer:
    def __init__(self, settings: Settings, registry: Registry, *, host: str | None = None, port: int | None = None,
                 kafka: Any = None, credentials: Mapping[str, str] | None = None,
                 drain_timeout_s: float = 30.0, limits: Limits | None = None,
                 max_background: int = 10_000, max_machines: int = 10_000, reuse_port: bool | None = None) -> None:
        self.settings = settings
        # SO_REUSEPORT: several worker processes listen on one port (express.serve.supervisor)
        self.reuse_port = settings.http.reuse_port if reuse_port is None else reuse_port
        self.registry = registry
        self.host = host if host is not None else settings.http.host
        self._requested_port = port if port is not None else settings.http.port
        self.port: int | None = None
        self.kafka = kafka
        self.limits = limits or Limits(max_body_bytes=settings.http.max_body_bytes)
        self.drain_timeout_s = drain_timeout_s
        self.verifier = SigV4Verifier(credentials, region=registry.engine.region,
                                      allowed_hosts=settings.http.allowed_hosts.split(",")) if credentials else None
        self.names = NameTable(settings.http.name_retention_s, settings.http.max_names, settings.http.max_name_bytes)
        self.api = StepFunctionsApi(settings, registry, spawn=self._spawn_background, names=self.names, kafka=kafka,
                                    max_background=max_background, max_machines=max_machines)
        self.connections: set[HttpConnection] = set()
        self.closing = False
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        self._ready = False
        self._ids = _RequestIds()
        # Several workers on one port: named executions go to the worker that owns the name.
        self.router = NameRouter.from_env()
        self._internal_server: asyncio.base_events.Server | None = None
        self._api: Handler = self._refuse_before_start
        self._forwarded: Handler = self._refuse_before_start
        self._early_evictions_logged = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._api, self._forwarded = self._stacks()
        if self.verifier is None and not _is_loopback(self.host):
            log(f"WARNING: serving on {self.host} without authentication: anyone who can reach it can run "
                "state machines; configure credentials to require SigV4 signatures")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: HttpConnection(self), self.host, self._requested_port,
                                                reuse_address=True, reuse_port=self.reuse_port or None,
                                                backlog=1024)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        if self.verifier is not None:  # signatures must name this address (unless [http] allowed_hosts)
            self.verifier.listening(self.host, self.port)
        for s in self._server.sockets:
            with contextlib.suppress(OSError):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.router is not None:
            path = self.router.own_socket
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # left by a crashed predecessor
            # Every other worker keeps up to routing._MAX_LINKS connections here, opened in bursts.
            self._internal_server = await loop.create_unix_server(lambda: HttpConnection(self, self._internal),
                                                                  path, backlog=4096)
        self._sweeper = loop.create_task(self._sweep())
        self._ready = True

    async def stop(self) -> None:
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._ready = False
        self.closing = True
        # Drain: keep listening so that orchestrators see /readyz answer 503 (and API requests get
        # 503 ServiceUnavailable, to go elsewhere) while running requests and executions finish.
        pending = self._tasks | self._background
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.drain_timeout_s)
            for task in still:
                task.cancel()
            if still:
                log(f"stopping: cancelled {len(still)} request(s)/execution(s) still running after "
                    f"{self.drain_timeout_s:g} s")
                await asyncio.wait(still, timeout=5.0)
        if self._server is not None:
            self._server.close()
        if self._internal_server is not None:
            self._internal_server.close()
        if self.router is not None:
            await self.router.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for conn in list(self.connections):
            conn.close_now()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)

    def track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_background(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # already logged by the task itself

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.deadline is not None and now > conn.deadline:
                    conn.timed_out()
            self.names.purge()
            if self.names.evicted_early > self._early_evictions_logged:
                log(f"WARNING: {self.names.evicted_early - self._early_evictions_logged} finished execution "
                    f"name(s) forgotten before their retention ended (http.max_names={self.names.max_names} "
                    "reached): a retry of those names would run again")
                self._early_evictions_logged = self.names.evicted_early

    # ------------------------------------------------------------------ requests
    def _stacks(self) -> tuple[Handler, Handler]:
        """The API's handlers, innermost wrapper first: that of the public socket, and that of the
        private routing socket, whose requests the worker that forwarded them has authenticated,
        counted and routed (a forwarded request is never forwarded again)."""
        error, operations = self.error, self.api.operations
        operation = dispatch(error, self._ids.next)
        public = routed(operation, self.router, error)
        public = decoded(public, error)
        public = with_auth(public, self.verifier, error)
        public = unless_stopping(public, self, error)
        public = with_metrics(public, self.api.metrics, operations)
        forwarded = resolved(unless_stopping(decoded(operation, error), self, error), operations)
        return public, forwarded

    def _refuse_before_start(self, request: Request) -> Awaitable[Response]:
        return answered(self.error(503, "ServiceUnavailable", "The server is not started"))

    def error(self, status: int, code: str, message: str, **extra: Any) -> Response:
        body = {"__type": code, "message": message, **extra}
        return Response(status, orjson.dumps(body), JSON_CT, [("x-amzn-RequestId", self._ids.next())])

    def handler(self, request: Request) -> Awaitable[Response]:
        """The routes; a plain function returning the route's awaitable (no coroutine frame of its own)."""
        if request.path == "/" and request.method == "POST":
            return self._api(request)
        path = request.path
        if path in ("/healthz", "/readyz", "/metrics"):
            if request.method not in ("GET", "HEAD"):
                return answered(self.error(405, "MethodNotAllowed", f"{path} accepts GET only"))
            if path == "/healthz":
                return answered(Response(200, b'{"status":"ok"}', "application/json"))
            if path == "/readyz":
                if self._ready:
                    return answered(Response(200, b'{"status":"ready"}', "application/json"))
                return answered(Response(503, b'{"status":"stopping"}', "application/json"))
            return answered(self._metrics())
        if path == "/console" or path.startswith("/console/"):
            return self._console_request(request)
        if path == "/":
            return answered(self.error(405, "UnknownOperationException", "The StepFunctions API accepts POST only"))
        return answered(self.error(404, "UnknownOperationException", f"No route for {request.method} {path[:100]}"))

    def _metrics(self) -> Response:
        try:
            from prometheus_client import CONTENT_TYPE_LATEST

            from express.observe.metrics import exposition
        except ImportError:
            return self.error(404, "UnknownOperationException", "metrics need the prometheus-client package")
        return Response(200, exposition(), CONTENT_TYPE_LATEST)

    def _internal(self, request: Request) -> Awaitable[Response]:
        """The private routing socket: forwarded API requests, and the other workers' console asking
        for this worker's executions (:mod:`express.console.peers`; never served on the public port)."""
        if request.path.startswith("/console/"):
            return self._console_request(request, peer=True)
        return self._forwarded(request)

    async def _console_request(self, request: Request, peer: bool = False) -> Response:
        """The web console (:mod:`express.console`), made on first use."""
        await in_task()
        console = self.__dict__.get("_console")
        if console is None:
            from express.console.app import Console

            console = self._console = Console(self.registry, verifier=self.verifier,
                                              token=self.settings.console.token, router=self.router)
        return await (console.peer(request) if peer else console.handle(request))


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
