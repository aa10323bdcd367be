"""Task resources: how a Task state's Resource is bound to a Python callable.

``functions`` maps a Lambda function name or ARN (or any other resource ARN, for custom service
integrations) to a plain or async callable. The payload a callable receives is a private copy made
through JSON, as Lambda receives it, so nothing it does can alter the execution's data; its
return value goes through JSON as well (bytes are a raw JSON payload, as Lambda's runtime treats
them). An exception raised by the callable becomes the ASL error named after its class.
"""
from __future__ import annotations

import asyncio
import inspect
import re
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from express import errors
from express.errors import ASLError, ExecutionTimedOut
from express.frame import Frame

MAX_PAYLOAD_BYTES = 256 * 1024
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_LAMBDA_ARN = re.compile(r"^arn:aws[\w-]*:lambda:[^:]*:[^:]*:function:(?P<name>[^:]+)(?::(?P<qual>[^:]+))?$")
_STATES_ARN = re.compile(r"^arn:aws[\w-]*:states:[^:]*:[^:]*:(?P<service>[^:]+):(?P<action>.+)$")
_ACTIVITY_ARN = re.compile(r"^arn:aws[\w-]*:states:[^:]*:[^:]*:activity:.+$")

Invoker = Callable[[Any, Frame, float | None], Any]


def unsupported_reason(resource: str) -> str | None:
    """Why Express cannot run this resource, or None."""
    if _ACTIVITY_ARN.match(resource):
        return f"Activity resources are not supported by Express workflows: {resource}"
    if resource.endswith(".waitForTaskToken"):
        return f"The .waitForTaskToken integration pattern is not supported by Express workflows: {resource}"
    if re.search(r"\.sync(:\d+)?$", resource):
        return f"The .sync integration pattern is not supported by Express workflows: {resource}"
    return None


def lookup(functions: dict[str, Callable[..., Any]], name_or_arn: str) -> Callable[..., Any] | None:
    fn = functions.get(name_or_arn)
    if fn is not None:
        return fn
    m = _LAMBDA_ARN.match(name_or_arn)
    if m:
        return functions.get(m.group("name"))
    if ":" in name_or_arn and not name_or_arn.startswith("arn:"):
        return functions.get(name_or_arn.split(":", 1)[0])
    return None


def _to_json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as e:
        raise ASLError(errors.TASK_FAILED, f"The task input is not JSON-serialisable: {e}", located=True) from None


def _result_from(value: Any, state_hint: str) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        try:
            raw = orjson.dumps(value)
        except TypeError as e:
            raise ASLError("Lambda.Unknown", f"The function returned a value that is not JSON: {e}",
                           located=True) from None
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ASLError(
            errors.DATA_LIMIT_EXCEEDED,
            f"The state/task '{state_hint}' returned a result with a size exceeding the maximum "
            "number of bytes service limit.",
            located=True,
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def exception_to_error(exc: BaseException) -> ASLError:
    """A Python exception raised by a task callable, as Lambda reports an unhandled error."""
    name = type(exc).__name__
    cause = orjson.dumps({
        "errorMessage": str(exc),
        "errorType": name,
        "requestId": "",
        "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
    }).decode()
    return ASLError(name, cause, located=True)


async def call(fn: Callable[..., Any], payload: Any, ex_frame: Frame, timeout: float | None,
               state_hint: str) -> Any:
    event = orjson.loads(_to_json_bytes(payload))
    ex = ex_frame.execution
    try:
        if inspect.iscoroutinefunction(fn):
            remaining = ex.deadline - ex.clock.now()
            limit = remaining if timeout is None else min(timeout, remaining)
            result = await _race(fn(event), limit, ex.clock, timeout is not None and timeout <= remaining,
                                 ex.real_deadline)
        else:
            result = fn(event)
            if inspect.isawaitable(result):
                result = await result
    except (ASLError, ExecutionTimedOut, asyncio.CancelledError):
        raise
    except Exception as exc:  # the boundary where user code's exceptions become ASL errors
        raise exception_to_error(exc) from None
    return _result_from(result, state_hint)


async def _race(coro: Any, limit: float, clock: Any, is_task_timeout: bool, real_deadline: float) -> Any:
    if clock.virtual:
        if is_task_timeout:
            # An explicit TimeoutSeconds elapses on the virtual clock, as Wait states do.
            return await _race_virtual(coro, limit, clock)
        # Otherwise real work takes the real time it needs; only the real-time bound applies.
        try:
            async with asyncio.timeout(max(0.0, real_deadline - time.monotonic())):
                return await coro
        except TimeoutError:
            raise ExecutionTimedOut() from None
    try:
        async with asyncio.timeout(max(0.0, limit)):
            return await coro
    except TimeoutError:
        if is_task_timeout:
            raise ASLError(errors.TIMEOUT, "", located=True) from None
        raise ExecutionTimedOut() from None


async def _race_virtual(coro: Any, limit: float, clock: Any) -> Any:
    work = asyncio.ensure_future(coro)
    timer = asyncio.ensure_future(clock.sleep(max(0.0, limit)))
    try:
        with clock.real_work():
            done, _ = await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not work.done():
            work.cancel()
    if work in done:
        return work.result()
    raise ASLError(errors.TIMEOUT, "", located=True)


def build_invoker(resource: str, functions: dict[str, Callable[..., Any]]) -> Invoker:
    """The coroutine that runs a Task's Resource; raises ValueError when it cannot be bound."""
    if resource == LAMBDA_INVOKE or resource.startswith(LAMBDA_INVOKE + ":"):
        async def lambda_invoke(eff: Any, frame: Frame, timeout: float | None) -> Any:
            if not isinstance(eff, dict) or not isinstance(eff.get("FunctionName"), str):
                raise ASLError(errors.TASK_FAILED, "The field 'FunctionName' is required", located=True)
            fn = lookup(functions, eff["FunctionName"])
            if fn is None:
                raise ASLError(
                    "Lambda.ResourceNotFoundException",
                    f"Function not found: {eff['FunctionName']}", located=True)
            payload = eff.get("Payload", {}) if "Payload" in eff else {}
            result = await call(fn, payload, frame, timeout, "lambda")
            return {
                "ExecutedVersion": "$LATEST",
                "Payload": result,
                "SdkHttpMetadata": {"HttpStatusCode": 200},
                "SdkResponseMetadata": {"RequestId": ""},
                "StatusCode": 200,
            }

        return lambda_invoke

    fn = lookup(functions, resource)
    if fn is None:
        raise ValueError(
            f"No function is registered for the Task resource '{resource}' "
            "(pass it in Engine(functions={...}) by name or ARN)")

    async def direct(eff: Any, frame: Frame, timeout: float | None) -> Any:
        return await call(fn, eff, frame, timeout, "lambda")

    return direct
