"""The AWS SDK integrations, ``arn:aws:states:::aws-sdk:<service>:<action>``: any action of any
service botocore has a model of, called the way Step Functions calls it (its AWS SDK for Java 2.x
conventions), plus the pieces the optimized integrations (:mod:`express.integrations.optimized`)
share: :class:`Api` (one operation: request in, result out, errors named).

Names. ``<service>`` is Step Functions' name, the SDK's package name (``sfn``, ``eventbridge``,
``cloudwatchlogs``, ``acmpca``, ...), mapped to botocore's (``stepfunctions``, ``events``, ``logs``,
``acm-pca``); ``<action>`` is the operation in camelCase (``getObject`` -> ``GetObject``). An unknown
service or action is the definition's problem at the Resource, with AWS's message.

Request. Parameters are the API's members in PascalCase (matched without regard to case; a member
Java reserves, ``Equals``, is ``EqualsValue``); null means absent. A string member given another
JSON value receives its JSON text; a blob receives the JSON text of its value when it is the
request's payload (S3's ``Body``: a string is stored as a JSON string, as AWS does), else a string
is base64 (text that is not base64 is taken as UTF-8). A field the API does not have, or a value
that cannot have the member's type, fails the state with ``States.Runtime`` as AWS words it
("The Parameters '...' could not be used to start the Task: [The field 'X' is not supported by
Step Functions]").

Result. The output members, first letter in upper case, keys of structures in alphabetical order
(maps keep theirs), ``ResponseMetadata`` left out; timestamps as ISO-8601 text in UTC
(``2024-05-01T12:00:00.123Z``); the payload blob (S3's ``Body``, Lambda's ``Payload``) as UTF-8 text,
other blobs as base64; bounded by the 256 KiB payload limit (a streamed body is read no further).

Errors. ``<Service>.<Exception>``: the service's name as the Java SDK spells it (``S3``,
``DynamoDb``, ``Sqs``, ``Sfn``, ``SecretsManager``, ``AcmPca``) and the exception the error code is
modeled as (``S3.NoSuchKeyException``, ``DynamoDb.ConditionalCheckFailedException``,
``Sqs.QueueDoesNotExistException``), the service's base exception for an error it does not model
(``SecretsManager.SecretsManagerException``), ``<Service>.SdkClientException`` when no answer came
(connection, credentials). The cause is AWS's: ``<message> (Service: S3, Status Code: 404, Request
ID: ..., Extended Request ID: ...)``. Parameters botocore rejects (a required one missing, a value
out of range) fail as the service would, with its base exception and status 400 (``Request ID:
null``: nothing was sent).
"""
from __future__ import annotations

import base64
import binascii
import datetime
import re
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError
from express.engine import tasks
from express.engine.frame import Frame
from express.integrations import Integrations, aws

_ARN = re.compile(r"^arn:aws[\w-]*:states:::aws-sdk:(?P<service>[^:.]+):(?P<action>[^:.]+)$")

# Step Functions (the Java SDK's package) names that botocore spells differently, beyond dashes
# (acmpca -> acm-pca). Derived from every botocore model's serviceId with the SDK's naming rule
# (:func:`java_service_name`, lower case).
_SERVICE_ALIASES = {
    "applicationdiscovery": "discovery", "cloudwatchlogs": "logs", "cognitoidentityprovider": "cognito-idp",
    "costandusagereport": "cur", "costexplorer": "ce", "databasemigration": "dms", "directory": "ds",
    "directoryservicedata": "ds-data", "elasticloadbalancing": "elb", "elasticloadbalancingv2": "elbv2",
    "elasticsearch": "es", "eventbridge": "events", "iotdataplane": "iot-data",
    "iotjobsdataplane": "iot-jobs-data", "lexmodelbuilding": "lex-models", "lexmodelsv2": "lexv2-models",
    "lexruntimev2": "lexv2-runtime", "marketplacemetering": "meteringmarketplace", "migrationhub": "mgh",
    "pinpointsmsvoice": "sms-voice", "serverlessapplicationrepository": "serverlessrepo",
    "sfn": "stepfunctions", "simpledb": "sdb",
}

