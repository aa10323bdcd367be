"""The optimized AWS integrations that Express workflows call request-response, through the worker's
pooled aiobotocore clients:

- ``arn:aws:states:::lambda:invoke`` of a function not bound in ``[functions]``: Lambda's Invoke,
  answered as :func:`express.engine.tasks.invoke_response` answers for a bound one (ExecutedVersion,
  the Payload parsed, SdkHttpMetadata with the response's headers, SdkResponseMetadata, StatusCode;
  LogResult for ``LogType: Tail``). A string Payload is the request body itself, null or absent
  is ``{}``. A function error is the error named by its ``errorType``, its payload the cause.
- a Lambda function ARN as the Task's Resource: Invoke with the effective input; the result is the
  function's answer (JSON, else text), a function error as above with Lambda's payload as the cause;
- ``sqs:sendMessage``, ``sns:publish`` and ``dynamodb:getItem|putItem|updateItem|deleteItem``: the
  API's request (PascalCase members; ``MessageBody``/``Message`` given as JSON receive its text) and
  its result plus SdkHttpMetadata (``AllHttpHeaders``, ``HttpHeaders`` in case-insensitive order,
  ``HttpStatusCode``) and SdkResponseMetadata (``RequestId``);
- ``events:putEvents``: ``Detail`` given as JSON is sent as its text, the state machine's and the
  execution's ARNs are appended to each entry's ``Resources``; the result is PutEvents' (Entries,
  FailedEntryCount), and a non-zero FailedEntryCount fails the state with ``EventBridge.FailedEntry``
  (the result as the cause).

Errors follow Step Functions: for Lambda, SQS, SNS and DynamoDB, the AWS SDK for Java 1.x names
(``SQS.QueueDoesNotExistException``, ``DynamoDB.ConditionalCheckFailedException``, the service's base
``SQS.AmazonSQSException`` for an error it does not model, ``Lambda.SdkClientException`` when no
answer came) and causes ``<message> (Service: AmazonSQS; Status Code: 400; Error Code: ...; Request
ID: ...; Proxy: null)``; for EventBridge those of the 2.x SDK, as the AWS SDK integrations
(:mod:`express.integrations.aws_sdk`, which also converts requests and results).
"""
from __future__ import annotations

import asyncio
import re
import weakref
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError
from express.engine import tasks
from express.engine.frame import Frame
from express.integrations import Integrations, aws
from express.integrations.aws_sdk import (
    Api,
    ParameterProblem,
    client_failure,
    error_code,
    json_text,
    parameters_failed,
    read_bounded,
    validation_report,
)

_STATES = re.compile(r"^arn:aws[\w-]*:states:::(?P<service>[^:.]+):(?P<action>[^:.]+)$")
_FUNCTION_ARN = re.compile(r"^arn:aws[\w-]*:lambda:(?P<region>[^:]*):\d{12}:function:[^:]+(?::[^:]+)?$")

# (Step Functions' service, action) -> botocore's operation
_OPERATIONS = {
    ("lambda", "invoke"): "Invoke",
    ("sqs", "sendMessage"): "SendMessage",
    ("sns", "publish"): "Publish",
    ("dynamodb", "getItem"): "GetItem",
    ("dynamodb", "putItem"): "PutItem",
    ("dynamodb", "updateItem"): "UpdateItem",
    ("dynamodb", "deleteItem"): "DeleteItem",
    ("events", "putEvents"): "PutEvents",
}


class _V1:
    """How the AWS SDK for Java 1.x names a service's errors: the prefix of Step Functions' error
    name, the service's base exception, the service name in the cause."""

    def __init__(self, prefix: str, base: str, service: str) -> None:
        self.prefix = prefix
        self.base = base
        self.service = service


_V1_NAMES = {
    "lambda": _V1("Lambda", "AWSLambdaException", "AWSLambda"),
    "sqs": _V1("SQS", "AmazonSQSException", "AmazonSQS"),
    "sns": _V1("SNS", "AmazonSNSException", "AmazonSNS"),
    "dynamodb": _V1("DynamoDB", "AmazonDynamoDBException", "AmazonDynamoDBv2"),
}


def _v1_error(api: Api, names: _V1, exc: BaseException) -> ASLError:
    from botocore.exceptions import ClientError, ParamValidationError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata", {}) or {}
        name = api.exception(error_code(err), v1=True) or names.base
        cause = (f"{err.get('Message')} (Service: {names.service}; Status Code: {meta.get('HTTPStatusCode')}; "
                 f"Error Code: {err.get('Code')}; Request ID: {meta.get('RequestId')}; Proxy: null)")
        return ASLError(f"{names.prefix}.{name}", cause, located=True)
    if isinstance(exc, ParamValidationError):
        cause = (f"{validation_report(exc)} (Service: {names.service}; Status Code: 400; Error Code: null; "
                 "Request ID: null; Proxy: null)")
        return ASLError(f"{names.prefix}.{names.base}", cause, located=True)
    return ASLError(f"{names.prefix}.SdkClientException", client_failure(exc), located=True)


