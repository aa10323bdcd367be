"""The StepFunctions API's request validation, shared by every operation: the request shapes of the
botocore service model (:data:`SHAPES`, :func:`check_shape`), names, payload sizes, and
:class:`ApiError`, the refusal every check raises (AWS's error code; the server answers it as
``{"__type": code, "message": ...}``, by default with HTTP 400).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from express.asl.errors import Problem

MAX_INPUT_BYTES = 262_144
MAX_DEFINITION_BYTES = 1_048_576
DEFAULT_ROLE = "arn:aws:iam::000000000000:role/express"

_BAD_NAME = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]')
ARN_RE = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:\d*:.+$")

INCLUDED_DATA = ("ALL_DATA", "METADATA_ONLY")
ENCRYPTION_TYPES = ("AWS_OWNED_KEY", "CUSTOMER_MANAGED_KMS_KEY")
MACHINE_TYPES = ("STANDARD", "EXPRESS")
LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")
SEVERITIES = ("ERROR", "WARNING")
INSPECTION_LEVELS = ("INFO", "DEBUG", "TRACE")
MAX_TAGS = 50  # per resource, AWS's quota
TAG_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"  # as AWS words the constraint


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra


# ---------------------------------------------------------------------- request shapes
# kind, min, max, enum (for strings: lengths; for ints: values); "sensitive" values are not echoed.
@dataclass(frozen=True, slots=True)
class F:
    kind: str  # "s" string, "i" integer, "b" boolean, "o" object, "l" list
    min: int | None = None
    max: int | None = None
    enum: tuple[str, ...] | None = None
    required: bool = False
    sensitive: bool = False


_ARN_F = F("s", 1, 256, required=True)
SHAPES: dict[str, dict[str, F]] = {
    "StartSyncExecution": {
        "stateMachineArn": _ARN_F, "name": F("s", 1, 80), "input": F("s", sensitive=True),
        "traceHeader": F("s", 0, 256), "includedData": F("s", enum=INCLUDED_DATA)},
    "StartExecution": {
        "stateMachineArn": _ARN_F, "name": F("s", 1, 80), "input": F("s", sensitive=True),
        "traceHeader": F("s", 0, 256)},
    "CreateStateMachine": {
        "name": F("s", 1, 80, required=True), "definition": F("s", 1, MAX_DEFINITION_BYTES, required=True,
                                                               sensitive=True),
        "roleArn": _ARN_F, "type": F("s", enum=MACHINE_TYPES), "loggingConfiguration": F("o"),
        "tags": F("l"), "tracingConfiguration": F("o"), "publish": F("b"), "versionDescription": F("s", 0, 256),
        "encryptionConfiguration": F("o")},
    "UpdateStateMachine": {
        "stateMachineArn": _ARN_F, "definition": F("s", 1, MAX_DEFINITION_BYTES, sensitive=True),
        "roleArn": F("s", 1, 256), "loggingConfiguration": F("o"), "tracingConfiguration": F("o"),
        "publish": F("b"), "versionDescription": F("s", 0, 256), "encryptionConfiguration": F("o")},
    "DeleteStateMachine": {"stateMachineArn": _ARN_F},
    "TagResource": {"resourceArn": F("s", 1, 256, required=True), "tags": F("l", required=True)},
    "UntagResource": {"resourceArn": F("s", 1, 256, required=True), "tagKeys": F("l", required=True)},
    "ListTagsForResource": {"resourceArn": F("s", 1, 256, required=True)},
    "DescribeStateMachine": {"stateMachineArn": _ARN_F, "includedData": F("s", enum=INCLUDED_DATA)},
    "ListStateMachines": {"maxResults": F("i", 0, 1000), "nextToken": F("s", 1, 1024)},
    "PublishStateMachineVersion": {
        "stateMachineArn": _ARN_F, "revisionId": F("s"), "description": F("s", 0, 256, sensitive=True)},
    "ListStateMachineVersions": {
        "stateMachineArn": _ARN_F, "nextToken": F("s", 1, 1024), "maxResults": F("i", 0, 1000)},
    "DeleteStateMachineVersion": {"stateMachineVersionArn": F("s", 1, 2000, required=True)},
    "CreateStateMachineAlias": {
        "name": F("s", 1, 80, required=True), "description": F("s", 0, 256, sensitive=True),
        "routingConfiguration": F("l", required=True)},
    "DescribeStateMachineAlias": {"stateMachineAliasArn": _ARN_F},
    "UpdateStateMachineAlias": {
        "stateMachineAliasArn": _ARN_F, "description": F("s", 0, 256, sensitive=True),
        "routingConfiguration": F("l")},
    "DeleteStateMachineAlias": {"stateMachineAliasArn": _ARN_F},
    "ListStateMachineAliases": {
        "stateMachineArn": _ARN_F, "nextToken": F("s", 1, 1024), "maxResults": F("i", 0, 1000)},
    "ValidateStateMachineDefinition": {
        "definition": F("s", 1, MAX_DEFINITION_BYTES, required=True, sensitive=True),
        "type": F("s", enum=MACHINE_TYPES), "severity": F("s", enum=SEVERITIES), "maxResults": F("i", 0, 100)},
    "TestState": {
        "definition": F("s", 1, MAX_DEFINITION_BYTES, required=True, sensitive=True), "roleArn": F("s", 1, 256),
        "input": F("s", sensitive=True), "inspectionLevel": F("s", enum=INSPECTION_LEVELS),
        "revealSecrets": F("b"), "variables": F("s", sensitive=True), "stateName": F("s", 1, 80),
        "mock": F("o"), "context": F("s", sensitive=True), "stateConfiguration": F("o")},
}
_JSON_TYPES = {"s": (str,), "i": (int,), "b": (bool,), "o": (dict,), "l": (list,)}
_TYPE_NAMES = {"s": "a string", "i": "an integer", "b": "a boolean", "o": "an object", "l": "a list"}


def check_shape(op: str, body: dict[str, Any]) -> None:
    """AWS's constraint validation: SerializationException for a wrong JSON type, else one
    ValidationException listing every violated constraint."""
    problems: list[str] = []
    missing = False
    for name, f in SHAPES[op].items():
        value: Any = body.get(name)
        if value is None:
            if f.required:
                missing = True
                problems.append(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
            continue
        kind = f.kind
        if not isinstance(value, _JSON_TYPES[kind]) or (kind == "i" and isinstance(value, bool)):
            raise ApiError("SerializationException", f"Value for '{name}' must be {_TYPE_NAMES[kind]}")
        shown = "" if f.sensitive else f" '{clip(value)}'"
        if kind == "s":
            assert isinstance(value, str)
            if f.enum is not None and value not in f.enum:
                problems.append(f"Value{shown} at '{name}' failed to satisfy constraint: Member must satisfy enum "
                                f"value set: [{', '.join(f.enum)}]")
            elif f.min is not None and len(value) < f.min:
                problems.append(f"Value{shown} at '{name}' failed to satisfy constraint: Member must have length "
                                f"greater than or equal to {f.min}")
            elif f.max is not None and len(value) > f.max:
                problems.append(f"Value{shown} at '{name}' failed to satisfy constraint: Member must have length "
                                f"less than or equal to {f.max}")
        elif kind == "i":
            assert isinstance(value, int)
            if f.min is not None and value < f.min:
                problems.append(f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value "
                                f"greater than or equal to {f.min}")
            elif f.max is not None and value > f.max:
                problems.append(f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value "
                                f"less than or equal to {f.max}")
    if problems:
        n = len(problems)
        error = ApiError("ValidationException",
                         f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))
        if missing:
            error.extra["reason"] = "MISSING_REQUIRED_PARAMETER"
        raise error


def clip(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 100 else text[:100] + "..."


def check_payload(field_name: str, text: str) -> None:
    """Input-like strings: at most 256 KiB of UTF-8."""
    if len(text) * 4 > MAX_INPUT_BYTES and len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise ApiError("ValidationException",
                       f"1 validation error detected: Value at '{field_name}' failed to satisfy constraint: "
                       f"Member must have length less than or equal to {MAX_INPUT_BYTES}")


def check_name(name: str, what: str = "Name") -> None:
    if not name or len(name) > 80 or _BAD_NAME.search(name):
        raise ApiError("InvalidName", f"Invalid {what}: '{clip(name)}'")


def problems_message(problems: list[Problem]) -> str:
    return "Invalid State Machine Definition: '" + ", ".join(
        f"{p.code}: {p.message} at {p.pointer or '/'}" for p in problems) + "'"


def raise_problems(problems: list[str]) -> None:
    if problems:
        n = len(problems)
        raise ApiError("ValidationException",
                       f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))