# Member names the Java SDK renames with a "Value" suffix (Java keywords and the methods of its model
# classes): Step Functions' field for the member ``Equals`` is ``EqualsValue``.
_JAVA_RESERVED = frozenset((
    "abstract assert boolean break byte case catch char class const continue default do double else enum "
    "extends false final finally float for goto if implements import instanceof int interface long native new "
    "null package private protected public return short static strictfp super switch synchronized this throw "
    "throws transient true try void volatile while "
    "equals finalize getClass hashCode notify notifyAll toString wait builder sdkFields toBuilder "
    "overrideConfiguration sdkHttpResponse").split())

_MAX = tasks.MAX_PAYLOAD_BYTES


# ---------------------------------------------------------------------------------------- naming
def _words(text: str) -> list[str]:
    """The Java SDK's split of a name into words (CodegenNamingUtils.splitOnWordBoundaries)."""
    s = re.sub(r"[^A-Za-z0-9]+", " ", text)
    s = re.sub(r"([^a-z]{2,})v([0-9]+)", r"\1 v\2 ", s)
    s = re.sub(r"([^A-Z]{2,})V([0-9]+)", r"\1 V\2 ", s)
    s = re.sub(r"(?<=[a-z])(?=[A-Z](?:[a-zA-Z]|[0-9]))", " ", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    s = re.sub(r"([0-9])([a-zA-Z])", r"\1 \2", s)
    return s.split()


def pascal_case(text: str) -> str:
    """``DynamoDB`` -> ``DynamoDb``, ``ACM PCA`` -> ``AcmPca``: the Java SDK's pascalCase."""
    return "".join(w.lower().capitalize() for w in _words(text))


def java_service_name(service_id: str) -> str:
    """The Java SDK's name of a service from its model's serviceId (``SFN`` -> ``Sfn``): the prefix of
    Step Functions' error names for the AWS SDK integrations."""
    name = pascal_case(service_id)
    for lead in ("Amazon", "Aws"):
        if name.startswith(lead):
            name = name[len(lead):]
    if name.endswith("Service"):
        name = name[:-len("Service")]
    return name


def java_exception_name(shape_name: str) -> str:
    """The Java SDK's exception class of an error shape (``NoSuchKey`` -> ``NoSuchKeyException``)."""
    if shape_name.endswith("Fault"):
        return pascal_case(shape_name[:-len("Fault")]) + "Exception"
    if shape_name.endswith("Exception"):
        return pascal_case(shape_name)
    return pascal_case(shape_name) + "Exception"


def botocore_service(pool: aws.AwsClients, name: str) -> str | None:
    """botocore's name of Step Functions' service ``name``, or None when botocore has no model."""
    available = pool.available_services()
    if _SERVICE_ALIASES.get(name) in available:
        return _SERVICE_ALIASES[name]
    if name in available:
        return name
    for candidate in available:
        if candidate.replace("-", "") == name:
            return candidate
    return None


def _sfn_field(member: str) -> str:
    field = member[:1].upper() + member[1:]
    return field + "Value" if member[:1].lower() + member[1:] in _JAVA_RESERVED else field


# ---------------------------------------------------------------------------------------- values
def iso_timestamp(value: datetime.datetime) -> str:
    """ISO-8601 in UTC as the Java SDK prints an Instant: fraction only when not zero."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    us = value.microsecond
    if us:
        text += f".{us // 1000:03d}" if us % 1000 == 0 else f".{us:06d}"
    return text + "Z"


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


class ParameterProblem(Exception):
    """A Task's parameter the API cannot take: AWS's words for it (``The field 'X' is not supported
    by Step Functions``)."""


class _Unsupported(ParameterProblem):
    def __init__(self, field: str) -> None:
        super().__init__(f"The field '{field}' is not supported by Step Functions")


class _Invalid(ParameterProblem):
    def __init__(self, field: str) -> None:
        super().__init__(f"The value of the field '{field}' has an invalid format")


class _Missing(ParameterProblem):
    def __init__(self, field: str) -> None:
        super().__init__(f"The field '{field}' is required")


def parameters_failed(eff: Any, problem: ParameterProblem) -> ASLError:
    """States.Runtime for Parameters the API cannot take (the state adds where it happened)."""
    return ASLError(errors.RUNTIME, f"The Parameters '{json_text(eff)}' could not be used to start the Task: "
                                    f"[{problem}]")


# ---------------------------------------------------------------------------------------- one API
class Api:
    """One operation of one service: the request from a Task's effective input, the result as Step
    Functions returns it, errors by the Java SDK's names (``v1``: the 1.x SDK's, which the optimized
    integrations use: ``SQS.AmazonSQSException``)."""

    def __init__(self, pool: aws.AwsClients, service: str, operation: str) -> None:
        self.pool = pool
        self.service = service  # botocore's name
        self.model = pool.service_model(service)
        self.operation = self.model.operation_model(operation)
        from botocore import xform_name

        self.method = xform_name(operation)
        self.prefix = java_service_name(self.model.service_id)
        self._fields: dict[str, dict[str, tuple[str, Any]]] = {}  # structure shape -> lower field -> member
        self._exceptions: dict[str, str] | None = None
        out = self.operation.output_shape
        self.payload = out.serialization.get("payload") if out is not None else None
        inp = self.operation.input_shape
        self.input_payload = inp.serialization.get("payload") if inp is not None else None

    # -------------------------------------------------------------- request
    def request(self, eff: Any) -> dict[str, Any]:
        """botocore's parameters from the Task's effective input; ParameterProblem if it cannot be."""
        shape = self.operation.input_shape
        if shape is None:
            if eff in (None, {}):
                return {}
            raise _Unsupported(next(iter(eff)) if isinstance(eff, dict) and eff else "Parameters")
        if eff is None:
            return {}
        if not isinstance(eff, dict):
            raise _Invalid("Parameters")
        out: dict[str, Any] = self._structure_in(eff, shape, top=True)
        return out

    def _members(self, shape: Any) -> dict[str, tuple[str, Any]]:
        fields = self._fields.get(shape.name)
        if fields is None:
            fields = {}
            for name, member in shape.members.items():
                fields[name.lower()] = (name, member)
                alias = _sfn_field(name)
                if alias != name[:1].upper() + name[1:]:
                    fields[alias.lower()] = (name, member)
            self._fields[shape.name] = fields
        return fields

    def _structure_in(self, value: Any, shape: Any, top: bool = False) -> dict[str, Any]:
        members = self._members(shape)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue  # null: not set, as the SDK's builders take it
            found = members.get(key.lower()) if isinstance(key, str) else None
            if found is None:
                raise _Unsupported(key)
            name, member = found
            payload = top and name == self.input_payload
            out[name] = self._value_in(item, member, key, payload)
        for name in shape.required_members:
            if name not in out and shape.members[name].serialization.get("location") == "uri":
                # botocore cannot even build the request's URL without it
                raise _Missing(_sfn_field(name))
        return out

    def _value_in(self, value: Any, shape: Any, field: str, payload: bool = False) -> Any:
        kind = shape.type_name
        if kind == "structure":
            if not isinstance(value, dict):
                raise _Invalid(field)
            return self._structure_in(value, shape)
        if kind == "list":
            if not isinstance(value, list):
                raise _Invalid(field)
            return [self._value_in(v, shape.member, field) for v in value if v is not None]
        if kind == "map":
            if not isinstance(value, dict):
                raise _Invalid(field)
            return {k: self._value_in(v, shape.value, field) for k, v in value.items() if v is not None}
        if kind == "string":
            return value if isinstance(value, str) else json_text(value)
        if kind in ("integer", "long"):
            if isinstance(value, bool):
                raise _Invalid(field)
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    raise _Invalid(field) from None
            raise _Invalid(field)
        if kind in ("float", "double"):
            if isinstance(value, bool):
                raise _Invalid(field)
            if isinstance(value, (int, float)):
                return value
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    raise _Invalid(field) from None
            raise _Invalid(field)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise _Invalid(field)
        if kind == "timestamp":
            return _timestamp_in(value, field)
        if kind == "blob":
            if payload:
                return json_text(value).encode()
            if isinstance(value, str):
                try:
                    return base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    return value.encode()
            return json_text(value).encode()
        return value  # document (any JSON), or a type botocore itself checks

    # -------------------------------------------------------------- result
    async def result(self, response: dict[str, Any], resource: str) -> dict[str, Any]:
        """The Task's result from botocore's parsed response (the payload stream read, bounded)."""
        out = self.operation.output_shape
        if out is None:
            return {}
        if self.payload is not None:
            body = response.get(self.payload)
            if body is not None and hasattr(body, "read"):
                response[self.payload] = await read_bounded(body, resource)
        result: dict[str, Any] = self._structure_out(response, out, top=True)
        return result

    def _structure_out(self, value: dict[str, Any], shape: Any, top: bool = False) -> dict[str, Any]:
        members = shape.members
        out: dict[str, Any] = {}
        for key, item in value.items():
            if top and key == "ResponseMetadata":
                continue
            member = members.get(key)
            if member is None:
                out[key[:1].upper() + key[1:]] = _plain(item)
                continue
            out[_sfn_field(key)] = self._value_out(item, member, top and key == self.payload)
        ordered = dict(sorted(out.items()))
        if top and self.payload is not None and self.payload in ordered:
            ordered[self.payload] = ordered.pop(self.payload)  # AWS: the payload (S3's Body) last
        return ordered

    def _value_out(self, value: Any, shape: Any, payload: bool = False) -> Any:
        kind = shape.type_name
        if kind == "structure" and isinstance(value, dict):
            return self._structure_out(value, shape)
        if kind == "list" and isinstance(value, list):
            return [self._value_out(v, shape.member) for v in value]
        if kind == "map" and isinstance(value, dict):
            return {k: self._value_out(v, shape.value) for k, v in value.items()}
        return _plain(value, payload)

    # -------------------------------------------------------------- errors
    def exception(self, code: str, v1: bool = False) -> str | None:
        """The SDK's exception class of an error code, or None when the service does not model it."""
        if self._exceptions is None:
            self._exceptions = {}
            for shape in self.model.error_shapes:
                self._exceptions.setdefault(shape.error_code, shape.name)
                self._exceptions.setdefault(shape.name, shape.name)
        name = self._exceptions.get(code)
        if name is None:
            return None
        if v1:
            return name if name.endswith("Exception") else name + "Exception"
        return java_exception_name(name)

    def error(self, exc: BaseException) -> ASLError:
        """A botocore failure as Step Functions names it for the AWS SDK integration."""
        from botocore.exceptions import ClientError, ParamValidationError

        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {}) or {}
            code = error_code(err)
            meta = exc.response.get("ResponseMetadata", {}) or {}
            details = [f"Service: {self.prefix}", f"Status Code: {meta.get('HTTPStatusCode')}",
                       f"Request ID: {meta.get('RequestId')}"]
            if meta.get("HostId"):
                details.append(f"Extended Request ID: {meta['HostId']}")
            name = self.exception(code) or f"{self.prefix}Exception"
            return ASLError(f"{self.prefix}.{name}", _with_details(err.get("Message"), ", ".join(details)),
                            located=True)
        if isinstance(exc, ParamValidationError):
            report = validation_report(exc)
            return ASLError(f"{self.prefix}.{self.prefix}Exception",
                            _with_details(report, f"Service: {self.prefix}, Status Code: 400, Request ID: null"),
                            located=True)
        return ASLError(f"{self.prefix}.SdkClientException", client_failure(exc), located=True)


