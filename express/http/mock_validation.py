"""TestState's ``mock.result`` checked against the output shape of the service API it stands for.

AWS validates a mocked result of a service integration Task (``arn:aws:states:::<service>:<action>``
and ``arn:aws:states:::aws-sdk:<service>:<action>``) against that API's output shape, as
``mock.fieldValidationMode`` asks:

- ``STRICT`` (the default): every required field is present and every present field conforms;
- ``PRESENT``: every present field conforms;
- ``NONE``: nothing is checked.

Field names are the service model's member names with their first letter in upper case, as Step
Functions returns them (``executionArn`` -> ``ExecutionArn``); a field the model does not know is
accepted (forward compatibility). The shapes come from botocore's service models, loaded on first
use, in a worker thread (they are files of up to megabytes) and kept in a small cache. Without
botocore (the ``teststate`` extra), or for a resource no model describes (Lambda function ARNs,
activities, ``.sync``/``.waitForTaskToken`` callbacks, ``http:invoke``, ``apigateway:invoke``, ...),
nothing is checked.
"""
from __future__ import annotations

import asyncio
import functools
import re
from typing import Any, NoReturn

MODES = ("STRICT", "PRESENT", "NONE")
PREFIX = "Mock result schema validation error: "

_INTEGRATION = re.compile(r"^arn:aws[\w-]*:states:::(?P<sdk>aws-sdk:)?(?P<service>[\w-]+):(?P<action>\w+)$")
# Step Functions' service names that are not botocore's (optimized and AWS SDK integrations).
_SERVICE_ALIASES: dict[str, tuple[str, ...]] = {
    "states": ("stepfunctions",),
    "sfn": ("stepfunctions",),
    "eventbridge": ("events",),
    "elasticmapreduce": ("emr",),
    "bedrock": ("bedrock-runtime", "bedrock"),
    "cloudwatchlogs": ("logs",),
    "cognitoidentityprovider": ("cognito-idp",),
    "cognitoidentity": ("cognito-identity",),
    "applicationautoscaling": ("application-autoscaling",),
    "elasticloadbalancingv2": ("elbv2",),
    "elasticloadbalancing": ("elb",),
}
_MODEL_CACHE = 16  # service models kept (a model is parsed JSON of up to a few MB)


class MockResultInvalid(ValueError):
    """The mocked result does not conform; ``message`` is AWS's ValidationException message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def integration_of(resource: str) -> tuple[str, str, bool] | None:
    """(service, action, optimized) of a request-response service integration, else None."""
    m = _INTEGRATION.match(resource)
    if m is None:
        return None
    return m.group("service"), m.group("action"), m.group("sdk") is None


async def check(resource: str, value: Any, mode: str) -> None:
    """Raise MockResultInvalid when ``value`` (the parsed mock result) does not conform."""
    if mode == "NONE" or value is None:
        return
    found = integration_of(resource)
    if found is None:
        return
    service, action, optimized = found
    shape = await asyncio.to_thread(_output_shape, service, action)
    if shape is None:
        return
    _Checker(mode == "STRICT", optimized).value(value, shape, None)


@functools.lru_cache(maxsize=_MODEL_CACHE)
def _service_model(name: str) -> Any:
    try:
        from botocore.exceptions import DataNotFoundError
        from botocore.loaders import Loader
        from botocore.model import ServiceModel
    except ImportError:
        return None
    try:
        return ServiceModel(Loader().load_service_model(name, "service-2"), name)
    except DataNotFoundError:
        return None


def _output_shape(service: str, action: str) -> Any:
    for name in _SERVICE_ALIASES.get(service, (service,)):
        model = _service_model(name)
        if model is None:
            continue
        operations = {op.lower(): op for op in model.operation_names}
        op = operations.get(action.lower())
        if op is not None:
            return model.operation_model(op).output_shape
    return None


def _sfn_name(member: str) -> str:
    return member[:1].upper() + member[1:]


class _Checker:
    def __init__(self, strict: bool, optimized: bool) -> None:
        self.strict = strict
        # Optimized integrations return blobs decoded (lambda:invoke's Payload is the function's
        # JSON result); the AWS SDK integrations return them as text.
        self.optimized = optimized

    def value(self, value: Any, shape: Any, field: str | None) -> None:
        kind = shape.type_name
        if kind == "document":
            return
        if kind == "structure":
            self.structure(value, shape, field)
        elif kind == "list":
            if not isinstance(value, list):
                self.fail(field, "must be an array")
            self.length(len(value), shape, field)
            for item in value:
                self.value(item, shape.member, field)
        elif kind == "map":
            if not isinstance(value, dict):
                self.fail(field, "must be an object")
            self.length(len(value), shape, field)
            for item in value.values():
                self.value(item, shape.value, field)
        elif kind in ("string", "timestamp"):
            if not isinstance(value, str):
                self.fail(field, "must be a string")
            enum = shape.metadata.get("enum") if kind == "string" else None
            if enum and value not in enum:
                self.fail(field, "is not an expected value")
            self.length(len(value), shape, field)
        elif kind == "blob":
            if self.optimized:
                return
            if not isinstance(value, str):
                self.fail(field, "must be a string")
            self.length(len(value), shape, field)
        elif kind in ("integer", "long"):
            if isinstance(value, bool) or not (isinstance(value, int)
                                               or (isinstance(value, float) and value.is_integer())):
                self.fail(field, "must be a number")
            self.range(value, shape, field)
        elif kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(field, "must be a number")
            self.range(value, shape, field)
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.fail(field, "must be a boolean")

    def structure(self, value: Any, shape: Any, field: str | None) -> None:
        if not isinstance(value, dict):
            if field is None:
                raise MockResultInvalid(PREFIX + "The mock result must be a JSON object")
            self.fail(field, "must be an object")
        members = {_sfn_name(name): member for name, member in shape.members.items()}
        if self.strict:
            for name in shape.required_members:
                if _sfn_name(name) not in value:
                    raise MockResultInvalid(f"{PREFIX}Required field '{_sfn_name(name)}' is missing")
        for name, item in value.items():
            member = members.get(name)
            if member is not None:
                self.value(item, member, name)

    def length(self, n: int, shape: Any, field: str | None) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if isinstance(low, (int, float)) and n < low:
            self.fail(field, "is smaller than the minimum length")
        if isinstance(high, (int, float)) and n > high:
            self.fail(field, "is larger than the maximum length")

    def range(self, v: float, shape: Any, field: str | None) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if isinstance(low, (int, float)) and v < low:
            self.fail(field, "is less than the minimum value")
        if isinstance(high, (int, float)) and v > high:
            self.fail(field, "is greater than the maximum value")

    @staticmethod
    def fail(field: str | None, what: str) -> NoReturn:
        raise MockResultInvalid(f"{PREFIX}Field '{field}' {what}")
