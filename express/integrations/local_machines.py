"""``arn:aws:states:::states:startExecution`` and ``arn:aws:states:::states:startSyncExecution``: start
another state machine of this server, run by the same engine (no network hop, no credentials).

Parameters (or Arguments), as Step Functions' StartExecution takes them: ``StateMachineArn`` (required:
``arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`` of this server's region and account; versions and
aliases are not kept), ``Input`` (any JSON value, or a JSON text; absent or null: ``{}``) and ``Name``
(default: a UUID).

- ``startExecution`` starts the execution and answers at once with what Step Functions returns:
  ``{"ExecutionArn", "SdkHttpMetadata", "SdkResponseMetadata", "StartDate"}`` (an ISO 8601 string). The
  execution runs in the background, owned by the integrations: ``await integrations.aclose()`` waits for
  the running ones (each at most its own maximum duration) before the server stops. At most
  :data:`MAX_STARTED` run at once per worker; beyond, ``StepFunctions.ExecutionLimitExceededException``.
- ``startSyncExecution`` (express's own: Step Functions has no optimized integration for it, and an
  Express workflow cannot use ``.sync``) runs the execution to its end inside the Task and answers as the
  StartSyncExecution API does, with Step Functions' field casing: ``ExecutionArn``, ``StateMachineArn``,
  ``Name``, ``StartDate``, ``StopDate``, ``Status``, ``Output`` (JSON text, when SUCCEEDED) or ``Error`` and
  ``Cause``, ``Input``, ``InputDetails``, ``OutputDetails`` and ``BillingDetails``. A child that fails does
  not fail the Task (as with the API, its ``Status`` says so; a Choice can look at it). It runs within the
  Task's ``TimeoutSeconds`` and the parent's deadline: past them the child is stopped.

Errors, named as Step Functions names the service's: ``StepFunctions.StateMachineDoesNotExistException``,
``StepFunctions.InvalidArnException``, ``StepFunctions.InvalidNameException``,
``StepFunctions.InvalidExecutionInputException``, ``StepFunctions.ValidationException`` (an input over the
payload limit), and ``States.TaskFailed`` for a missing or mistyped parameter.

``integrations.machines`` finds the machines: anything with ``machine(arn) -> Machine | None``
(the service's registry; with a store it also has ``async catch_up()``, tried before answering that a
machine does not exist) or a mapping of ARN -> Machine.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Coroutine, Mapping
from email.utils import formatdate
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, ExecutionTimedOut
from express.asl.limits import decode_refusal, input_refusal
from express.asl.timestamps import format_timestamp
from express.asl.uuids import uuid4
from express.engine.frame import Frame
from express.engine.tasks import Invoker
from express.integrations import Integrations

MAX_STARTED = 10_000  # background executions per worker (the HTTP API's StartExecution has the same bound)
_POOL = "states.started"
_RESOURCE = re.compile(r"^arn:aws[\w-]*:states:::states:(?P<action>startExecution|startSyncExecution)$")
# what an execution name may not hold (as the StepFunctions API checks it)
_BAD_NAME = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]')


def _utf8_size(text: str) -> int:
    """The input's size as AWS counts it: UTF-8 bytes."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def build(resource: str, integrations: Integrations) -> Invoker | None:
    m = _RESOURCE.match(resource)
    if m is None:
        return None
    if m.group("action") == "startExecution":
        async def start_execution(eff: Any, frame: Frame, timeout: float | None) -> Any:
            machine, arn, name, text, value = await _request(eff, integrations.machines)
            start = machine.engine.clock.now()
            started(integrations).spawn(machine, machine.execute(value, name=name, arn=arn, mode="async",
                                                                 input_size=_utf8_size(text)))
            return _start_answer(arn, start)

        return start_execution

    async def start_sync_execution(eff: Any, frame: Frame, timeout: float | None) -> Any:
        machine, arn, name, text, value = await _request(eff, integrations.machines)
        run = machine.execute(value, name=name, arn=arn, mode="sync", input_size=_utf8_size(text))
        result = await _within(run, frame, timeout)
        answer: dict[str, Any] = {
            "ExecutionArn": arn, "StateMachineArn": machine.arn, "Name": name,
            "StartDate": format_timestamp(result.start_time), "StopDate": format_timestamp(result.stop_time),
            "Status": result.status,
        }
        if result.status == "SUCCEEDED":
            answer["Output"] = orjson.dumps(result.output).decode()
        else:
            if result.error is not None:
                answer["Error"] = result.error
            if result.cause is not None:
                answer["Cause"] = result.cause
        answer["Input"] = text
        answer["InputDetails"] = {"Included": True}
        answer["OutputDetails"] = {"Included": True}
        answer["BillingDetails"] = {"BilledMemoryUsedInMB": result.billed_memory_mb,
                                    "BilledDurationInMilliseconds": result.billed_duration_ms}
        return answer

    return start_sync_execution


