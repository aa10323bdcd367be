"""What the HTTP layer passes around: a parsed :class:`Request`, the :class:`Response` to it, the
:data:`Handler` that turns one into the other, and the connection :class:`Limits`.

:mod:`express.http.protocol` reads requests into these and writes the responses; the server's
handlers (:mod:`express.http.middleware`) only ever see these objects.

A handler starts inline, in the connection's own callback (no Task is made for the many requests
that end without suspending), so until it first suspends it runs outside any asyncio Task: what
needs one (``asyncio.TaskGroup``, ``asyncio.timeout``, the client libraries built on them) comes
after ``await in_task()``.
"""
from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ErrorBody", "Handler", "HttpError", "Inline", "Limits", "Operation", "Request", "Response", "in_task"]


@types.coroutine
def _bare_yield() -> Any:
    yield  # what asyncio.sleep(0) yields: the connection hands the handler to a Task here


class Inline:
    """How many handlers are running inline right now (set by :mod:`express.http.protocol` around
    driving one by hand): such a handler may be inside another request's Task (the one that answered
    before it on its connection and took it up), which is not its own."""

    depth = 0


async def in_task() -> None:
    """Go on inside an asyncio Task of the handler's own (at once when it already is in one): the
    connection runs a handler inline until it first suspends, and this suspends it so that a Task
    takes it over."""
    if Inline.depth or asyncio.current_task() is None:
        await _bare_yield()


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_body_bytes: int = 1024 * 1024
    keepalive_timeout_s: float = 75.0
    request_timeout_s: float = 30.0
    max_connections: int = 10_000


class HttpError(Exception):
    """A request that cannot be read: answered with ``status`` and an AWS error body, then closed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# An API operation: the decoded request object and the headers to the response object (or raw JSON bytes).
Operation = Callable[[dict[str, Any], Mapping[str, str]], Awaitable[Any]]


class Request:
    """``operation`` and ``payload`` are what the API's stack (:mod:`express.http.middleware`) found,
    handed on to the wrappers inside it as starlette's scope carries what a middleware learned: the
    operation ``X-Amz-Target`` names, as (name, operation) or None, set by the stack's outermost
    wrapper, and the decoded body, set by ``decoded``. Unset before (no per-request cost for them)."""

    operation: tuple[str, Operation] | None
    payload: dict[str, Any]
    __slots__ = ("method", "path", "query", "version", "headers", "body", "keep_alive", "received", "operation",
                 "payload")

    def __init__(self, method: str, path: str, query: str, version: str, headers: dict[str, str],
                 body: bytes, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers  # lower-case names; repeated headers joined with ","
        self.body = body
        self.keep_alive = keep_alive
        self.received = time.perf_counter()


class Response:
    __slots__ = ("status", "body", "content_type", "headers", "close")

    def __init__(self, status: int, body: bytes, content_type: str = "application/x-amz-json-1.0",
                 headers: list[tuple[str, str]] | None = None, close: bool = False) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers
        self.close = close


Handler = Callable[[Request], Awaitable[Response]]
ErrorBody = Callable[[int, str, str], Response]
