"""The StepFunctions operations of the AWS JSON 1.0 protocol, on the engine and the registry.

Each operation takes the decoded request object and returns the response object (or raw JSON
bytes on the StartSyncExecution hot path); every refusal is an :class:`ApiError` carrying AWS's
error code, which the server turns into ``{"__type": code, "message": ...}`` with HTTP 400.
Fields are checked against the botocore service model's constraints before anything runs;
unknown fields are ignored, as AWS does.

Execution ARNs: ``arn:aws:states:REGION:ACCOUNT:express:MACHINE:NAME:UUID``; an execution
without a name gets a UUID as its name. Execution names are exactly-once (see
:mod:`express.http.names`) for StartSyncExecution and StartExecution alike.
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from express.asl.errors import DefinitionError, Problem
from express.asl.limits import decode_refusal, input_refusal
from express.asl.variable_references import VariableReferences, variable_references
from express.engine.machine import Machine
from express.http.names import NameConflict, NamesExhausted, NameTable, input_digest
from express.http.teststate import TestStateInputError, run_test_state
from express.serve.config import Settings
from express.serve.registry import DEFAULT_ENCRYPTION, INLINE_COMPILE_BYTES, Entry, Registry
from express.store import MachineRecord, StoreError

MAX_INPUT_BYTES = 262_144
MAX_DEFINITION_BYTES = 1_048_576
DEFAULT_ROLE = "arn:aws:iam::000000000000:role/express"
TARGET_PREFIX = "AWSStepFunctions."
T = TypeVar("T")

_BAD_NAME = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]')
_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:\d*:.+$")

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
        shown = "" if f.sensitive else f" '{_clip(value)}'"
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


def _clip(value: Any) -> str:
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
        raise ApiError("InvalidName", f"Invalid {what}: '{_clip(name)}'")


def problems_message(problems: list[Problem]) -> str:
    return "Invalid State Machine Definition: '" + ", ".join(
        f"{p.code}: {p.message} at {p.pointer or '/'}" for p in problems) + "'"


def _identity(entry: Entry) -> tuple[Any, ...]:
    """What a second CreateStateMachine must repeat to be answered rather than refused."""
    return entry.definition_text, entry.role_arn, entry.type, entry.tracing, entry.encryption


def _record_identity(record: MachineRecord) -> tuple[Any, ...]:
    return record.definition, record.role_arn, record.type, record.tracing, record.encryption


def _record(name: str, entry: Entry) -> MachineRecord:
    return MachineRecord(
        name=name, arn=entry.machine.arn, definition=entry.definition_text, role_arn=entry.role_arn, type=entry.type,
        created=entry.created, logging=entry.logging, tracing=entry.tracing, revision_id=entry.revision_id,
        encryption=entry.encryption, references={k: list(v) for k, v in entry.references.items()},
        tags=entry.tags)


def _unavailable(e: StoreError) -> ApiError:
    return ApiError("ServiceUnavailable", f"The state store is not available: {e}", status=503)


async def _stored(call: Awaitable[T]) -> T:
    """A store call; its failure is AWS's ServiceUnavailable (HTTP 503: SDKs retry it)."""
    try:
        return await call
    except StoreError as e:
        raise _unavailable(e) from None


def _resource_not_found(arn: str) -> ApiError:
    return ApiError("ResourceNotFound", f"Resource not found: '{_clip(arn)}'", resourceName=arn)


def _tag_string_problems(text: str, where: str, least: int, most: int) -> list[str]:
    shown = f"'{_clip(text)}'"
    if len(text) < least:
        return [f"Value {shown} at '{where}' failed to satisfy constraint: Member must have length greater than or "
                f"equal to {least}"]
    if len(text) > most:
        return [f"Value {shown} at '{where}' failed to satisfy constraint: Member must have length less than or "
                f"equal to {most}"]
    if not all(c.isalnum() or c.isspace() or c in "_.:/=+-@" for c in text):
        return [f"Value {shown} at '{where}' failed to satisfy constraint: Member must satisfy regular expression "
                f"pattern: {TAG_PATTERN}"]
    return []


def _raise_problems(problems: list[str]) -> None:
    if problems:
        n = len(problems)
        raise ApiError("ValidationException",
                       f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))


