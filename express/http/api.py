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
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from express.billing import bill
from express.config import Settings
from express.engine import Machine
from express.errors import DefinitionError, Problem
from express.http.names import NameConflict, NamesExhausted, NameTable, input_digest
from express.http.teststate import TestStateInputError, run_test_state
from express.registry import Entry, Registry

MAX_INPUT_BYTES = 262_144
MAX_DEFINITION_BYTES = 1_048_576
INLINE_COMPILE_BYTES = 64 * 1024  # larger definitions compile in a worker thread (unless JSONata)
DEFAULT_ROLE = "arn:aws:iam::000000000000:role/express"
TARGET_PREFIX = "AWSStepFunctions."

_BAD_NAME = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]')
_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:\d*:.+$")

INCLUDED_DATA = ("ALL_DATA", "METADATA_ONLY")
MACHINE_TYPES = ("STANDARD", "EXPRESS")
LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")
SEVERITIES = ("ERROR", "WARNING")
INSPECTION_LEVELS = ("INFO", "DEBUG", "TRACE")


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


@dataclass(slots=True)
class MachineMeta:
    type: str = "EXPRESS"
    tracing: bool = False
    revision_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tags: list[dict[str, str]] = field(default_factory=list)


class ExecutionAbandoned(Exception):
    """A named execution ended without an answer (server error or shutdown)."""


