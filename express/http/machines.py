"""The StepFunctions operations on state machines: create, update, delete, describe, list and
validate them, and their tags. With a store (:mod:`express.store`) it decides, atomically, what
every worker serves; a machine of the config directory is the file's alone.
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from express.asl.errors import DefinitionError, Problem
from express.asl.uuids import uuid4
from express.asl.variable_references import VariableReferences, variable_references
from express.engine.machine import Machine
from express.http.api_base import store_call
from express.http.validation import (
    ARN_RE,
    ENCRYPTION_TYPES,
    LOG_LEVELS,
    MAX_TAGS,
    TAG_PATTERN,
    ApiError,
    check_name,
    check_shape,
    clip,
    raise_problems,
)
from express.http.versions import VersionOperations, publish, record_of
from express.serve.registry import DEFAULT_ENCRYPTION, INLINE_COMPILE_BYTES, Entry
from express.store import MachineRecord


def _identity(entry: Entry) -> tuple[Any, ...]:
    """What a second CreateStateMachine must repeat to be answered rather than refused."""
    return entry.definition_text, entry.role_arn, entry.type, entry.tracing, entry.encryption


def _record_identity(record: MachineRecord) -> tuple[Any, ...]:
    return record.definition, record.role_arn, record.type, record.tracing, record.encryption


_record = record_of


def _resource_not_found(arn: str) -> ApiError:
    return ApiError("ResourceNotFound", f"Resource not found: '{clip(arn)}'", resourceName=arn)


def _tag_string_problems(text: str, where: str, least: int, most: int) -> list[str]:
    shown = f"'{clip(text)}'"
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
            problems.append(f"Value '{clip(key)}' at '{where}.{i}.member.key' failed to satisfy constraint: "
                            "Tag keys with the prefix 'aws:' are reserved for AWS use")
        out.append({"key": key, "value": value})
    raise_problems(problems)
    return out


def _merge_tags(tags: list[dict[str, str]], added: list[dict[str, str]]) -> list[dict[str, str]]:
    """``added`` over ``tags``: a key given again takes the new value, in its old place."""
    merged = {t["key"]: t["value"] for t in tags}
    for t in added:
        merged[t["key"]] = t["value"]
    return [{"key": k, "value": v} for k, v in merged.items()]


class MachineOperations(VersionOperations):
    # ------------------------------------------------------------------ state machines
    async def create_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("CreateStateMachine", body)
        name = body["name"]
        check_name(name)
        role = body["roleArn"]
        if not ARN_RE.match(role):
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(role)}'")
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
        record = _record(name, entry)
        if body.get("publish"):  # version 1, made with the machine
            record, _ = publish(record, body.get("versionDescription"), entry.created)
            entry.versions, entry.last_version = {v["version"]: v for v in record.versions}, record.last_version
        store = self.registry.store
        if store is not None:
            # the store decides, atomically, which of concurrent Creates on any worker made the machine
            stored, created = await store_call(store.create(record))
            if not created:
                return self._created_before(name, asked, _record_identity(stored), stored.arn, stored.created)
            entry.seq = stored.seq
        else:
            existing = self.registry.entry(name)
            if existing is not None:  # created meanwhile (large definition compiled in a thread)
                return self._created_before(name, asked, _identity(existing), existing.machine.arn, existing.created)
        self._install(name, entry)
        out = {"stateMachineArn": machine.arn, "creationDate": entry.created}
        if body.get("publish"):
            out["stateMachineVersionArn"] = self.registry.version_arn(name, record.last_version)
        return out

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
            problems.append(f"Value '{clip(kind)}' at '{where}.type' failed to satisfy constraint: Member must "
                            f"satisfy enum value set: [{', '.join(ENCRYPTION_TYPES)}]")
        if key is not None and not 1 <= len(key) <= 2048:
            bound = "greater than or equal to 1" if not key else "less than or equal to 2048"
            problems.append(f"Value '{clip(key)}' at '{where}.kmsKeyId' failed to satisfy constraint: Member must "
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
            raise ApiError("ValidationException", f"1 validation error detected: Value '{clip(level)}' at "
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
        raise_problems(problems)
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
            record = await store_call(store.get(name))  # the store's tags: what any worker set, at once
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
        record = await store_call(store.retag(name, change))
        if record is None:
            raise _resource_not_found(arn)
        self.install_versions(name, record)  # served here at once; the other workers follow the change sequence

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
        if role is not None and not ARN_RE.match(role):
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(role)}'")
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
            references_of=references_of, revision_id=uuid4() if changed else entry.revision_id)
        updated = _record(name, new)
        now = time.time()
        number = 0

        def change(stored: MachineRecord) -> MachineRecord:
            # the machine's own fields from this update; its tags, versions and aliases as stored
            nonlocal number
            record = dataclasses.replace(updated, tags=stored.tags, versions=stored.versions,
                                         last_version=stored.last_version, aliases=stored.aliases)
            if body.get("publish"):
                record, number = publish(record, body.get("versionDescription"), now)
            return record

        store = self.registry.store
        if store is not None:
            stored = await store_call(store.modify(name, change))
            if stored is None:  # deleted meanwhile, through another worker
                raise ApiError("StateMachineDoesNotExist",
                               f"State Machine Does Not Exist: '{clip(body['stateMachineArn'])}'")
        else:
            current = self.registry.entry(name)
            if current is None:  # deleted while the definition compiled
                raise ApiError("StateMachineDoesNotExist",
                               f"State Machine Does Not Exist: '{clip(body['stateMachineArn'])}'")
            stored = change(_record(name, current))
        new.seq, new.tags = stored.seq, list(stored.tags)
        new.versions, new.last_version = {v["version"]: v for v in stored.versions}, stored.last_version
        new.aliases = {a["name"]: a for a in stored.aliases}
        self._install(name, new)
        out: dict[str, Any] = {"updateDate": now}
        if new.revision_id is not None:
            out["revisionId"] = new.revision_id
        if body.get("publish"):
            out["stateMachineVersionArn"] = self.registry.version_arn(name, number)
        return out

    async def delete_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DeleteStateMachine", body)
        name = self.machine_name(body["stateMachineArn"]) if body["stateMachineArn"].startswith("arn:") else None
        if name is None:
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(body['stateMachineArn'])}'")
        entry = self.registry.entry(name)
        if entry is not None:
            self._check_mutable(name, entry)
        # Idempotent, as on AWS; running executions finish on the definition they started with.
        store = self.registry.store
        seq = None
        if store is not None:
            seq = await store_call(store.delete(name))
        current = self.registry.entry(name)
        if current is not None and (seq is None or current.seq < seq):
            self.registry.delete(name)
        return {}

    async def describe_state_machine(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DescribeStateMachine", body)
        await self._catch_up()  # what any worker has changed, described here at once
        arn = body["stateMachineArn"]
        if arn.count(":") == 7 and "#" not in arn:
            return self._describe_version(arn, body.get("includedData") == "METADATA_ONLY")
        name, entry = self.entry_for(arn)
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

    def _describe_version(self, arn: str, metadata_only: bool) -> dict[str, Any]:
        """DescribeStateMachine of a version ARN: that version, as published."""
        name, qualifier = self.qualified_name(arn)
        entry = self.registry.entry(name)
        version = entry.versions.get(int(qualifier)) if entry is not None and qualifier and qualifier.isdigit() \
            else None
        if entry is None or version is None:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{clip(arn)}'")
        out: dict[str, Any] = {
            "stateMachineArn": arn,
            "name": name,
            "status": "ACTIVE",
            "definition": "{}" if metadata_only else version["definition"],
            "roleArn": version["role_arn"],
            "type": entry.type,
            "creationDate": version["created"],
            "loggingConfiguration": version["logging"] or {"level": "OFF", "includeExecutionData": False},
            "tracingConfiguration": {"enabled": version["tracing"]},
            "encryptionConfiguration": dict(version["encryption"]),
        }
        if version["revision_id"] is not None:
            out["revisionId"] = version["revision_id"]
        if version["description"] is not None:
            out["description"] = version["description"]
        if not metadata_only and version["references"]:
            out["variableReferences"] = {state: list(names) for state, names in version["references"].items()}
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
                raise ApiError("InvalidToken", f"Invalid Token: '{clip(token)}'") from None
            if not after:
                raise ApiError("InvalidToken", f"Invalid Token: '{clip(token)}'")
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