def _check_tags(tags: list[Any], where: str) -> list[dict[str, str]]:
    """AWS's Tag shape (key 1-128 characters, value 0-256, letters, digits, white space and
    ``_ . : / = + - @``; the ``aws:`` prefix is AWS's own); the tags as given."""
    out = []
    problems: list[str] = []
    for i, t in enumerate(tags, 1):
        if not isinstance(t, dict):
            raise ApiError("SerializationException", f"Value for '{where}.{i}' must be an object")
        key, value = t.get("key"), t.get("value", "")
        if not isinstance(key, str) or not isinstance(value, str):
            raise ApiError("SerializationException", f"Value for '{where}.{i}.member' must have string key and value")
        problems += _tag_string_problems(key, f"{where}.{i}.member.key", 1, 128)
        problems += _tag_string_problems(value, f"{where}.{i}.member.value", 0, 256)
        if key.lower().startswith("aws:"):
            problems.append(f"Value '{_clip(key)}' at '{where}.{i}.member.key' failed to satisfy constraint: "
                            "Tag keys with the prefix 'aws:' are reserved for AWS use")
        out.append({"key": key, "value": value})
    _raise_problems(problems)
    return out


def _merge_tags(tags: list[dict[str, str]], added: list[dict[str, str]]) -> list[dict[str, str]]:
    """``added`` over ``tags``: a key given again takes the new value, in its old place."""
    merged = {t["key"]: t["value"] for t in tags}
    for t in added:
        merged[t["key"]] = t["value"]
    return [{"key": k, "value": v} for k, v in merged.items()]


class ExecutionAbandoned(Exception):
    """A named execution ended without an answer (server error or shutdown)."""


# ---------------------------------------------------------------------- metrics (cached children)
class _Metrics:
    def __init__(self) -> None:
        try:
            from express.observe import metrics
        except ImportError:  # prometheus_client is an optional dependency
            self.m = None
        else:
            self.m = metrics
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, operation: str, status: int) -> None:
        if self.m is not None:
            self._child(self.m.HTTP_REQUESTS, operation, str(status)).inc()

    def throttled(self, machine: str, operation: str) -> None:
        if self.m is not None:
            self._child(self.m.EXECUTIONS_THROTTLED, machine, operation).inc()


