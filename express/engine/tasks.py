"""Task resources: how a Task state's Resource is bound to a Python callable.

``functions`` maps a Lambda function name or ARN (or any other resource ARN, for custom service
integrations) to a plain or async callable. The payload a callable receives is a private copy made
through JSON, as Lambda receives it, so nothing it does can alter the execution's data; its
return value goes through JSON as well (bytes are a raw JSON payload, as Lambda's runtime treats
them). An exception raised by the callable becomes the ASL error named after its class, with the
error payload Lambda's Python runtime reports (errorMessage, errorType, requestId, stackTrace).

``arn:aws:states:::lambda:invoke`` answers with Lambda's Invoke response as Step Functions returns
it: ExecutedVersion, Payload, SdkHttpMetadata (AllHttpHeaders, HttpHeaders, HttpStatusCode),
SdkResponseMetadata and StatusCode, plus LogResult for ``LogType: Tail``. A string ``Payload`` is
the request body itself (JSON text, as the Invoke API takes it); a null or absent one invokes the
function with ``{}``.
"""
from __future__ import annotations

import asyncio
import base64
import inspect
import json
import re
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import Any, Protocol

import orjson

from express.asl import errors
from express.asl.errors import ASLError, ExecutionTimedOut
from express.asl.uuids import uuid4
from express.engine.frame import Frame

MAX_PAYLOAD_BYTES = 256 * 1024
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_LAMBDA_ARN = re.compile(r"^arn:aws[\w-]*:lambda:[^:]*:[^:]*:function:(?P<name>[^:]+)(?::(?P<qual>[^:]+))?$")
_STATES_ARN = re.compile(r"^arn:aws[\w-]*:states:[^:]*:[^:]*:(?P<service>[^:]+):(?P<action>.+)$")
_ACTIVITY_ARN = re.compile(r"^arn:aws[\w-]*:states:[^:]*:[^:]*:activity:.+$")
_PARTIAL_ARN = re.compile(r"^(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<qual>[^:]+))?$")

Invoker = Callable[[Any, Frame, float | None], Any]  # async (effective input, frame, timeout) -> result


class ResourceProvider(Protocol):
    """Runs the Task resources no function is bound to: the service integrations
    (:class:`express.integrations.Integrations`), passed in as ``Engine(integrations=...)``.

    An invoker whose attribute ``takes_credentials`` is true is called with the keyword argument ``credentials``: the
    Task's evaluated ``Credentials`` (e.g. ``{"RoleArn": ...}``) or None."""

    def invoker(self, resource: str) -> Invoker | None:
        """The invoker of ``resource``; None if no integration runs it; ValueError (its message is the
        definition's problem at the Resource) for one an integration knows but cannot bind."""


# A Distributed Map's ItemReader, bound: (its evaluated Parameters/Arguments, MaxItems or None for
# all, frame) -> an async iterator of the items, read lazily (errors are ASLErrors).
ItemReader = Callable[[dict[str, Any], "int | None", Frame], AsyncIterator[Any]]


class ResultSink(Protocol):
    """Where one Map Run's results go (ResultWriter): ``add`` each record as it is known (status
    SUCCEEDED, FAILED or PENDING; the value written for it), then ``finish`` once, which answers the
    ``ResultWriterDetails`` (``{"Bucket", "Key"}`` of the manifest)."""

    async def add(self, status: str, record: Any) -> None: ...

    async def finish(self) -> dict[str, Any]: ...


# A ResultWriter, bound: (its evaluated Parameters/Arguments, the Map Run ARN, frame) -> the sink.
ResultWriter = Callable[[dict[str, Any], str, Frame], ResultSink]


class MapRunProvider(Protocol):
    """The optional part of a :class:`ResourceProvider` a Distributed Map asks for (the compiler
    looks the methods up by name): None if it cannot read/write that resource; ValueError (the
    definition's problem at the ReaderConfig/WriterConfig) for a configuration it cannot run."""

    def item_reader(self, resource: str, reader_config: dict[str, Any]) -> ItemReader | None: ...

    def result_writer(self, resource: str, writer_config: dict[str, Any]) -> ResultWriter | None: ...


