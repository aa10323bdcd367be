"""Exactly-once execution names across worker processes: route each name to one owner.

With ``[workers] http = "all"`` every worker accepts HTTP on the shared port (SO_REUSEPORT), so a
retry of a named execution may reach any worker. Each name therefore has one owner, chosen by a
hash of (state machine, name) over the worker count; a worker that receives a named
StartSyncExecution or StartExecution it does not own forwards the request, unchanged, to the
owner over a private Unix socket and relays the answer. The owner's name table is then the only
one that ever sees that name, which keeps the guarantee of :mod:`express.http.names`.

Unnamed executions (the server names them with a UUID) need no routing and run where they land.
Forwarded requests were already authenticated by the worker that received them; the private
sockets live in a directory only the service's user can reach (mode 0700), and a forwarded
request is never forwarded again.

The forwarding connections are persistent and pooled: at most ``_MAX_LINKS`` per owner, and a
request that finds them all busy waits for one rather than opening more (each connection the
owner accepts is a file descriptor and a slot in its accept backlog). A connect that finds the
owner's backlog full (EAGAIN) is retried a few times with a short backoff. Answers are read with
the same llhttp parser the server uses (:class:`express.http.response_parser.ResponseParser`).

What it does not cover: a worker that crashes loses its table (names are kept in memory), so a
retry after that crash runs again; that is the same as a single process restarting.
"""
from __future__ import annotations

import asyncio
import errno
import os
import zlib

from express.http.messages import Response
from express.http.response_parser import ParsedResponse, ResponseError, ResponseParser
from express.serve.config import ENV_ROUTE_DIR, ENV_WORKER_COUNT, ENV_WORKER_INDEX

FORWARDED_HEADER = "x-express-forwarded"
ROUTED_OPERATIONS = frozenset({"AWSStepFunctions.StartSyncExecution", "AWSStepFunctions.StartExecution"})
_MAX_LINKS = 256  # connections to one owner; beyond, requests wait for one to be free
_CONNECT_ATTEMPTS = 8  # on EAGAIN, after 2, 4, ... 128 ms: about a quarter of a second in all
_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_JSON = "application/x-amz-json-1.0"


class RoutingError(Exception):
    pass


def socket_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"worker-{index}.sock")


class _Link(asyncio.Protocol):
    """One persistent connection to an owner: one request at a time, its answer parsed as it arrives."""

    __slots__ = ("transport", "closed", "_parser", "_waiter")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = ResponseParser(_MAX_RESPONSE_BYTES)
        self._waiter: asyncio.Future[ParsedResponse] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            done = self._parser.feed(data)
        except ResponseError as e:
            self._fail(str(e))
            return
        if done:
            self._answered(done)

    def eof_received(self) -> bool:
        try:
            done = self._parser.feed_eof()
        except ResponseError as e:
            self._fail(str(e))
            return False
        if done:
            self._answered(done)
        self._fail("the connection was closed without an answer")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"the connection was lost: {exc}" if exc else "the connection was closed without an answer")

    def _answered(self, done: list[ParsedResponse]) -> None:
        waiter = self._waiter
        if waiter is None or len(done) > 1:
            self._fail("an answer that no request asked for")
            return
        self._waiter = None
        if not waiter.done():
            waiter.set_result(done[0])

    def _fail(self, reason: str) -> None:
        self.closed = True
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(RoutingError(reason))
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes) -> ParsedResponse:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)  # type: ignore[union-attr]
        try:
            return await waiter
        except asyncio.CancelledError:  # the answer may still come: this connection is no longer usable
            self._fail("cancelled")
            raise

    def close(self) -> None:
        self._fail("closed")


class _Owner:
    """The connections to one owner: the idle ones, and a semaphore bounding them all."""

    __slots__ = ("path", "idle", "slots")

    def __init__(self, path: str) -> None:
        self.path = path
        self.idle: list[_Link] = []
        self.slots = asyncio.Semaphore(_MAX_LINKS)

    def take(self) -> _Link | None:
        idle = self.idle
        while idle:
            link = idle.pop()
            if not link.closed:  # the owner closes idle connections after its keep-alive timeout
                return link
        return None


class NameRouter:
    def __init__(self, index: int, count: int, directory: str) -> None:
        if not 0 <= index < count:
            raise ValueError(f"worker index {index} is not below the worker count {count}")
        self.index = index
        self.count = count
        self.directory = directory
        self._owners: dict[int, _Owner] = {}
        self.forwarded = 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> NameRouter | None:
        env = dict(os.environ) if env is None else env
        directory = env.get(ENV_ROUTE_DIR)
        if not directory:
            return None
        return cls(int(env[ENV_WORKER_INDEX]), int(env[ENV_WORKER_COUNT]), directory)

    @property
    def own_socket(self) -> str:
        return socket_path(self.directory, self.index)

    def owner(self, state_machine_arn: str, name: str) -> int:
        return zlib.crc32(f"{state_machine_arn}\x00{name}".encode()) % self.count

    async def forward(self, owner: int, target: str, body: bytes) -> Response:
        """Send the request to the owner's private socket and return its answer."""
        peer = self._owners.get(owner)
        if peer is None:
            peer = self._owners[owner] = _Owner(socket_path(self.directory, owner))
        request = b"".join((
            b"POST / HTTP/1.1\r\nhost: express-worker\r\ncontent-type: application/x-amz-json-1.0\r\n",
            b"x-amz-target: ", target.encode("latin-1"), b"\r\n",
            FORWARDED_HEADER.encode(), b": 1\r\ncontent-length: ", str(len(body)).encode(), b"\r\n\r\n", body,
        ))
        async with peer.slots:
            while True:
                link = peer.take()
                pooled = link is not None
                if link is None:
                    link = await _connect(owner, peer.path)
                try:
                    answer = await link.exchange(request)
                except RoutingError as e:
                    if pooled:  # closed by the owner as we sent: once more (a name runs once however often sent)
                        continue
                    raise RoutingError(f"forwarding to worker {owner} failed: {e}") from None
                if answer.keep_alive and not link.closed:
                    peer.idle.append(link)
                else:
                    link.close()
                self.forwarded += 1
                return _relayed(answer)

    async def close(self) -> None:
        for peer in self._owners.values():
            while peer.idle:
                peer.idle.pop().close()
        await asyncio.sleep(0)  # let the transports close


async def _connect(owner: int, path: str) -> _Link:
    loop = asyncio.get_running_loop()
    delay = 0.002
    for attempt in range(_CONNECT_ATTEMPTS):
        try:
            _, link = await loop.create_unix_connection(_Link, path)
            return link
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK) or attempt == _CONNECT_ATTEMPTS - 1:
                raise RoutingError(f"worker {owner}, which owns this execution name, is not reachable: {e}") from None
        await asyncio.sleep(delay)  # the owner's accept backlog is full: it is busy, not gone
        delay *= 2
    raise AssertionError("unreachable")


def _relayed(answer: ParsedResponse) -> Response:
    """The owner's answer as ours: its status, body, content type and x-amzn-* headers."""
    content_type = _JSON
    headers: list[tuple[str, str]] = []
    for name, value in answer.headers:
        key = name.lower()
        if key == "content-type":
            content_type = value
        elif key.startswith("x-amzn-"):
            headers.append((name, value))
    return Response(answer.status, answer.body, content_type, headers)