# ---------------------------------------------------------------------- metrics (cached children)
class _Metrics:
    def __init__(self) -> None:
        try:
            from express import metrics
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
        self.meta: dict[str, MachineMeta] = {}
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
        name = self.machine_name(arn)
        entry = self.registry.entry(name)
        if entry is None:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{_clip(arn)}'")
        return name, entry

    def machine_type(self, name: str) -> str:
        meta = self.meta.get(name)
        return meta.type if meta is not None else "EXPRESS"

    async def compile(self, text: str, name: str, logging: Mapping[str, Any] | None = None) -> Machine:
        """Compile off the event loop when the definition is large; DefinitionError -> InvalidDefinition."""
        try:
            return await self._compile(text, name, logging)
        except DefinitionError as e:
            raise ApiError("InvalidDefinition", problems_message(e.problems)) from None

    async def _compile(self, text: str, name: str, logging: Mapping[str, Any] | None = None) -> Machine:
        # jsonatapy's compiled expressions must live and die on the thread that made them (they
        # panic otherwise), so definitions that may hold JSONata always compile on the loop.
        config = self.registry.logging_for(name, logging)
        if len(text) > INLINE_COMPILE_BYTES and "JSONata" not in text:
            return await asyncio.to_thread(self.engine.compile, text, name, config)
        return self.engine.compile(text, name, config)

    def install(self, name: str, machine: Machine, text: str, created: float) -> Entry:
        put_compiled = getattr(self.registry, "put_compiled", None)
        if put_compiled is not None:
            entry: Entry = put_compiled(name, machine, text)
        else:
            entry = Entry(machine, text, created)
            self.registry._entries[name] = entry  # until Registry.put_compiled exists
        entry.created = created
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
            raise ApiError("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{e}'") from None
        return machine_name, entry, input_text, value, name

    async def start_sync_execution(self, body: dict[str, Any], headers: Mapping[str, str]) -> bytes:
        machine_name, entry, input_text, value, name = self._prepare("StartSyncExecution", body)
        if self.machine_type(machine_name) != "EXPRESS":
            raise ApiError("StateMachineTypeNotSupported",
                           "This operation is not supported by this type of state machine")
        trace = headers.get("x-amzn-trace-id") or body.get("traceHeader")
        included = body.get("includedData") != "METADATA_ONLY"
        if name is None:
            name = str(uuid.uuid4())
            return await self._run(entry.machine, machine_name, name, self._execution_arn(machine_name, name),
                                   input_text, value, trace, included, "sync")
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
        try:
            record = names.claim(key, digest, arn, time.time())
        except NamesExhausted:
            raise ApiError("ThrottlingException",
                           f"Too many executions with names are still running ({len(names)}): retry later") from None
        try:
            answer = await self._run(entry.machine, machine_name, name, arn, input_text, value, trace, True, "sync")
        except BaseException as e:
            names.abandon(record, ExecutionAbandoned(f"The execution '{name}' ended without an answer: "
                                                     f"{type(e).__name__}; retry it"))
            raise
        names.finish(record, answer)
        return answer

    def _execution_arn(self, machine_name: str, name: str) -> str:
        return f"{self._exec_prefix}{machine_name}:{name}:{uuid.uuid4()}"

    async def _run(self, machine: Machine, machine_name: str, name: str, arn: str, input_text: str, value: Any,
                   trace: str | None, included: bool, mode: str) -> bytes:
        result = await machine.execute(value, name=name, arn=arn, mode=mode)
        status = result.status
        response: dict[str, Any] = {
            "executionArn": arn,
            "stateMachineArn": machine.arn,
            "name": name,
            "startDate": result.start_time,
            "stopDate": result.stop_time,
            "status": status,
        }
        output_bytes = 0
        if status == "SUCCEEDED":
            output = orjson.dumps(result.output).decode()
            output_bytes = len(output)
            if included:
                response["output"] = output
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
        billing = bill(result.duration_s, machine.definition_size, len(input_text) + output_bytes)
        response["billingDetails"] = {"billedMemoryUsedInMB": billing.billed_memory_mb,
                                      "billedDurationInMilliseconds": billing.billed_duration_ms}
        return orjson.dumps(response)

    async def start_execution(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        machine_name, entry, input_text, value, name = self._prepare("StartExecution", body)
        trace = headers.get("x-amzn-trace-id") or body.get("traceHeader")
        if self.background >= self.max_background:
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
        tags = self._tags(body.get("tags"))
        text = body["definition"]
        existing = self.registry.entry(name)
        if existing is not None:
            same = (existing.definition_text == text and existing.role_arn == role
                    and self.machine_type(name) == machine_type)
            if not same:
                raise ApiError("StateMachineAlreadyExists",
                               f"State Machine Already Exists: '{self._arn_prefix}{name}'")
            return {"stateMachineArn": existing.machine.arn, "creationDate": existing.created}
        if len(self.registry) >= self.max_machines:
            raise ApiError("StateMachineLimitExceeded",
                           f"The maximum number of state machines ({self.max_machines}) has been reached")
        machine = await self.compile(text, name, logging)
        if self.registry.entry(name) is not None:  # created meanwhile (large definition compiled in a thread)
            raise ApiError("StateMachineAlreadyExists", f"State Machine Already Exists: '{self._arn_prefix}{name}'")
        entry = self.install(name, machine, text, time.time())
        entry.role_arn = role
        entry.logging = logging
        self.meta[name] = MachineMeta(type=machine_type, tracing=tracing, tags=tags)
        return {"stateMachineArn": machine.arn, "creationDate": entry.created}

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

    @staticmethod
    def _tags(tags: Any) -> list[dict[str, str]]:
        if not tags:
            return []
        if len(tags) > 50:
            raise ApiError("TooManyTags", "A resource can have at most 50 tags", resourceName="")
        out = []
        for t in tags:
            if not isinstance(t, dict) or not isinstance(t.get("key"), str) or not isinstance(t.get("value", ""), str):
                raise ApiError("SerializationException", "Each tag must be an object with string key and value")
            if not 1 <= len(t["key"]) <= 128 or len(t.get("value", "")) > 256:
                raise ApiError("ValidationException", "1 validation error detected: a tag key must be 1-128 "
                               "characters and a tag value at most 256")
            out.append({"key": t["key"], "value": t.get("value", "")})
        return out

    async def update_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("UpdateStateMachine", body)
        text = body.get("definition")
        role = body.get("roleArn")
        if text is None and role is None and body.get("loggingConfiguration") is None \
                and body.get("tracingConfiguration") is None:
            raise ApiError("MissingRequiredParameter", "Either the definition or the roleArn must be specified")
        name, entry = self.entry_for(body["stateMachineArn"])
        if role is not None and not _ARN.match(role):
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(role)}'")
        logging = self._logging(body.get("loggingConfiguration")) if "loggingConfiguration" in body else entry.logging
        meta = self.meta.setdefault(name, MachineMeta())
        tracing = self._tracing(body.get("tracingConfiguration")) if "tracingConfiguration" in body else meta.tracing
        if (text is not None and text != entry.definition_text) or logging != entry.logging:
            text = text if text is not None else entry.definition_text
            machine = await self.compile(text, name, logging)
            current = self.registry.entry(name)
            if current is None:
                raise ApiError("StateMachineDoesNotExist",
                               f"State Machine Does Not Exist: '{_clip(body['stateMachineArn'])}'")
            new = self.install(name, machine, text, current.created)
            new.role_arn = current.role_arn
            entry = new
        if role is not None:
            entry.role_arn = role
        entry.logging = logging
        meta.tracing = tracing
        meta.revision_id = str(uuid.uuid4())
        return {"updateDate": time.time(), "revisionId": meta.revision_id}

    async def delete_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DeleteStateMachine", body)
        name = self.machine_name(body["stateMachineArn"]) if body["stateMachineArn"].startswith("arn:") else None
        if name is None:
            raise ApiError("InvalidArn", f"Invalid Arn: '{_clip(body['stateMachineArn'])}'")
        # Idempotent, as on AWS; running executions finish on the definition they started with.
        self.registry.delete(name)
        self.meta.pop(name, None)
        return {}

    async def describe_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DescribeStateMachine", body)
        name, entry = self.entry_for(body["stateMachineArn"])
        meta = self.meta.get(name) or MachineMeta()
        return {
            "stateMachineArn": entry.machine.arn,
            "name": name,
            "status": "ACTIVE",
            "definition": entry.definition_text,
            "roleArn": entry.role_arn,
            "type": meta.type,
            "creationDate": entry.created,
            "loggingConfiguration": entry.logging or {"level": "OFF", "includeExecutionData": False},
            "tracingConfiguration": {"enabled": meta.tracing},
            "revisionId": meta.revision_id,
        }

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
        names = [n for n in self.registry if n > after]
        page = names[:limit]
        items = []
        for n in page:
            entry = self.registry.entry(n)
            if entry is not None:
                items.append({"stateMachineArn": entry.machine.arn, "name": n, "type": self.machine_type(n),
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
                inspection_level=body.get("inspectionLevel") or "INFO")
        except TestStateInputError as e:
            raise ApiError(e.code, e.message) from None
        except DefinitionError as e:
            raise ApiError("InvalidDefinition", problems_message(e.problems)) from None