def unsupported_reason(resource: str) -> str | None:
    """Why Express cannot run this resource, or None."""
    if _ACTIVITY_ARN.match(resource):
        return f"Activity resources are not supported by Express workflows: {resource}"
    if resource.endswith(".waitForTaskToken"):
        return f"The .waitForTaskToken integration pattern is not supported by Express workflows: {resource}"
    if re.search(r"\.sync(:\d+)?$", resource):
        return f"The .sync integration pattern is not supported by Express workflows: {resource}"
    return None


# The optimized integrations AWS knows (``arn:aws:states:::SERVICE:ACTION``), for telling a
# resource AWS would run (only not bound here) from one AWS itself does not recognize.
_OPTIMIZED: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "apigateway": "invoke",
    "athena": "startQueryExecution stopQueryExecution getQueryExecution getQueryResults",
    "batch": "submitJob",
    "bedrock": "invokeModel createModelCustomizationJob",
    "codebuild": "startBuild stopBuild batchDeleteBuilds batchGetReports startBuildBatch",
    "databrew": "startJobRun",
    "dynamodb": "getItem putItem updateItem deleteItem",
    "ecs": "runTask",
    "eks": "createCluster createNodegroup createFargateProfile deleteCluster deleteFargateProfile "
           "deleteNodegroup runJob call",
    "elasticmapreduce": "createCluster setClusterTerminationProtection modifyInstanceFleetByName "
                        "modifyInstanceGroupByName terminateCluster addStep cancelStep",
    "emr-containers": "createVirtualCluster deleteVirtualCluster startJobRun",
    "emr-serverless": "createApplication startApplication stopApplication deleteApplication "
                      "startJobRun cancelJobRun",
    "events": "putEvents",
    "glue": "startJobRun",
    "http": "invoke",
    "lambda": "invoke",
    "mediaconvert": "createJob",
    "sagemaker": "createEndpoint createEndpointConfig createHyperParameterTuningJob createLabelingJob "
                 "createModel createProcessingJob createTrainingJob createTransformJob updateEndpoint",
    "sns": "publish",
    "sqs": "sendMessage",
    "states": "startExecution",
}.items()}
_INTEGRATION = re.compile(r"^arn:aws[\w-]*:states:::(?P<service>[^:]+):(?P<action>[^:.]+)"
                          r"(?:\.(?:sync(?::2)?|waitForTaskToken))?$")


def recognized(resource: str) -> bool:
    """Would AWS accept this Task resource? False only for a Step Functions integration ARN naming
    a service or action AWS has no integration for (e.g. ``dynamodb:query``, an SDK-only action)."""
    m = _INTEGRATION.match(resource)
    if m is None:  # not an integration ARN (aws-sdk:SERVICE:ACTION has one more part)
        return True
    return m.group("action") in _OPTIMIZED.get(m.group("service"), frozenset())


def not_recognized_message(resource: str) -> str:
    return (f"The resource provided {resource} is not recognized. The value is not a valid resource ARN, "
            "or the resource is not available in this region.")


def lookup(functions: dict[str, Callable[..., Any]], name_or_arn: str) -> Callable[..., Any] | None:
    fn = functions.get(name_or_arn)
    if fn is not None:
        return fn
    m = _LAMBDA_ARN.match(name_or_arn) or _PARTIAL_ARN.match(name_or_arn)
    if m:
        return functions.get(m.group("name"))
    if ":" in name_or_arn and not name_or_arn.startswith("arn:"):
        return functions.get(name_or_arn.split(":", 1)[0])
    return None


def _function_parts(name_or_arn: str) -> tuple[str, str | None]:
    """(function name, qualifier or None) of a FunctionName: name, name:qualifier, or an ARN."""
    m = _LAMBDA_ARN.match(name_or_arn) or _PARTIAL_ARN.match(name_or_arn)
    if m:
        return m.group("name"), m.group("qual")
    name, _, qual = name_or_arn.partition(":")
    return name, qual or None


def _function_arn(name_or_arn: str, frame: Frame) -> str:
    """The qualified function ARN Lambda names in its errors (``...:function:NAME:$LATEST``)."""
    name, qual = _function_parts(name_or_arn)
    m = _LAMBDA_ARN.match(name_or_arn)
    if m:
        prefix = name_or_arn.split(":function:", 1)[0]
    else:
        # the region and account of the state machine: arn:aws:states:REGION:ACCOUNT:stateMachine:NAME
        parts = frame.execution.machine_arn.split(":")
        region, account = (parts[3], parts[4]) if len(parts) > 4 else ("us-east-1", "000000000000")
        pm = _PARTIAL_ARN.match(name_or_arn)
        if pm:
            account = pm.group("account")
        prefix = f"arn:aws:lambda:{region}:{account}"
    return f"{prefix}:function:{name}:{qual or '$LATEST'}"