# ------------------------------------------------------------------------------- HTTP metadata
def _keep_headers(http_response: Any = None, parsed: Any = None, **_: Any) -> None:
    """botocore's after-call hook: the response's headers as the server wrote them (botocore's own
    copy is in lower case), for SdkHttpMetadata."""
    raw = getattr(getattr(http_response, "raw", None), "raw_headers", None)
    if raw is not None and isinstance(parsed, dict):
        meta = parsed.setdefault("ResponseMetadata", {})
        meta["RawHeaders"] = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]


def http_metadata(response: dict[str, Any]) -> dict[str, Any]:
    """SdkHttpMetadata and SdkResponseMetadata of a botocore response (the 1.x SDK's)."""
    meta = response.get("ResponseMetadata", {}) or {}
    pairs = meta.get("RawHeaders") or list((meta.get("HTTPHeaders") or {}).items())
    all_headers: dict[str, list[str]] = {}
    for name, value in pairs:
        all_headers.setdefault(name, []).append(value)
    headers = {name: values[-1] for name, values in sorted(all_headers.items(), key=lambda kv: kv[0].lower())}
    return {"SdkHttpMetadata": {"AllHttpHeaders": all_headers, "HttpHeaders": headers,
                                "HttpStatusCode": meta.get("HTTPStatusCode")},
            "SdkResponseMetadata": {"RequestId": meta.get("RequestId")}}


# ------------------------------------------------------------------------------- invokers
class _Invoker:
    """One optimized resource: request from the effective input, the call raced against the Task's
    timeout and the execution's deadline, the result with Step Functions' envelope."""

    takes_credentials = True

    def __init__(self, resource: str, pool: aws.AwsClients, service: str, operation: str) -> None:
        self.resource = resource
        self.pool = pool
        self.service = service
        self.operation = operation
        self.names = _V1_NAMES.get(service)
        self._api: Api | None = None
        self._hooked: weakref.WeakSet[Any] = weakref.WeakSet()  # clients the header hook is registered on

    @property
    def api(self) -> Api:
        assert self._api is not None, "bound on the first call"
        return self._api

    async def _bind(self) -> None:
        # on the first call, in a thread (the model is a file of up to megabytes): binding needs no
        # model, the actions being fixed, and a lambda:invoke that runs a bound function never reads it
        if self._api is None:
            self._api = await asyncio.to_thread(Api, self.pool, self.service, self.operation)

    async def __call__(self, eff: Any, frame: Frame, timeout: float | None, credentials: Any = None) -> Any:
        if self._api is None:
            await self._bind()
        try:
            params = self.request(eff, frame)
        except ParameterProblem as e:
            raise parameters_failed(eff, e) from None
        await self.reachable(params, frame)
        role = credentials.get("RoleArn") if isinstance(credentials, dict) else None
        job = (params, self.region(eff, frame), role if isinstance(role, str) else None)
        return await tasks.call(self._send, job, frame, timeout)

    def request(self, eff: Any, frame: Frame) -> dict[str, Any]:
        return self.api.request(eff)

    def region(self, eff: Any, frame: Frame) -> str | None:
        return aws.machine_region(frame)

    async def reachable(self, params: dict[str, Any], frame: Frame) -> None:
        """Raise the error of a service that cannot be called here (see _Lambda)."""

    async def _send(self, job: tuple[dict[str, Any], str | None, str | None]) -> Any:
        params, region, role = job
        api = self.api
        try:
            client = await self.pool.client(self.service, self.pool.region(region), role)
            if self.names is not None and client not in self._hooked:
                event = f"after-call.{client.meta.service_model.service_id.hyphenize()}.{api.operation.name}"
                client.meta.events.register(event, _keep_headers, unique_id=f"express-headers:{event}")
                self._hooked.add(client)
            response = await getattr(client, api.method)(**params)
            result = await self.result(response)
        except ASLError:
            raise
        except Exception as e:  # botocore's and the connection's failures, named at this one boundary
            raise (api.error(e) if self.names is None else _v1_error(api, self.names, e)) from None
        if len(orjson.dumps(result)) > tasks.MAX_PAYLOAD_BYTES:
            raise tasks._too_large(self.resource)
        return result

    async def result(self, response: dict[str, Any]) -> Any:
        result = await self.api.result(response, self.resource)
        result.update(http_metadata(response))
        return dict(sorted(result.items()))


class _PutEvents(_Invoker):
    def request(self, eff: Any, frame: Frame) -> dict[str, Any]:
        params = self.api.request(eff)
        ex = frame.execution
        for entry in params.get("Entries") or ():
            entry["Resources"] = [*entry.get("Resources", ()), ex.machine_arn, ex.arn]
        return params

    async def result(self, response: dict[str, Any]) -> Any:
        result = await self.api.result(response, self.resource)
        if result.get("FailedEntryCount"):
            raise ASLError("EventBridge.FailedEntry", json_text(result), located=True)
        return result