def client_failure(exc: BaseException) -> str:
    """The cause of an SdkClientException: no credentials, or no answer."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return f"Unable to load credentials from any of the providers in the chain: {exc}"
    return f"Unable to execute HTTP request: {exc}"


def error_code(err: dict[str, Any]) -> str:
    """The code that names the modeled error: the shape's (``QueryErrorCode``, for JSON services that
    also answer query codes, as SQS does: ``QueueDoesNotExist``), else the error's code."""
    return str(err.get("QueryErrorCode") or err.get("Code") or "")


def _with_details(message: Any, details: str) -> str:
    return f"{message} ({details})" if message else f"({details})"


def validation_report(exc: BaseException) -> str:
    """botocore's ParamValidationError report on one line."""
    text = str(getattr(exc, "kwargs", {}).get("report") or exc)
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _timestamp_in(value: Any, field: str) -> Any:
    if isinstance(value, bool):
        raise _Invalid(field)
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    if isinstance(value, str):
        from botocore.utils import parse_timestamp

        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError, TypeError):
            raise _Invalid(field) from None
    raise _Invalid(field)


def _plain(value: Any, payload: bool = False) -> Any:
    """A botocore value as JSON: timestamps as ISO text, blobs as text (payload) or base64."""
    if isinstance(value, datetime.datetime):
        return iso_timestamp(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return raw.decode("utf-8", "replace") if payload else base64.b64encode(raw).decode()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def read_bounded(body: Any, resource: str) -> bytes:
    """All of a streamed body, failing (States.DataLimitExceeded) once it passes the payload limit."""
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk: bytes = await body.read(_MAX + 1 - size)  # at most that much, maybe less
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX:
                raise tasks._too_large(resource)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def bind(pool: aws.AwsClients, resource: str, service: str, action: str) -> Api:
    """The :class:`Api` of Step Functions' ``service:action``; ValueError with AWS's message if
    botocore has no such operation (or one that streams events, which no Task can take)."""
    name = botocore_service(pool, service)
    operation = None
    if name is not None:
        model = pool.service_model(name)
        operation = {op.lower(): op for op in model.operation_names}.get(action.lower())
    if operation is None:
        raise ValueError(tasks.not_recognized_message(resource))
    api = Api(pool, name, operation)  # type: ignore[arg-type]
    if api.operation.has_event_stream_output or api.operation.has_event_stream_input:
        raise ValueError(tasks.not_recognized_message(resource))
    return api


class SdkInvoker:
    """The invoker of one ``aws-sdk:<service>:<action>`` resource (see the module docstring)."""

    takes_credentials = True

    def __init__(self, resource: str, api: Api) -> None:
        self.resource = resource
        self.api = api

    async def __call__(self, eff: Any, frame: Frame, timeout: float | None, credentials: Any = None) -> Any:
        try:
            params = self.api.request(eff)
        except ParameterProblem as e:
            raise parameters_failed(eff, e) from None
        role = credentials.get("RoleArn") if isinstance(credentials, dict) else None
        job = (params, aws.machine_region(frame), role if isinstance(role, str) else None)
        return await tasks.call(self._send, job, frame, timeout)

    async def _send(self, job: tuple[dict[str, Any], str | None, str | None]) -> Any:
        params, region, role = job
        api = self.api
        try:
            client = await api.pool.client(api.service, api.pool.region(region), role)
            response = await getattr(client, api.method)(**params)
            result = await api.result(response, self.resource)
        except ASLError:
            raise
        except Exception as e:  # botocore's and the connection's failures, named at this one boundary
            raise api.error(e) from None
        if len(orjson.dumps(result)) > _MAX:
            raise tasks._too_large(self.resource)
        return result


def build(resource: str, integrations: Integrations) -> SdkInvoker:
    """The invoker of ``arn:aws:states:::aws-sdk:<service>:<action>``; ValueError (AWS's message)
    for a service or action botocore has no model of."""
    m = _ARN.match(resource)
    if m is None:
        raise ValueError(tasks.not_recognized_message(resource))
    pool = aws.clients(integrations)
    return SdkInvoker(resource, bind(pool, resource, m.group("service"), m.group("action")))