def _aws_request_suffix(status: int, code: str) -> str:
    return (f" (Service: AWSLambda; Status Code: {status}; Error Code: {code}; "
            f"Request ID: {uuid4()}; Proxy: null)")


def _to_json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as e:
        raise ASLError(errors.TASK_FAILED, f"The task input is not JSON-serialisable: {e}", located=True) from None


def _result_bytes(value: Any) -> bytes:
    """What the function answered, as the bytes of a Lambda response body."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    try:
        return orjson.dumps(value)
    except TypeError as e:
        raise ASLError("Lambda.Unknown", f"The function returned a value that is not JSON: {e}",
                       located=True) from None


def _too_large(resource: str) -> ASLError:
    return ASLError(
        errors.DATA_LIMIT_EXCEEDED,
        f"The state/task '{resource}' returned a result with a size exceeding the maximum "
        "number of bytes service limit.",
        located=True,
    )


def _parse_result(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def _result_from(value: Any, resource: str) -> Any:
    """The function's answer as the task's result: through JSON, bounded by the payload limit.
    (The steps of _result_bytes and _parse_result, inline: this is every Lambda Task's path.)"""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        try:
            raw = orjson.dumps(value)
        except TypeError as e:
            raise ASLError("Lambda.Unknown", f"The function returned a value that is not JSON: {e}",
                           located=True) from None
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise _too_large(resource)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def exception_to_error(exc: BaseException, compact: bool = False) -> ASLError:
    """A Python exception raised by a task callable, as Lambda's Python runtime reports an unhandled
    error: its payload text is Python's ``json.dumps`` of it; through ``lambda:invoke`` Step
    Functions passes it on re-serialised without spaces (``compact``)."""
    name = type(exc).__name__
    tb = exc.__traceback__
    # the function's own frames, as Lambda's trace shows the handler's (not the runtime's)
    frames = traceback.format_tb(tb.tb_next if tb is not None and tb.tb_next is not None else tb)
    payload = {
        "errorMessage": str(exc),
        "errorType": name,
        "requestId": uuid4(),
        "stackTrace": frames[-5:],
    }
    cause = orjson.dumps(payload).decode() if compact else json.dumps(payload)
    return ASLError(name, cause, located=True)


async def call(fn: Callable[..., Any], event: Any, ex_frame: Frame, timeout: float | None,
               compact_errors: bool = False) -> Any:
    """Run ``fn`` on ``event`` (a private copy: see :func:`private_event`); its raw answer."""
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
        raise exception_to_error(exc, compact_errors) from None
    return result


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


def private_event(payload: Any) -> Any:
    """The payload as the function receives it: a copy made through JSON, as Lambda's is."""
    return orjson.loads(_to_json_bytes(payload))


def _invoke_event(eff: dict[str, Any]) -> Any:
    """The event a lambda:invoke Payload gives the function: a string is the request body (JSON
    text), null or absent is ``{}``."""
    if "Payload" not in eff:
        return {}
    payload = eff["Payload"]
    if payload is None:
        return {}
    if isinstance(payload, str):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            token = payload.strip().split(None, 1)[0][:40] if payload.strip() else ""
            raise ASLError(
                "Lambda.InvalidRequestContentException",
                "Could not parse request body into json: Could not parse payload into json: "
                f"Unrecognized token '{token}': was expecting (JSON String, Number, Array, Object or token "
                "'null', 'true' or 'false')" + _aws_request_suffix(400, "InvalidRequestContentException"),
                located=True) from None
    return private_event(payload)


def _content_length(value: Any, raw: bytes) -> int:
    """Content-Length of the function's response: Lambda's Python runtime writes ``json.dumps``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(raw)
    try:
        return len(json.dumps(value).encode())
    except (TypeError, ValueError):
        return len(raw)


def _log_tail(request_id: str, version: str, started: float) -> str:
    """A base64 LogResult: the runtime's START/END/REPORT lines for this invocation."""
    ms = max(0.01, (time.monotonic() - started) * 1000.0)
    text = (f"START RequestId: {request_id} Version: {version}\n"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {ms:.2f} ms\tBilled Duration: {int(ms) + 1} ms\t"
            "Memory Size: 128 MB\tMax Memory Used: 40 MB\t\n")
    return base64.b64encode(text.encode()).decode()


def invoke_response(payload: Any, content_length: int, version: str = "$LATEST",
                    log_result: str | None = None) -> dict[str, Any]:
    """The result of ``arn:aws:states:::lambda:invoke``: Lambda's Invoke response with the HTTP
    metadata Step Functions adds, headers in the order and case AWS shows them."""
    request_id = uuid4()
    date = formatdate(usegmt=True)
    trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
    length = str(content_length)
    all_headers: dict[str, Any] = {}
    if log_result is not None:
        all_headers["X-Amz-Log-Result"] = [log_result]
    all_headers.update({
        "X-Amz-Executed-Version": [version], "x-amzn-Remapped-Content-Length": ["0"],
        "Connection": ["keep-alive"], "x-amzn-RequestId": [request_id], "Content-Length": [length],
        "Date": [date], "X-Amzn-Trace-Id": [trace], "Content-Type": ["application/json"]})
    headers = {"Connection": "keep-alive", "Content-Length": length, "Content-Type": "application/json",
               "Date": date, "X-Amz-Executed-Version": version}
    if log_result is not None:
        headers["X-Amz-Log-Result"] = log_result
    headers.update({"x-amzn-Remapped-Content-Length": "0", "x-amzn-RequestId": request_id,
                    "X-Amzn-Trace-Id": trace})
    out: dict[str, Any] = {"ExecutedVersion": version}
    if log_result is not None:
        out["LogResult"] = log_result
    out["Payload"] = payload
    out["SdkHttpMetadata"] = {"AllHttpHeaders": all_headers, "HttpHeaders": headers, "HttpStatusCode": 200}
    out["SdkResponseMetadata"] = {"RequestId": request_id}
    out["StatusCode"] = 200
    return out


def build_invoker(resource: str, functions: dict[str, Callable[..., Any]],
                  provider: ResourceProvider | None = None) -> Invoker:
    """The coroutine that runs a Task's Resource; raises ValueError when it cannot be bound.

    A function bound to the resource (by name or ARN) wins; ``lambda:invoke`` runs a bound function
    locally and asks ``provider`` (which calls Lambda) for the others; any other resource goes to
    ``provider``."""
    if resource == LAMBDA_INVOKE or resource.startswith(LAMBDA_INVOKE + ":"):
        remote = provider.invoker(resource) if provider is not None else None
        async def lambda_invoke(eff: Any, frame: Frame, timeout: float | None) -> Any:
            if not isinstance(eff, dict) or not isinstance(eff.get("FunctionName"), str):
                raise ASLError(errors.TASK_FAILED, "The field 'FunctionName' is required", located=True)
            name = eff["FunctionName"]
            fn = lookup(functions, name)
            if fn is None and remote is not None:
                return await remote(eff, frame, timeout)
            if fn is None:
                raise ASLError(
                    "Lambda.ResourceNotFoundException",
                    f"Function not found: {_function_arn(name, frame)}"
                    + _aws_request_suffix(404, "ResourceNotFoundException"), located=True)
            started = time.monotonic()
            value = await call(fn, _invoke_event(eff), frame, timeout, compact_errors=True)
            raw = _result_bytes(value)
            if len(raw) > MAX_PAYLOAD_BYTES:
                raise _too_large("lambda")  # AWS names the integration here, not the function
            qual = _function_parts(name)[1]
            version = qual if qual is not None and qual.isdigit() else "$LATEST"
            log = _log_tail(uuid4(), version, started) if eff.get("LogType") == "Tail" else None
            return invoke_response(_parse_result(raw), _content_length(value, raw), version, log)

        return lambda_invoke

    fn = lookup(functions, resource)
    if fn is None and provider is not None:
        invoker = provider.invoker(resource)
        if invoker is not None:
            return invoker
    if fn is None:
        raise ValueError(
            f"No function is registered for the Task resource '{resource}' "
            "(pass it in Engine(functions={...}) by name or ARN)")

    async def direct(eff: Any, frame: Frame, timeout: float | None) -> Any:
        # private_event, inline: this is every Lambda Task's path
        return _result_from(await call(fn, orjson.loads(_to_json_bytes(eff)), frame, timeout), resource)

    return direct
