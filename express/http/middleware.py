"""The serving concerns of the StepFunctions API, each a wrapper around one :data:`Handler` signature,
as starlette's middleware: a wrapper takes the handler it wraps and returns one. The server composes
them once, at start, into two stacks::

    public socket:   with_metrics(unless_stopping(with_auth(decoded(routed(dispatch)))))
    routing socket:  resolved(unless_stopping(decoded(dispatch)))

The private routing socket gets requests forwarded by the worker that received them, which already
authenticated, counted and routed them: that stack leaves those wrappers out. A wrapper with nothing
to do (no credentials, a single worker) returns the handler it was given.

Cost: this path serves ~10k requests/s per worker. The wrappers that only look at a request before
handing it on are plain functions returning the inner handler's awaitable, so they add no coroutine
frame; only ``with_metrics`` (it times the answer) and ``dispatch`` (it awaits the operation) are
coroutines. What a wrapper finds is left on the request for the wrappers inside it, so that it is
found once: the operation (``with_metrics`` or ``resolved``, outermost), the decoded body (``decoded``).
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson

from express.http.api import TARGET_PREFIX
from express.http.api_base import ApiMetrics
from express.http.auth import AuthError, SigV4Verifier
from express.http.messages import Handler, Operation, Request, Response, in_task
from express.http.routing import ROUTED_OPERATIONS, NameRouter, RoutingError
from express.http.validation import ApiError

JSON_CT = "application/x-amz-json-1.0"
# Operations that may start inline, outside an asyncio Task (express.http.messages.in_task): they
# call in_task themselves before anything that needs one. Every other operation starts in a Task.
INLINE_OPERATIONS = frozenset({"StartSyncExecution"})

# An AWS JSON error answer: (status, code, message, **extra fields of the body).
ErrorAnswer = Callable[..., Response]


class Stopping(Protocol):
    closing: bool


async def answered(response: Response) -> Response:
    """An answer already made, as a handler's awaitable."""
    return response


def dispatch(error: ErrorAnswer, request_id: Callable[[], str]) -> Handler:
    """The innermost handler: the request's operation on its decoded body; an :class:`ApiError` is
    AWS's error answer."""

    async def call(request: Request) -> Response:
        name, operation = request.operation  # type: ignore[misc]
        if name not in INLINE_OPERATIONS:
            await in_task()
        try:
            result = await operation(request.payload, request.headers)
        except ApiError as e:
            return error(e.status, e.code, e.message, **e.extra)
        payload = result if isinstance(result, bytes) else orjson.dumps(result)
        return Response(200, payload, JSON_CT, [("x-amzn-RequestId", request_id())])

    return call


def _targets(operations: Mapping[str, Operation]) -> dict[str, tuple[str, Operation]]:
    return {TARGET_PREFIX + name: (name, operation) for name, operation in operations.items()}


def resolved(handler: Handler, operations: Mapping[str, Operation]) -> Handler:
    """The operation ``X-Amz-Target`` names (or None), set on the request as ``operation``: the
    outermost wrapper of a stack without ``with_metrics``, which resolves it itself."""
    targets = _targets(operations)

    def resolve(request: Request) -> Awaitable[Response]:
        request.operation = targets.get(request.headers.get("x-amz-target", ""))
        return handler(request)

    return resolve


def decoded(handler: Handler, error: ErrorAnswer) -> Handler:
    """A request for an operation, with a JSON object for its body, which is set on the request as
    ``payload``; anything else is answered here."""

    def decode(request: Request) -> Awaitable[Response]:
        if request.operation is None:
            target = request.headers.get("x-amz-target", "")
            if not target:
                return answered(error(400, "UnknownOperationException", "Missing X-Amz-Target header"))
            return answered(error(400, "UnknownOperationException",
                                  f"Unknown operation: '{target[:100]}' (expected AWSStepFunctions.<Operation>)"))
        body_bytes = request.body
        try:
            body = orjson.loads(body_bytes) if body_bytes else {}
        except orjson.JSONDecodeError as e:
            return answered(error(400, "SerializationException", f"The request body is not valid JSON: {e}"))
        if not isinstance(body, dict):
            return answered(error(400, "SerializationException", "The request body must be a JSON object"))
        request.payload = body
        return handler(request)

    return decode


def routed(handler: Handler, router: NameRouter | None, error: ErrorAnswer) -> Handler:
    """A named execution that another worker owns is forwarded to it, and its answer relayed
    (:mod:`express.http.routing`); inside ``decoded``."""
    if router is None:
        return handler

    async def forward(owner: int, target: str, body: bytes) -> Response:
        await in_task()
        try:
            return await router.forward(owner, target, body)
        except RoutingError as e:
            return error(503, "ServiceUnavailable", str(e))

    def route(request: Request) -> Awaitable[Response]:
        target = request.headers["x-amz-target"]  # decoded found its operation
        if target in ROUTED_OPERATIONS:
            body: dict[str, Any] = request.payload  # type: ignore[assignment]
            name = body.get("name")
            if isinstance(name, str) and name:
                owner = router.owner(str(body.get("stateMachineArn", "")), name)
                if owner != router.index:
                    return forward(owner, target, request.body)
        return handler(request)

    return route


def with_auth(handler: Handler, verifier: SigV4Verifier | None, error: ErrorAnswer) -> Handler:
    """SigV4 signatures checked (:mod:`express.http.auth`), when the server has credentials."""
    if verifier is None:
        return handler

    def authenticated(request: Request) -> Awaitable[Response]:
        try:
            verifier.verify(request)
        except AuthError as e:
            return answered(error(e.status, e.code, e.message))
        return handler(request)

    return authenticated


def unless_stopping(handler: Handler, server: Stopping, error: ErrorAnswer) -> Handler:
    """503 ServiceUnavailable once the server is stopping, so that clients go elsewhere."""

    def serving(request: Request) -> Awaitable[Response]:
        if server.closing:
            return answered(error(503, "ServiceUnavailable", "The server is stopping"))
        return handler(request)

    return serving


def with_metrics(handler: Handler, metrics: ApiMetrics, operations: Mapping[str, Operation]) -> Handler:
    """Requests counted by operation and status, and timed by operation (``unknown`` for a target
    that names none: the labels stay a bounded set). The outermost wrapper: it resolves the
    operation, as ``resolved`` does, for the wrappers inside it (one lookup per request)."""
    targets = _targets(operations)

    async def measured(request: Request) -> Response:
        operation = request.operation = targets.get(request.headers.get("x-amz-target", ""))
        label = operation[0] if operation is not None else "unknown"
        started = time.perf_counter()
        response = await handler(request)
        metrics.request(label, response.status)
        if metrics.m is not None:
            metrics.m.request_duration(label).observe(time.perf_counter() - started)
        return response

    return measured
