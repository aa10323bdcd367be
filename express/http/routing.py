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

What it does not cover: a worker that crashes loses its table (names are kept in memory), so a
retry after that crash runs again; that is the same as a single process restarting.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import zlib
from collections import deque

from express.http.protocol import Response

ENV_ROUTE_DIR = "EXPRESS_WORKER_ROUTE_DIR"
ENV_WORKER_COUNT = "EXPRESS_WORKER_COUNT"
ENV_WORKER_INDEX = "EXPRESS_WORKER_INDEX"
FORWARDED_HEADER = "x-express-forwarded"
ROUTED_OPERATIONS = frozenset({"AWSStepFunctions.StartSyncExecution", "AWSStepFunctions.StartExecution"})
_POOL_SIZE = 64
_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class RoutingError(Exception):
    pass


def socket_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"worker-{index}.sock")


class NameRouter:
    def __init__(self, index: int, count: int, directory: str) -> None:
        if not 0 <= index < count:
            raise ValueError(f"worker index {index} is not below the worker count {count}")
        self.index = index
        self.count = count
        self.directory = directory
        self._pools: dict[int, deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
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
        pool = self._pools.setdefault(owner, deque())
        for attempt in range(2):
            if pool:
                reader, writer = pool.pop()
            else:
                try:
                    reader, writer = await asyncio.open_unix_connection(socket_path(self.directory, owner))
                except OSError as e:
                    raise RoutingError(f"worker {owner}, which owns this execution name, is not reachable: {e}") from None
            try:
                writer.write(b"".join((
                    b"POST / HTTP/1.1\r\nhost: express-worker\r\ncontent-type: application/x-amz-json-1.0\r\n",
                    b"x-amz-target: ", target.encode("latin-1"), b"\r\n",
                    FORWARDED_HEADER.encode(), b": 1\r\ncontent-length: ", str(len(body)).encode(), b"\r\n\r\n", body,
                )))
                await writer.drain()
                response = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, RoutingError) as e:
                writer.close()
                if attempt == 0:  # a pooled connection the owner had closed: try a fresh one
                    continue
                raise RoutingError(f"forwarding to worker {owner} failed: {e}") from None
            if len(pool) < _POOL_SIZE:
                pool.append((reader, writer))
            else:
                writer.close()
            self.forwarded += 1
            return response
        raise RoutingError(f"forwarding to worker {owner} failed")

    async def close(self) -> None:
        for pool in self._pools.values():
            while pool:
                _, writer = pool.pop()
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise RoutingError(f"bad status line from the owner: {lines[0][:100]!r}") from None
    headers: list[tuple[str, str]] = []
    length = 0
    content_type = "application/x-amz-json-1.0"
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        key = name.strip().lower()
        value = value.strip()
        if key == "content-length":
            length = int(value)
        elif key == "content-type":
            content_type = value
        elif key.startswith("x-amzn-"):
            headers.append((name.strip(), value))
    if length > _MAX_RESPONSE_BYTES:
        raise RoutingError("the owner's answer is too large")
    body = await reader.readexactly(length)
    return Response(status, body, content_type, headers)