def _function_region(name: Any) -> str | None:
    m = _FUNCTION_ARN.match(name) if isinstance(name, str) else None
    return (m.group("region") or None) if m else None


def _function_error(response: dict[str, Any], payload: bytes, compact: bool) -> ASLError:
    """Lambda's FunctionError: the error named by the payload's errorType, the payload the cause
    (through lambda:invoke re-serialised without spaces, as Step Functions passes it on)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = None
    name = body.get("errorType") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        name = "Lambda.Unknown"
    cause = orjson.dumps(body).decode() if compact and body is not None else payload.decode("utf-8", "replace")
    return ASLError(name, cause, located=True)


async def _payload(response: dict[str, Any]) -> bytes:
    body = response.get("Payload")
    if body is None:
        return b""
    if hasattr(body, "read"):
        return await read_bounded(body, "lambda")
    return bytes(body)


class _Lambda(_Invoker):
    """Lambda: with no AWS account to call (no credentials found, no endpoint configured), the only
    functions are those bound here, and an other one is not found, as Lambda answers (and as the
    engine answers without integrations) rather than failing for want of credentials."""

    async def reachable(self, params: dict[str, Any], frame: Frame) -> None:
        if self.pool.custom_endpoint("lambda") or await self.pool.has_credentials():
            return
        arn = tasks._function_arn(str(params.get("FunctionName")), frame)
        raise ASLError("Lambda.ResourceNotFoundException", f"Function not found: {arn}"
                       + tasks._aws_request_suffix(404, "ResourceNotFoundException"), located=True)


class _LambdaInvoke(_Lambda):
    """``lambda:invoke`` of a function no ``[functions]`` entry runs (the engine calls it then)."""

    def request(self, eff: Any, frame: Frame) -> dict[str, Any]:
        if not isinstance(eff, dict):
            return self.api.request(eff)
        rest = {k: v for k, v in eff.items() if k != "Payload"}
        params = self.api.request(rest)
        payload = eff.get("Payload")
        if payload is None:
            params["Payload"] = b"{}"
        elif isinstance(payload, str):
            params["Payload"] = payload.encode()  # the request body itself (JSON text)
        else:
            params["Payload"] = orjson.dumps(payload)
        return params

    def region(self, eff: Any, frame: Frame) -> str | None:
        return _function_region(eff.get("FunctionName") if isinstance(eff, dict) else None) \
            or aws.machine_region(frame)

    async def result(self, response: dict[str, Any]) -> Any:
        payload = await _payload(response)
        if response.get("FunctionError"):
            raise _function_error(response, payload, compact=True)
        if len(payload) > tasks.MAX_PAYLOAD_BYTES:
            raise tasks._too_large("lambda")  # AWS names the integration here, not the function
        out: dict[str, Any] = {"ExecutedVersion": response.get("ExecutedVersion", "$LATEST")}
        if response.get("LogResult") is not None:
            out["LogResult"] = response["LogResult"]
        out["Payload"] = tasks._parse_result(payload) if payload else None
        out.update(http_metadata(response))
        out["StatusCode"] = response.get("StatusCode", 200)
        return out


class _LambdaFunction(_Lambda):
    """A Lambda function ARN as the Task's Resource: Invoke with the effective input, the answer as
    the result."""

    def request(self, eff: Any, frame: Frame) -> dict[str, Any]:
        try:
            body = orjson.dumps(eff)
        except TypeError as e:
            raise ASLError(errors.TASK_FAILED, f"The task input is not JSON-serialisable: {e}", located=True) from None
        return {"FunctionName": self.resource, "Payload": body}

    def region(self, eff: Any, frame: Frame) -> str | None:
        return _function_region(self.resource) or aws.machine_region(frame)

    async def result(self, response: dict[str, Any]) -> Any:
        payload = await _payload(response)
        if response.get("FunctionError"):
            raise _function_error(response, payload, compact=False)
        if len(payload) > tasks.MAX_PAYLOAD_BYTES:
            raise tasks._too_large(self.resource)
        return tasks._parse_result(payload) if payload else None


def build(resource: str, integrations: Integrations) -> Any:
    """The invoker of an optimized integration resource or a Lambda function ARN; None for an
    action this module does not run (the engine then reports it)."""
    pool = aws.clients(integrations)
    if _FUNCTION_ARN.match(resource):
        return _LambdaFunction(resource, pool, "lambda", "Invoke")
    m = _STATES.match(resource)
    if m is None:
        return None
    service, action = m.group("service"), m.group("action")
    operation = _OPERATIONS.get((service, action))
    if operation is None:
        return None
    cls = _LambdaInvoke if service == "lambda" else _PutEvents if service == "events" else _Invoker
    return cls(resource, pool, service, operation)