async def _request(eff: Any, machines: Any) -> tuple[Any, str, str, str, Any]:
    """(machine, execution ARN, name, input text, input value) of the Task's parameters, or its error."""
    if not isinstance(eff, dict):
        raise ASLError(errors.TASK_FAILED, "The parameters must be an object with a StateMachineArn", located=True)
    machine_arn = eff.get("StateMachineArn")
    if not isinstance(machine_arn, str):
        raise ASLError(errors.TASK_FAILED, "The field 'StateMachineArn' is required and must be a string",
                       located=True)
    name = eff.get("Name")
    if name is None:
        name = uuid4()
    elif not isinstance(name, str) or not name or len(name) > 80 or _BAD_NAME.search(name):
        raise _service_error("InvalidName", f"Invalid Name: '{_clip(name)}'")
    text, value = _input(eff.get("Input"))
    if not machine_arn.startswith("arn:") or ":stateMachine:" not in machine_arn:
        raise _service_error("InvalidArn", f"Invalid Arn: '{_clip(machine_arn)}'")
    machine = await _find(machines, machine_arn)
    if machine is None:
        raise _service_error("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{_clip(machine_arn)}'")
    if _utf8_size(text) > machine.engine.max_payload_bytes:
        raise _service_error("ValidationException", "1 validation error detected: Value at 'input' failed to satisfy "
                             f"constraint: Member must have length less than or equal to "
                             f"{machine.engine.max_payload_bytes}")
    arn = f"{machine.arn.replace(':stateMachine:', ':express:', 1)}:{name}:{uuid4()}"
    return machine, arn, name, text, value


def _input(raw: Any) -> tuple[str, Any]:
    """(JSON text, private value) of the Input parameter: a string is JSON text, anything else a value."""
    if raw is None:
        return "{}", {}
    if isinstance(raw, str):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            deep = decode_refusal(e)
            raise _service_error("InvalidExecutionInput",
                                 f"Invalid State Machine Execution Input: '{deep[1] if deep else e}'") from None
        refused = input_refusal(raw, value)
        if refused is not None:
            raise _service_error("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{refused[1]}'")
        return raw, value
    try:
        text = orjson.dumps(raw).decode()
    except TypeError as e:  # nested too deeply, an integer beyond 64 bits
        raise _service_error("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{e}'") from None
    return text, orjson.loads(text)  # the child's own copy, as a start over the API would give it


async def _find(machines: Any, arn: str) -> Any:
    if machines is None:
        return None
    if isinstance(machines, Mapping):
        return machines.get(arn)
    machine = machines.machine(arn)
    if machine is None:
        catch_up = getattr(machines, "catch_up", None)  # made through another worker, not followed yet?
        if catch_up is not None and await catch_up():
            machine = machines.machine(arn)
    return machine


def _service_error(code: str, message: str) -> ASLError:
    """An error of the StepFunctions API, as a Task calling it reports it."""
    name = code if code.endswith("Exception") else code + "Exception"
    return ASLError(f"StepFunctions.{name}",
                    f"{message} (Service: AWSStepFunctions; Status Code: 400; Error Code: {code}; "
                    f"Request ID: {uuid4()}; Proxy: null)", located=True)