# ---------------------------------------------------------------------- the operations
class StepFunctionsApi:
    def __init__(self, settings: Settings, registry: Registry, *, spawn: Callable[[Awaitable[Any]], Any],
                 names: NameTable | None = None, kafka: Any = None, max_machines: int = 10_000,
                 max_background: int = 10_000) -> None:
        self.settings = settings
        self.registry = registry
        self.engine = registry.engine
        self.region = self.engine.region
        self.account = self.engine.account
        self.kafka = kafka
        self.names = names if names is not None else NameTable(settings.http.name_retention_s,
                                                               settings.http.max_names)
        self._spawn = spawn
        self.max_machines = max_machines
        self.max_background = max_background
        self.background = 0
        # StartSyncExecution runs in progress here; beyond the bound they are refused at once
        # rather than queued (each one holds its input, its state and a connection)
        self.max_concurrent_sync = settings.http.max_concurrent_sync
        self.sync_running = 0
        self.metrics = _Metrics()
        self._arn_prefix = f"arn:aws:states:{self.region}:{self.account}:stateMachine:"
        self._exec_prefix = f"arn:aws:states:{self.region}:{self.account}:express:"
        self.operations: dict[str, Callable[[dict[str, Any], Mapping[str, str]], Awaitable[Any]]] = {
            "StartSyncExecution": self.start_sync_execution,
            "StartExecution": self.start_execution,
            "CreateStateMachine": self.create_state_machine,
            "UpdateStateMachine": self.update_state_machine,
            "DeleteStateMachine": self.delete_state_machine,
            "DescribeStateMachine": self.describe_state_machine,
            "ListStateMachines": self.list_state_machines,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
            "ValidateStateMachineDefinition": self.validate_state_machine_definition,
            "TestState": self.test_state,
        }

    # ------------------------------------------------------------------ helpers
    def machine_name(self, arn: str) -> str:
        """The registry name an ARN refers to, or the AWS error for it."""
        if not arn.startswith("arn:"):
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(arn)}'")
        parts = arn.split(":")
        if len(parts) < 7 or not parts[1].startswith("aws") or parts[2] != "states":
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(arn)}'")
        if parts[5] != "stateMachine":
            raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {_clip(parts[5])}'")
        name = parts[6]
        if "/" in name:
            raise ApiError("ValidationException", "This API does not support labeled ARNs.",
                           reason="API_DOES_NOT_SUPPORT_LABELED_ARNS")
        if not name or len(parts) > 8 or (len(parts) == 8 and not parts[7]):
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(arn)}'")
        if len(parts) == 8 or parts[3] != self.region or parts[4] != self.account:
            # Versions and aliases are not kept; other regions and accounts are not ours.
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{_clip(arn)}'")
        return name

    def entry_for(self, arn: str) -> tuple[str, Entry]:
        # ARN#CASE (Step Functions Local): the machine with that test case of the mock config
        machine_arn, has_case, case = arn.partition("#")
        name = self.machine_name(machine_arn)
        entry = self.registry.entry(name)
        if entry is None:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{_clip(arn)}'")
        if has_case:
            from express.testing.mocking import MockConfigError, case_entry

            try:
                entry = case_entry(getattr(self.registry, "mock_config", None), entry, machine_arn, case)
            except MockConfigError as e:
                raise ApiError("StateMachineDoesNotExist",
                               f"State Machine Does Not Exist: '{_clip(arn)}': {e}") from None
        return name, entry

    def machine_type(self, name: str) -> str:
        entry = self.registry.entry(name)
        return entry.type if entry is not None else "EXPRESS"

    async def _catch_up(self) -> bool:
        """Apply the store's committed changes here (a machine made through another worker); False
        without a store."""
        follower = self.registry.follower
        if follower is None:
            return False
        try:
            await follower.catch_up()
        except StoreError as e:
            raise _unavailable(e) from None
        return True

    async def _known_entry(self, arn: str) -> tuple[str, Entry]:
        """entry_for, after catching up with the store when this process does not know the machine."""
        try:
            return self.entry_for(arn)
        except ApiError as e:
            if e.code != "StateMachineDoesNotExist" or not await self._catch_up():
                raise
        return self.entry_for(arn)

    def _check_mutable(self, name: str, entry: Entry) -> None:
        # with a store, a file's machine changed over the API would differ between workers and
        # come back at the next start: the file is its only source
        if entry.from_config and self.registry.store is not None:
            raise ApiError("ValidationException", f"State machine '{name}' is defined by the file {name}.asl.json "
                           "of the machines folder: change or delete the file instead")

    async def compile(self, text: str, name: str, logging: Mapping[str, Any] | None = None) -> Machine:
        """Compile off the event loop when the definition is large; DefinitionError -> InvalidDefinition."""
        try:
            return await self._compile(text, name, logging)
        except DefinitionError as e:
            raise ApiError("InvalidDefinition", problems_message(e.problems)) from None

    async def _compile(self, text: str, name: str, logging: Mapping[str, Any] | None = None) -> Machine:
        return await self.registry.compile_async(text, name, logging)

    def _install(self, name: str, entry: Entry) -> Entry:
        """Make ``entry`` the version served here, unless a later one from the store is already."""
        current = self.registry.entry(name)
        if current is None or entry.seq == 0 or current.seq < entry.seq:
            self.registry.install(entry, name)
        return entry

    # ------------------------------------------------------------------ executions
    def _prepare(self, op: str, body: dict[str, Any]) -> tuple[str, Entry, str, Any, str | None]:
        check_shape(op, body)
        name = body.get("name")
        if name is not None:
            check_name(name)
        machine_name, entry = self.entry_for(body["stateMachineArn"])
        input_text = body.get("input")
        if input_text is None:
            input_text = "{}"
        check_payload("input", input_text)
        try:
            value = orjson.loads(input_text)
        except orjson.JSONDecodeError as e:
            deep = decode_refusal(e)
            raise ApiError("InvalidExecutionInput",
                           f"Invalid State Machine Execution Input: '{deep[1] if deep else e}'") from None
        # nested deeper than can be written, or an integer orjson made a float (express.asl.limits)
        refused = input_refusal(input_text, value)
        if refused is not None:
            raise ApiError("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{refused[1]}'")
        return machine_name, entry, input_text, value, name

    async def _prepare_following(self, op: str, body: dict[str, Any]) -> tuple[str, Entry, str, Any, str | None]:
        """``_prepare``, once more after catching up with the store when the machine is unknown here:
        it may have been made through another worker that this one has not followed yet."""
        try:
            return self._prepare(op, body)
        except ApiError as e:
            if e.code != "StateMachineDoesNotExist" or not await self._catch_up():
                raise
            return self._prepare(op, body)

    async def start_sync_execution(self, body: dict[str, Any], headers: Mapping[str, str]) -> bytes:
        machine_name, entry, input_text, value, name = await self._prepare_following("StartSyncExecution", body)
        if self.machine_type(machine_name) != "EXPRESS":
            raise ApiError("StateMachineTypeNotSupported",
                           "This operation is not supported by this type of state machine")
        trace = headers.get("x-amzn-trace-id") or body.get("traceHeader")
        included = body.get("includedData") != "METADATA_ONLY"
        if name is None:
            name = str(uuid.uuid4())
            self._admit_sync(machine_name)
            try:
                return await self._run(entry.machine, machine_name, name, self._execution_arn(machine_name, name),
                                       input_text, value, trace, included, "sync")
            finally:
                self.sync_running -= 1
        names = self.names
        key = (machine_name, name)
        digest = input_digest(value)
        try:
            record = names.lookup(key, digest)
        except NameConflict:
            raise ApiError("ExecutionAlreadyExists",
                           f"Execution Already Exists: '{self._exec_prefix}{machine_name}:{name}'") from None
        if record is not None:
            try:
                return await asyncio.shield(record.done)
            except ExecutionAbandoned as e:
                raise ApiError("ServiceUnavailable", str(e), status=503) from None
        arn = self._execution_arn(machine_name, name)
        self._admit_sync(machine_name)
        try:
            try:
                record = names.claim(key, digest, arn, time.time())
            except NamesExhausted:
                self.metrics.throttled(machine_name, "StartSyncExecution")
                raise ApiError("ThrottlingException",
                               f"Too many executions with names are still running ({len(names)}): retry later") \
                    from None
            try:
                answer = await self._run(entry.machine, machine_name, name, arn, input_text, value, trace, True,
                                         "sync")
            except BaseException as e:
                names.abandon(record, ExecutionAbandoned(f"The execution '{name}' ended without an answer: "
                                                         f"{type(e).__name__}; retry it"))
                raise
        finally:
            self.sync_running -= 1
        names.finish(record, answer)
        return answer

    def _admit_sync(self, machine_name: str) -> None:
        """One more StartSyncExecution may run, or AWS's ThrottlingException (HTTP 400, "Rate
        exceeded": SDKs back off and retry it); duplicates of a running name only wait, uncounted."""
        if self.sync_running >= self.max_concurrent_sync:
            self.metrics.throttled(machine_name, "StartSyncExecution")
            raise ApiError("ThrottlingException", "Rate exceeded")
        self.sync_running += 1

    def _execution_arn(self, machine_name: str, name: str) -> str:
        return f"{self._exec_prefix}{machine_name}:{name}:{uuid.uuid4()}"

    async def _run(self, machine: Machine, machine_name: str, name: str, arn: str, input_text: str, value: Any,
                   trace: str | None, included: bool, mode: str) -> bytes:
        # the input's size as AWS counts it (UTF-8 bytes of the text given), measured once here
        size = len(input_text) if input_text.isascii() else len(input_text.encode("utf-8", "surrogatepass"))
        result = await machine.execute(value, name=name, arn=arn, mode=mode, input_size=size)
        status = result.status
        response: dict[str, Any] = {
            "executionArn": arn,
            "stateMachineArn": machine.arn,
            "name": name,
            "startDate": result.start_time,
            "stopDate": result.stop_time,
            "status": status,
        }
        if status == "SUCCEEDED":
            if included:
                response["output"] = orjson.dumps(result.output).decode()
        else:
            if result.error is not None:
                response["error"] = result.error
            if result.cause is not None:
                response["cause"] = result.cause
        if included:
            response["input"] = input_text
        response["inputDetails"] = {"included": included}
        response["outputDetails"] = {"included": included}
        if trace:
            response["traceHeader"] = trace
        response["billingDetails"] = {"billedMemoryUsedInMB": result.billed_memory_mb,
                                      "billedDurationInMilliseconds": result.billed_duration_ms}
        return orjson.dumps(response)

    async def start_execution(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        machine_name, entry, input_text, value, name = await self._prepare_following("StartExecution", body)
        trace = headers.get("x-amzn-trace-id") or body.get("traceHeader")
        if self.background >= self.max_background:
            self.metrics.throttled(machine_name, "StartExecution")
            raise ApiError("ExecutionLimitExceeded",
                           f"The maximum number of running executions ({self.max_background}) has been reached")
        record = None
        if name is None:
            name = str(uuid.uuid4())
        else:
            key = (machine_name, name)
            digest = input_digest(value)
            try:
                known = self.names.lookup(key, digest)
            except NameConflict:
                raise ApiError("ExecutionAlreadyExists",
                               f"Execution Already Exists: '{self._exec_prefix}{machine_name}:{name}'") from None
            if known is not None:
                return {"executionArn": known.execution_arn, "startDate": known.start_date}
            try:
                record = self.names.claim(key, digest, self._execution_arn(machine_name, name), time.time())
            except NamesExhausted:
                self.metrics.throttled(machine_name, "StartExecution")
                raise ApiError("ThrottlingException",
                               "Too many executions with names are still running: retry later") from None
        arn = record.execution_arn if record is not None else self._execution_arn(machine_name, name)
        start = record.start_date if record is not None else time.time()
        machine = entry.machine
        self.background += 1

        async def run() -> None:
            try:
                answer = await self._run(machine, machine_name, name, arn, input_text, value, trace, True, "async")
            except BaseException as e:
                if record is not None:
                    self.names.abandon(record, ExecutionAbandoned(f"The execution '{name}' ended without an answer"))
                if not isinstance(e, asyncio.CancelledError):
                    print(f"express: http: background execution failed: {type(e).__name__}: {e}",
                          file=sys.stderr, flush=True)
                raise
            else:
                if record is not None:
                    self.names.finish(record, answer)
            finally:
                self.background -= 1

        self._spawn(run())
        return {"executionArn": arn, "startDate": start}

    # ------------------------------------------------------------------ state machines
    async def create_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("CreateStateMachine", body)
        name = body["name"]
        check_name(name)
        role = body["roleArn"]
        if not _ARN.match(role):
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(role)}'")
        machine_type = body.get("type") or "STANDARD"
        logging = self._logging(body.get("loggingConfiguration"))
        tracing = self._tracing(body.get("tracingConfiguration"))
        tags = _merge_tags([], _check_tags(body.get("tags") or [], "tags"))
        encryption = self._encryption(body.get("encryptionConfiguration"))
        self._check_version_description(body)
        text = body["definition"]
        asked = (text, role, machine_type, tracing, encryption)
        existing = self.registry.entry(name)
        if existing is not None:  # AWS: the same request again is answered, another one refused
            return self._created_before(name, asked, _identity(existing), existing.machine.arn, existing.created)
        if len(tags) > MAX_TAGS:
            raise ApiError("TooManyTags", f"Too many tags: a resource can have at most {MAX_TAGS} tags "
                           f"({len(tags)} asked)", resourceName=f"{self._arn_prefix}{name}")
        if len(self.registry) >= self.max_machines:
            raise ApiError("StateMachineLimitExceeded",
                           f"The maximum number of state machines ({self.max_machines}) has been reached")
        machine = await self.compile(text, name, logging)
        references = await self._variable_references(machine, text)
        entry = Entry(machine, text, time.time(), role_arn=role, logging=logging, type=machine_type, tracing=tracing,
                      tags=tags, encryption=encryption, references=references, references_of=text)
        store = self.registry.store
        if store is not None:
            # the store decides, atomically, which of concurrent Creates on any worker made the machine
            stored, created = await _stored(store.create(_record(name, entry)))
            if not created:
                return self._created_before(name, asked, _record_identity(stored), stored.arn, stored.created)
            entry.seq = stored.seq
        else:
            existing = self.registry.entry(name)
            if existing is not None:  # created meanwhile (large definition compiled in a thread)
                return self._created_before(name, asked, _identity(existing), existing.machine.arn, existing.created)
        self._install(name, entry)
        return {"stateMachineArn": machine.arn, "creationDate": entry.created}

    def _created_before(self, name: str, asked: tuple[Any, ...], existing: tuple[Any, ...], arn: str,
                        created: float) -> dict[str, Any]:
        if asked != existing:
            raise ApiError("StateMachineAlreadyExists", f"State Machine Already Exists: '{self._arn_prefix}{name}'")
        return {"stateMachineArn": arn, "creationDate": created}

    @staticmethod
    async def _variable_references(machine: Machine, text: str) -> VariableReferences:
        """Computed once per definition; a large one is walked off the event loop."""
        if len(text) > INLINE_COMPILE_BYTES:
            return await asyncio.to_thread(variable_references, machine.definition)
        return variable_references(machine.definition)

    @staticmethod
    def _check_version_description(body: dict[str, Any]) -> None:
        # versions are not kept (express runs the latest definition), but the request is refused as on AWS
        if body.get("versionDescription") is not None and not body.get("publish"):
            raise ApiError("ValidationException", "Version description can only be set when publish is true")

    @staticmethod
    def _encryption(config: Any) -> dict[str, Any]:
        """AWS's checks of an encryptionConfiguration; what DescribeStateMachine returns for it.
        Express keeps nothing encrypted at rest: a customer managed key is recorded, not used."""
        if config is None:
            return dict(DEFAULT_ENCRYPTION)
        kind, key, period = config.get("type"), config.get("kmsKeyId"), config.get("kmsDataKeyReusePeriodSeconds")
        where = "encryptionConfiguration"
        if kind is not None and not isinstance(kind, str):
            raise ApiError("SerializationException", f"Value for '{where}.type' must be a string")
        if key is not None and not isinstance(key, str):
            raise ApiError("SerializationException", f"Value for '{where}.kmsKeyId' must be a string")
        if period is not None and (not isinstance(period, int) or isinstance(period, bool)):
            raise ApiError("SerializationException", f"Value for '{where}.kmsDataKeyReusePeriodSeconds' must be an "
                                                     "integer")
        problems = []
        if kind is None:
            problems.append(f"Value null at '{where}.type' failed to satisfy constraint: Member must not be null")
        elif kind not in ENCRYPTION_TYPES:
            problems.append(f"Value '{_clip(kind)}' at '{where}.type' failed to satisfy constraint: Member must "
                            f"satisfy enum value set: [{', '.join(ENCRYPTION_TYPES)}]")
        if key is not None and not 1 <= len(key) <= 2048:
            bound = "greater than or equal to 1" if not key else "less than or equal to 2048"
            problems.append(f"Value '{_clip(key)}' at '{where}.kmsKeyId' failed to satisfy constraint: Member must "
                            f"have length {bound}")
        if period is not None and not 60 <= period <= 900:
            bound = "greater than or equal to 60" if period < 60 else "less than or equal to 900"
            problems.append(f"Value '{period}' at '{where}.kmsDataKeyReusePeriodSeconds' failed to satisfy "
                            f"constraint: Member must have value {bound}")
        if problems:
            n = len(problems)
            error = ApiError("ValidationException",
                             f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))
            if kind is None:
                error.extra["reason"] = "MISSING_REQUIRED_PARAMETER"
            raise error
        if kind == "CUSTOMER_MANAGED_KMS_KEY":
            if key is None:
                raise ApiError("InvalidEncryptionConfiguration", "Invalid Encryption Configuration: kmsKeyId is "
                               "required when the type is CUSTOMER_MANAGED_KMS_KEY.")
        elif key is not None or period is not None:
            raise ApiError("InvalidEncryptionConfiguration", "Invalid Encryption Configuration: kmsKeyId and "
                           "kmsDataKeyReusePeriodSeconds can only be set when the type is CUSTOMER_MANAGED_KMS_KEY.")
        out: dict[str, Any] = {"type": kind}
        if key is not None:
            out["kmsKeyId"] = key
        if period is not None:
            out["kmsDataKeyReusePeriodSeconds"] = period
        return out

    def _logging(self, config: Any) -> dict[str, Any] | None:
        if config is None:
            return None
        level = config.get("level", "OFF")
        if level not in LOG_LEVELS:
            raise ApiError("ValidationException", f"1 validation error detected: Value '{_clip(level)}' at "
                           "'loggingConfiguration.level' failed to satisfy constraint: Member must satisfy enum "
                           f"value set: [{', '.join(LOG_LEVELS)}]")
        include = config.get("includeExecutionData", False)
        if not isinstance(include, bool):
            raise ApiError("SerializationException", "Value for 'includeExecutionData' must be a boolean")
        destinations = config.get("destinations") or []
        if not isinstance(destinations, list):
            raise ApiError("SerializationException", "Value for 'destinations' must be a list")
        if level != "OFF" and len(destinations) != 1:
            raise ApiError("InvalidLoggingConfiguration",
                           "Invalid Logging Configuration: Must specify exactly one Log Destination.")
        for d in destinations:
            group = d.get("cloudWatchLogsLogGroup") if isinstance(d, dict) else None
            arn = group.get("logGroupArn") if isinstance(group, dict) else None
            if not isinstance(arn, str) or not arn.startswith("arn:") or ":log-group:" not in arn:
                raise ApiError("InvalidLoggingConfiguration",
                               "Invalid Logging Configuration: Log Destinations must be CloudWatch Logs log group "
                               "ARNs ending in ':*'.")
        return {"level": level, "includeExecutionData": include, "destinations": destinations}

    @staticmethod
    def _tracing(config: Any) -> bool:
        if config is None:
            return False
        enabled = config.get("enabled", False)
        if not isinstance(enabled, bool):
            raise ApiError("InvalidTracingConfiguration", "tracingConfiguration.enabled must be true or false")
        return enabled

    async def tag_resource(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("TagResource", body)
        arn = body["resourceArn"]
        added = _check_tags(body["tags"], "tags")

        def change(tags: list[dict[str, str]]) -> list[dict[str, str]]:
            merged = _merge_tags(tags, added)
            if len(merged) > MAX_TAGS:
                raise ApiError("TooManyTags", f"Too many tags: a resource can have at most {MAX_TAGS} tags "
                               f"(it has {len(tags)}, {len(merged) - len(tags)} more asked)", resourceName=arn)
            return merged

        await self._retag(arn, change)
        return {}

    async def untag_resource(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("UntagResource", body)
        keys = body["tagKeys"]
        problems = []
        for i, key in enumerate(keys, 1):
            if not isinstance(key, str):
                raise ApiError("SerializationException", f"Value for 'tagKeys.{i}' must be a string")
            problems += _tag_string_problems(key, f"tagKeys.{i}.member", 1, 128)
        _raise_problems(problems)
        removed = set(keys)
        await self._retag(body["resourceArn"], lambda tags: [t for t in tags if t["key"] not in removed])
        return {}

    async def list_tags_for_resource(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("ListTagsForResource", body)
        arn = body["resourceArn"]
        name = self._tagged_name(arn)
        store = self.registry.store
        entry = self.registry.entry(name)
        if store is not None and (entry is None or not entry.from_config):
            record = await _stored(store.get(name))  # the store's tags: what any worker set, at once
            if record is None:
                raise _resource_not_found(arn)
            return {"tags": [dict(t) for t in record.tags]}
        if entry is None:
            raise _resource_not_found(arn)
        return {"tags": [dict(t) for t in entry.tags]}

    def _tagged_name(self, arn: str) -> str:
        """The machine a tagging call names; activities and other accounts' machines are not found."""
        parts = arn.split(":")
        if arn.startswith("arn:") and len(parts) == 7 and parts[2] == "states" and parts[5] == "activity" \
                and parts[6]:
            raise _resource_not_found(arn)  # express has no activities
        try:
            return self.machine_name(arn)
        except ApiError as e:
            if e.code == "StateMachineDoesNotExist":
                raise _resource_not_found(arn) from None
            raise

    async def _retag(self, arn: str, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> None:
        name = self._tagged_name(arn)
        store = self.registry.store
        entry = self.registry.entry(name)
        if entry is not None and entry.from_config and store is not None:
            # a file's machine is not in the store: its tags would differ between workers
            raise ApiError("ValidationException", f"State machine '{name}' is defined by the file {name}.asl.json "
                           "of the machines folder: it cannot be tagged over the API")
        if store is None:
            if entry is None:
                raise _resource_not_found(arn)
            entry.tags = change(list(entry.tags))
            return
        record = await _stored(store.retag(name, change))
        if record is None:
            raise _resource_not_found(arn)
        current = self.registry.entry(name)
        if current is not None and not current.from_config and current.seq < record.seq \
                and current.definition_text == record.definition:
            # served here at once; the other workers follow the change sequence
            self.registry.install(dataclasses.replace(current, tags=list(record.tags), seq=record.seq), name)

    async def update_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("UpdateStateMachine", body)
        text = body.get("definition")
        role = body.get("roleArn")
        if text is None and role is None and body.get("loggingConfiguration") is None \
                and body.get("tracingConfiguration") is None and body.get("encryptionConfiguration") is None:
            raise ApiError("MissingRequiredParameter", "Either the definition, the role ARN, the LoggingConfiguration, "
                                                       "or the TracingConfiguration must be specified")
        self._check_version_description(body)
        name, entry = await self._known_entry(body["stateMachineArn"])
        self._check_mutable(name, entry)
        if role is not None and not _ARN.match(role):
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(role)}'")
        logging = self._logging(body.get("loggingConfiguration")) if "loggingConfiguration" in body else entry.logging
        tracing = self._tracing(body.get("tracingConfiguration")) if "tracingConfiguration" in body else entry.tracing
        encryption = self._encryption(body["encryptionConfiguration"]) \
            if body.get("encryptionConfiguration") is not None else entry.encryption
        # AWS makes a new revision only when something changed (the same update again keeps the revision id)
        changed = (role is not None and role != entry.role_arn) or logging != entry.logging \
            or tracing != entry.tracing or encryption != entry.encryption
        machine, new_text = entry.machine, entry.definition_text
        references, references_of = entry.references, entry.references_of
        if (text is not None and text != entry.definition_text) or logging != entry.logging:
            new_text = text if text is not None else entry.definition_text
            machine = await self.compile(new_text, name, logging)
            references, references_of = await self._variable_references(machine, new_text), new_text
            changed = changed or machine.definition != entry.machine.definition
        new = dataclasses.replace(
            entry, machine=machine, definition_text=new_text, role_arn=role if role is not None else entry.role_arn,
            logging=logging, tracing=tracing, encryption=encryption, references=references,
            references_of=references_of, revision_id=str(uuid.uuid4()) if changed else entry.revision_id)
        store = self.registry.store
        if store is not None:
            stored = await _stored(store.update(_record(name, new)))
            if stored is None:  # deleted meanwhile, through another worker
                raise ApiError("StateMachineDoesNotExist",
                               f"State Machine Does Not Exist: '{_clip(body['stateMachineArn'])}'")
            new.seq = stored.seq
        elif self.registry.entry(name) is None:  # deleted while the definition compiled
            raise ApiError("StateMachineDoesNotExist",
                           f"State Machine Does Not Exist: '{_clip(body['stateMachineArn'])}'")
        self._install(name, new)
        out: dict[str, Any] = {"updateDate": time.time()}
        if new.revision_id is not None:
            out["revisionId"] = new.revision_id
        return out

    async def delete_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DeleteStateMachine", body)
        name = self.machine_name(body["stateMachineArn"]) if body["stateMachineArn"].startswith("arn:") else None
        if name is None:
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(body['stateMachineArn'])}'")
        entry = self.registry.entry(name)
        if entry is not None:
            self._check_mutable(name, entry)
        # Idempotent, as on AWS; running executions finish on the definition they started with.
        store = self.registry.store
        seq = None
        if store is not None:
            seq = await _stored(store.delete(name))
        current = self.registry.entry(name)
        if current is not None and (seq is None or current.seq < seq):
            self.registry.delete(name)
        return {}

    async def describe_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DescribeStateMachine", body)
        await self._catch_up()  # what any worker has changed, described here at once
        name, entry = self.entry_for(body["stateMachineArn"])
        # METADATA_ONLY: what a caller without kms:Decrypt may see; the definition reads "{}"
        # and what is derived from it (variableReferences) is left out
        metadata_only = body.get("includedData") == "METADATA_ONLY"
        out: dict[str, Any] = {
            "stateMachineArn": entry.machine.arn,
            "name": name,
            "status": "ACTIVE",
            "definition": "{}" if metadata_only else entry.definition_text,
            "roleArn": entry.role_arn,
            "type": entry.type,
            "creationDate": entry.created,
            "loggingConfiguration": entry.logging or {"level": "OFF", "includeExecutionData": False},
            "tracingConfiguration": {"enabled": entry.tracing},
            "encryptionConfiguration": dict(entry.encryption),
        }
        if entry.revision_id is not None:
            out["revisionId"] = entry.revision_id
        if not metadata_only:
            # a machine of the config directory has its references computed at its first describe
            if entry.references_of is not entry.definition_text:
                text = entry.definition_text
                entry.references = await self._variable_references(entry.machine, text)
                entry.references_of = text
            if entry.references:
                out["variableReferences"] = {state: list(names) for state, names in entry.references.items()}
        return out

    async def list_state_machines(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("ListStateMachines", body)
        limit = body.get("maxResults") or 100
        after = ""
        token = body.get("nextToken")
        if token is not None:
            try:
                after = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
            except (ValueError, UnicodeError):
                raise ApiError("InvalidToken", f"Invalid Token: '{_clip(token)}'") from None
            if not after:
                raise ApiError("InvalidToken", f"Invalid Token: '{_clip(token)}'")
        await self._catch_up()
        names = [n for n in self.registry if n > after]
        page = names[:limit]
        items = []
        for n in page:
            entry = self.registry.entry(n)
            if entry is not None:
                items.append({"stateMachineArn": entry.machine.arn, "name": n, "type": entry.type,
                              "creationDate": entry.created})
        out: dict[str, Any] = {"stateMachines": items}
        if len(names) > limit:
            out["nextToken"] = base64.urlsafe_b64encode(page[-1].encode("utf-8")).decode("ascii")
        return out

    async def validate_state_machine_definition(self, body: dict[str, Any],
                                                headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("ValidateStateMachineDefinition", body)
        text = body["definition"]
        try:
            await self._compile(text, "validate")
            problems: list[Problem] = []
        except DefinitionError as e:
            problems = e.problems
        limit = body.get("maxResults") or 100
        diagnostics = [{"severity": "ERROR", "code": p.code, "message": p.message, "location": p.pointer or "/"}
                       for p in problems]
        return {"result": "FAIL" if problems else "OK", "diagnostics": diagnostics[:limit],
                "truncated": len(diagnostics) > limit}

    async def test_state(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("TestState", body)
        role = body.get("roleArn")
        if role is not None and not _ARN.match(role):
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(role)}'")
        try:
            definition = orjson.loads(body["definition"])
        except orjson.JSONDecodeError as e:
            raise ApiError("InvalidDefinition", f"Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: {e}'") \
                from None
        input_text = body.get("input") or "{}"
        check_payload("input", input_text)
        try:
            value = orjson.loads(input_text)
        except orjson.JSONDecodeError as e:
            raise ApiError("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{e}'") from None
        variables = None
        if body.get("variables") is not None:
            check_payload("variables", body["variables"])
            try:
                variables = orjson.loads(body["variables"])
            except orjson.JSONDecodeError as e:
                raise ApiError("InvalidExecutionInput", f"Invalid variables: '{e}'") from None
            if not isinstance(variables, dict):
                raise ApiError("InvalidExecutionInput", "Invalid variables: must be a JSON object")
        mock = body.get("mock")
        if mock is not None and isinstance(mock.get("result"), str):
            check_payload("mock.result", mock["result"])
        try:
            return await run_test_state(
                self.engine, definition, value, state_name=body.get("stateName"), variables=variables, mock=mock,
                state_configuration=body.get("stateConfiguration"),
                inspection_level=body.get("inspectionLevel") or "INFO", role_arn=role, context=body.get("context"))
        except TestStateInputError as e:
            raise ApiError(e.code, e.message) from None
        except DefinitionError as e:
            raise ApiError("InvalidDefinition", problems_message(e.problems)) from None