def _clip(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _start_answer(arn: str, start: float) -> dict[str, Any]:
    """StartExecution's answer as the optimized integration gives it: with the SDK's HTTP metadata."""
    request_id = uuid4()
    date = formatdate(usegmt=True)
    length = str(len(orjson.dumps({"executionArn": arn, "startDate": start})))
    return {
        "ExecutionArn": arn,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {"x-amzn-RequestId": [request_id], "connection": ["keep-alive"],
                               "Content-Length": [length], "Date": [date],
                               "Content-Type": ["application/x-amz-json-1.0"]},
            "HttpHeaders": {"connection": "keep-alive", "Content-Length": length,
                            "Content-Type": "application/x-amz-json-1.0", "Date": date,
                            "x-amzn-RequestId": request_id},
            "HttpStatusCode": 200},
        "SdkResponseMetadata": {"RequestId": request_id},
        "StartDate": format_timestamp(start),
    }


async def _within(run: Coroutine[Any, Any, Any], frame: Frame, timeout: float | None) -> Any:
    """Await the child execution within the Task's timeout and the parent's deadline. The child runs
    on the engine's clock, so on a virtual clock its waits and the timeout are both virtual."""
    ex = frame.execution
    remaining = ex.deadline - ex.clock.now()
    is_task_timeout = timeout is not None and timeout <= remaining
    limit = max(0.0, remaining if timeout is None else min(timeout, remaining))
    if not ex.clock.virtual:
        try:
            async with asyncio.timeout(limit):
                return await run
        except TimeoutError:
            if is_task_timeout:
                raise ASLError(errors.TIMEOUT, "", located=True) from None
            raise ExecutionTimedOut() from None
    work = asyncio.ensure_future(run)
    timer = asyncio.ensure_future(ex.clock.sleep(limit))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    if not work.cancelled():
        return work.result()
    if is_task_timeout:
        raise ASLError(errors.TIMEOUT, "", located=True)
    raise ExecutionTimedOut()


class StartedExecutions:
    """The executions ``startExecution`` started in one worker: bounded, and awaited by :meth:`aclose`."""

    def __init__(self, limit: int = MAX_STARTED) -> None:
        self.limit = limit
        self._running: dict[asyncio.Task[Any], float] = {}  # -> the monotonic time it must have ended by
        self._closed = False

    def __len__(self) -> int:
        return len(self._running)

    def spawn(self, machine: Any, run: Coroutine[Any, Any, Any]) -> None:
        if self._closed or len(self._running) >= self.limit:
            run.close()
            raise _service_error("ExecutionLimitExceeded", "The server is stopping: no more executions start"
                                 if self._closed else
                                 f"The maximum number of running executions ({self.limit}) has been reached")
        task = asyncio.get_running_loop().create_task(run, name=f"express-started-{machine.name}")
        self._running[task] = time.monotonic() + machine.engine.max_duration_s
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._running.pop(task, None)
        if not task.cancelled() and task.exception() is not None:  # execute() reports rather than raises
            from express.observe.logs import emit_message

            emit_message("", f"ERROR: an execution started by a Task ended with {task.exception()!r}")

    async def aclose(self) -> None:
        """Wait for the running executions (each until its own maximum duration; those they start
        too), then stop whatever is left; later starts are refused. Idempotent."""
        while self._running:
            running = dict(self._running)
            wait = max(running.values()) - time.monotonic() + 1.0
            _, pending = await asyncio.wait(running, timeout=max(0.0, wait))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        self._closed = True


def started(integrations: Integrations) -> StartedExecutions:
    """The executions these integrations' ``startExecution`` Tasks started (made on first use)."""
    pool: StartedExecutions = integrations.pooled(_POOL, StartedExecutions)
    return pool


async def drain(integrations: Integrations) -> None:
    """Wait for the executions Tasks started (see :meth:`StartedExecutions.aclose`): before the other
    pooled clients close, since those executions may still use them."""
    await started(integrations).aclose()
