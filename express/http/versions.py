"""State machine versions and aliases, as AWS Step Functions has them: a *version* is a numbered,
immutable snapshot of a machine's current revision (PublishStateMachineVersion, or ``publish`` on
Create/Update), run by its ARN ``…:stateMachine:NAME:3``; an *alias* (``…:stateMachine:NAME:PROD``)
routes each execution to one of one or two versions by their weights.

Both live in the machine's record (:class:`express.store.MachineRecord`): every change is one
atomic read-modify-write of that record in the store (:meth:`express.store.MachineStore.modify`),
so a version an alias routes to cannot be deleted by another worker at the same moment, and the
change sequence carries versions and aliases to every worker like any other change of the machine.
Each version is compiled once per worker, at its first execution (:meth:`Registry.version_machine`).
"""
from __future__ import annotations

import base64
import dataclasses
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from express.asl.errors import DefinitionError
from express.http.api_base import ApiBase, store_call
from express.http.validation import ApiError, check_shape, clip, problems_message, raise_problems
from express.serve.registry import Entry
from express.store import MachineRecord

MAX_VERSIONS = 1000  # per state machine, AWS's quota
MAX_ALIASES = 100  # per state machine, AWS's quota
ALIAS_NAME_PATTERN = r"^(?=.*[a-zA-Z_\-\.])[a-zA-Z0-9_\-\.]+$"
_ALIAS_NAME = re.compile(ALIAS_NAME_PATTERN)
INITIAL_REVISION = "INITIAL"  # the revisionId to name a machine that no update has revised yet


def record_of(name: str, entry: Entry) -> MachineRecord:
    """The machine ``entry`` as the store keeps it."""
    return MachineRecord(
        name=name, arn=entry.machine.arn, definition=entry.definition_text, role_arn=entry.role_arn, type=entry.type,
        created=entry.created, logging=entry.logging, tracing=entry.tracing, revision_id=entry.revision_id,
        encryption=entry.encryption, references={k: list(v) for k, v in entry.references.items()},
        tags=entry.tags, versions=[entry.versions[n] for n in sorted(entry.versions)],
        last_version=entry.last_version, aliases=list(entry.aliases.values()))


def publish(record: MachineRecord, description: str | None, now: float) -> tuple[MachineRecord, int]:
    """``record`` with a version of its current revision, and that version's number: the existing
    one when the revision is published already (AWS's idempotency), else the next number.
    ServiceQuotaExceededException beyond :data:`MAX_VERSIONS`."""
    for version in reversed(record.versions):
        if version["revision_id"] == record.revision_id and version["definition"] == record.definition:
            return record, int(version["version"])
    if len(record.versions) >= MAX_VERSIONS:
        raise ApiError("ServiceQuotaExceededException",
                       f"The maximum number of versions ({MAX_VERSIONS}) of the state machine '{record.arn}' has "
                       "been reached: delete unused versions with DeleteStateMachineVersion")
    number = record.last_version + 1
    version = {"version": number, "created": now, "description": description, "definition": record.definition,
               "role_arn": record.role_arn, "logging": record.logging, "tracing": record.tracing,
               "encryption": dict(record.encryption), "revision_id": record.revision_id,
               "references": {k: list(v) for k, v in record.references.items()}}
    return dataclasses.replace(record, versions=[*record.versions, version], last_version=number), number


def _page(token: str | None) -> str:
    """The key a ``nextToken`` continues after ("" for the first page)."""
    if token is None:
        return ""
    try:
        after = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise ApiError("InvalidToken", f"Invalid Token: '{clip(token)}'") from None
    if not after:
        raise ApiError("InvalidToken", f"Invalid Token: '{clip(token)}'")
    return after


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def _not_found(arn: str, what: str = "Resource") -> ApiError:
    return ApiError("ResourceNotFound", f"{what} not found: '{clip(arn)}'", resourceName=arn)


def _invalid_routing(message: str) -> ApiError:
    return ApiError("ValidationException", f"Invalid Routing Configuration: {message}",
                    reason="INVALID_ROUTING_CONFIGURATION")


def pick(routing: list[dict[str, Any]]) -> int:
    """The version one execution of an alias runs: the first with probability its weight in 100."""
    if len(routing) == 1:
        return int(routing[0]["version"])
    first, second = routing
    return int(first["version"] if random.random() * 100 < first["weight"] else second["version"])


class VersionOperations(ApiBase):
    # ------------------------------------------------------------------ ARNs
    def qualified_name(self, arn: str) -> tuple[str, str | None]:
        """(machine name, version number or alias name) of a qualified ARN, (name, None) of a
        machine's own; AWS's errors for anything else."""
        parts = arn.split(":")
        if len(parts) == 8 and parts[7] and arn.startswith("arn:"):
            return self.machine_name(":".join(parts[:7])), parts[7]
        return self.machine_name(arn), None

    def _version_number(self, arn: str) -> tuple[str, int]:
        name, qualifier = self.qualified_name(arn)
        if qualifier is None or not qualifier.isdigit():
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(arn)}': not a state machine version ARN")
        return name, int(qualifier)

    def _alias_name(self, arn: str) -> tuple[str, str]:
        name, qualifier = self.qualified_name(arn)
        if qualifier is None or qualifier.isdigit():
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(arn)}': not a state machine alias ARN")
        return name, qualifier

    async def _entry_where(self, name: str, present: Callable[[Entry], bool]) -> Entry | None:
        """The machine's entry once ``present(it)``, after catching up with the store when it is not
        (made through another worker); None when it still is not."""
        entry = self.registry.entry(name)
        if entry is not None and present(entry):
            return entry
        if not await self._catch_up():
            return None
        entry = self.registry.entry(name)
        return entry if entry is not None and present(entry) else None

    # ------------------------------------------------------------------ executions of versions and aliases
    async def versioned_entry(self, arn: str) -> tuple[str, Entry] | None:
        """What StartExecution/StartSyncExecution of a version or alias ARN runs: the machine's name
        and the version's compiled machine (an alias picks a version by its weights, per execution);
        None for an unqualified ARN; StateMachineDoesNotExist for an unknown version or alias."""
        machine_arn, _, case = arn.partition("#")
        if case or machine_arn.count(":") != 7:
            return None
        name, qualifier = self.qualified_name(machine_arn)
        assert qualifier is not None
        if qualifier.isdigit():
            number = int(qualifier)
            machine = self.registry.compiled_version(name, number)
            entry = self.registry.entry(name) if machine is not None else \
                await self._entry_where(name, lambda e: number in e.versions)
        else:
            entry = await self._entry_where(name, lambda e: qualifier in e.aliases)
            number = pick(entry.aliases[qualifier]["routing"]) if entry is not None else 0
            machine = self.registry.compiled_version(name, number)
        if entry is None or number not in entry.versions:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{clip(arn)}'")
        version = entry.versions[number]
        if machine is None:
            try:
                machine = await self.registry.version_machine(name, number, version)
            except DefinitionError as e:  # compiled where it was published: only another [functions] gets here
                raise ApiError("InvalidDefinition", problems_message(e.problems)) from None
        return name, Entry(machine, version["definition"], version["created"], role_arn=version["role_arn"],
                           type=entry.type)

    # ------------------------------------------------------------------ changes of a machine's record
    async def _change(self, name: str, arn: str, change: Callable[[MachineRecord], MachineRecord],
                      missing: Callable[[], ApiError]) -> MachineRecord:
        """``change`` applied to the machine's record: in the store, atomically, with a store; else in
        this process. The result is served here at once; the other workers follow the change sequence."""
        store = self.registry.store
        entry = self.registry.entry(name)
        if entry is not None:
            self._check_mutable(name, entry)
        if store is None:
            if entry is None:
                raise missing()
            record = change(record_of(name, entry))
        else:
            stored = await store_call(store.modify(name, change))
            if stored is None:
                raise missing()
            record = stored
        self.install_versions(name, record)
        return record

    def install_versions(self, name: str, record: MachineRecord) -> None:
        """Serve the record's tags, versions and aliases here when this process has its definition
        (else the follower compiles the newer definition and installs the whole record)."""
        current = self.registry.entry(name)
        if current is None or current.from_config or current.definition_text != record.definition:
            return
        if self.registry.store is not None and current.seq >= record.seq:
            return
        self.registry.install(dataclasses.replace(
            current, tags=list(record.tags), seq=record.seq, versions={v["version"]: v for v in record.versions},
            last_version=record.last_version, aliases={a["name"]: a for a in record.aliases}), name)

    # ------------------------------------------------------------------ versions
    async def publish_state_machine_version(self, body: dict[str, Any],
                                            headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("PublishStateMachineVersion", body)
        arn = body["stateMachineArn"]
        name, entry = await self._known_entry(arn)
        expected, description = body.get("revisionId"), body.get("description")
        now = time.time()
        number = 0

        def change(record: MachineRecord) -> MachineRecord:
            nonlocal number
            current = record.revision_id or INITIAL_REVISION
            if expected is not None and expected != current:
                raise ApiError("ConflictException", f"Failed to publish the State Machine version for revision "
                               f"{clip(expected)}. The current State Machine revision is {current}.")
            record, number = publish(record, description, now)
            return record

        record = await self._change(name, arn, change, lambda: ApiError(
            "StateMachineDoesNotExist", f"State Machine Does Not Exist: '{clip(arn)}'"))
        version = next(v for v in record.versions if v["version"] == number)
        return {"creationDate": version["created"], "stateMachineVersionArn": self.registry.version_arn(name, number)}

    async def list_state_machine_versions(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("ListStateMachineVersions", body)
        arn = body["stateMachineArn"]
        name, qualifier = self.qualified_name(arn)
        if qualifier is not None:
            raise ApiError("ValidationException", f"Invalid Arn: '{clip(arn)}': expected the ARN of a state machine, "
                           "not of a version or alias")
        limit = body.get("maxResults") or 100
        after = _page(body.get("nextToken"))
        if after and not after.isdigit():
            raise ApiError("InvalidToken", f"Invalid Token: '{clip(body['nextToken'])}'")
        await self._catch_up()
        entry = self.registry.entry(name)
        if entry is None:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{clip(arn)}'")
        numbers = sorted((n for n in entry.versions if not after or n < int(after)), reverse=True)  # newest first
        page = numbers[:limit]
        out: dict[str, Any] = {"stateMachineVersions": [
            {"stateMachineVersionArn": self.registry.version_arn(name, n), "creationDate": entry.versions[n]["created"]}
            for n in page]}
        if len(numbers) > limit:
            out["nextToken"] = _token(str(page[-1]))
        return out

    async def delete_state_machine_version(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DeleteStateMachineVersion", body)
        arn = body["stateMachineVersionArn"]
        name, number = self._version_number(arn)
        entry = self.registry.entry(name)
        if entry is not None and entry.from_config and self.registry.store is not None:
            return {}  # a file's machine has no versions with a store

        def change(record: MachineRecord) -> MachineRecord:
            routed = [a["name"] for a in record.aliases if any(r["version"] == number for r in a["routing"])]
            if routed:
                raise ApiError("ConflictException", "Version to be deleted must not be referenced by an alias. "
                               f"Current list of aliases referencing this version: [{', '.join(sorted(routed))}]")
            return dataclasses.replace(record, versions=[v for v in record.versions if v["version"] != number])

        # idempotent, as on AWS: deleting a version (or machine) that is not there succeeds
        store = self.registry.store
        if store is None and entry is None:
            return {}
        try:
            await self._change(name, arn, change, lambda: ApiError("ResourceNotFound", ""))
        except ApiError as e:
            if e.code != "ResourceNotFound":
                raise
        return {}

    # ------------------------------------------------------------------ aliases
    def _routing(self, items: Any, where: str = "routingConfiguration") -> tuple[str, list[dict[str, Any]]]:
        """AWS's checks of a routingConfiguration: the machine it routes and [{version, weight}]."""
        if not isinstance(items, list):
            raise ApiError("SerializationException", f"Value for '{where}' must be a list")
        problems = []
        if not items:
            problems.append(f"Value '[]' at '{where}' failed to satisfy constraint: Member must have length "
                            "greater than or equal to 1")
        elif len(items) > 2:
            problems.append(f"Value at '{where}' failed to satisfy constraint: Member must have length less than or "
                            "equal to 2")
        routes: list[tuple[str, int, int]] = []
        for i, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise ApiError("SerializationException", f"Value for '{where}.{i}' must be an object")
            arn, weight = item.get("stateMachineVersionArn"), item.get("weight")
            if arn is not None and not isinstance(arn, str):
                raise ApiError("SerializationException", f"Value for '{where}.{i}.member.stateMachineVersionArn' must "
                                                         "be a string")
            if weight is not None and (not isinstance(weight, int) or isinstance(weight, bool)):
                raise ApiError("SerializationException", f"Value for '{where}.{i}.member.weight' must be an integer")
            if arn is None:
                problems.append(f"Value null at '{where}.{i}.member.stateMachineVersionArn' failed to satisfy "
                                "constraint: Member must not be null")
            if weight is None:
                problems.append(f"Value null at '{where}.{i}.member.weight' failed to satisfy constraint: Member "
                                "must not be null")
            elif not 0 <= weight <= 100:
                bound = "greater than or equal to 0" if weight < 0 else "less than or equal to 100"
                problems.append(f"Value '{weight}' at '{where}.{i}.member.weight' failed to satisfy constraint: "
                                f"Member must have value {bound}")
            if arn is not None and weight is not None:
                name, number = self._version_number(arn)
                routes.append((name, number, weight))
        raise_problems(problems)
        if len({name for name, _, _ in routes}) > 1:
            raise _invalid_routing("the versions must be of one state machine")
        if len({number for _, number, _ in routes}) < len(routes):
            raise _invalid_routing("the versions must be different")
        if sum(weight for _, _, weight in routes) != 100:
            raise _invalid_routing("the weights of the versions must add up to 100")
        return routes[0][0], [{"version": number, "weight": weight} for _, number, weight in routes]

    def _routing_answer(self, name: str, routing: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"stateMachineVersionArn": self.registry.version_arn(name, r["version"]), "weight": r["weight"]}
                for r in routing]

    @staticmethod
    def _check_versions(record: MachineRecord, name: str, routing: list[dict[str, Any]],
                        arn_of: Callable[[str, int], str]) -> None:
        published = {v["version"] for v in record.versions}
        for r in routing:
            if r["version"] not in published:
                raise _not_found(arn_of(name, r["version"]))

    async def create_state_machine_alias(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("CreateStateMachineAlias", body)
        alias = body["name"]
        if not _ALIAS_NAME.match(alias):
            raise_problems([f"Value '{clip(alias)}' at 'name' failed to satisfy constraint: Member must satisfy "
                            f"regular expression pattern: {ALIAS_NAME_PATTERN}"])
        name, routing = self._routing(body["routingConfiguration"])
        description = body.get("description")
        alias_arn = f"{self._arn_prefix}{name}:{alias}"
        now = time.time()
        created = now

        def change(record: MachineRecord) -> MachineRecord:
            nonlocal created
            self._check_versions(record, name, routing, self.registry.version_arn)
            for a in record.aliases:
                if a["name"] == alias:  # AWS: the same request again is answered, another one refused
                    if a["routing"] != routing or a["description"] != description:
                        raise ApiError("ConflictException", f"Alias '{alias}' already exists with a different "
                                       f"configuration: '{alias_arn}'")
                    created = a["created"]
                    return record
            if len(record.aliases) >= MAX_ALIASES:
                raise ApiError("ServiceQuotaExceededException",
                               f"The maximum number of aliases ({MAX_ALIASES}) of the state machine '{record.arn}' "
                               "has been reached")
            created = now
            new = {"name": alias, "description": description, "routing": routing, "created": now, "updated": now}
            return dataclasses.replace(record, aliases=[*record.aliases, new])

        await self._change(name, alias_arn, change, lambda: _not_found(f"{self._arn_prefix}{name}"))
        return {"stateMachineAliasArn": alias_arn, "creationDate": created}

    async def describe_state_machine_alias(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DescribeStateMachineAlias", body)
        arn = body["stateMachineAliasArn"]
        name, alias = self._alias_name(arn)
        await self._catch_up()
        entry = self.registry.entry(name)
        found = entry.aliases.get(alias) if entry is not None else None
        if found is None:
            raise _not_found(arn)
        out: dict[str, Any] = {"stateMachineAliasArn": arn, "name": alias,
                               "routingConfiguration": self._routing_answer(name, found["routing"]),
                               "creationDate": found["created"], "updateDate": found["updated"]}
        if found["description"] is not None:
            out["description"] = found["description"]
        return out

    async def update_state_machine_alias(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("UpdateStateMachineAlias", body)
        arn = body["stateMachineAliasArn"]
        name, alias = self._alias_name(arn)
        if body.get("description") is None and body.get("routingConfiguration") is None:
            raise ApiError("ValidationException", "Either the description or the RoutingConfiguration must be "
                           "specified", reason="MISSING_REQUIRED_PARAMETER")
        routing = None
        if body.get("routingConfiguration") is not None:
            routed, routing = self._routing(body["routingConfiguration"])
            if routed != name:
                raise _invalid_routing(f"the versions must be of the state machine of the alias '{clip(arn)}'")
        now = time.time()

        def change(record: MachineRecord) -> MachineRecord:
            current = next((a for a in record.aliases if a["name"] == alias), None)
            if current is None:
                raise _not_found(arn)
            new = dict(current, updated=now)
            if routing is not None:
                self._check_versions(record, name, routing, self.registry.version_arn)
                new["routing"] = routing
            if body.get("description") is not None:
                new["description"] = body["description"]
            return dataclasses.replace(record, aliases=[new if a is current else a for a in record.aliases])

        await self._change(name, arn, change, lambda: _not_found(arn))
        return {"updateDate": now}

    async def delete_state_machine_alias(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("DeleteStateMachineAlias", body)
        arn = body["stateMachineAliasArn"]
        name, alias = self._alias_name(arn)

        def change(record: MachineRecord) -> MachineRecord:
            if not any(a["name"] == alias for a in record.aliases):
                raise _not_found(arn)
            return dataclasses.replace(record, aliases=[a for a in record.aliases if a["name"] != alias])

        await self._change(name, arn, change, lambda: _not_found(arn))
        return {}

    async def list_state_machine_aliases(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("ListStateMachineAliases", body)
        arn = body["stateMachineArn"]
        name, qualifier = self.qualified_name(arn)
        if qualifier is not None and not qualifier.isdigit():
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(arn)}': expected the ARN of a state machine or of "
                           "a version")
        limit = body.get("maxResults") or 100
        after = _page(body.get("nextToken"))
        await self._catch_up()
        entry = self.registry.entry(name)
        if entry is None:
            raise _not_found(arn)
        aliases = sorted(entry.aliases.values(), key=lambda a: a["name"])
        if qualifier is not None:  # a version's ARN: the aliases routing to it
            number = int(qualifier)
            if number not in entry.versions:
                raise _not_found(arn)
            aliases = [a for a in aliases if any(r["version"] == number for r in a["routing"])]
        listed = [a for a in aliases if a["name"] > after]
        page = listed[:limit]
        out: dict[str, Any] = {"stateMachineAliases": [
            {"stateMachineAliasArn": f"{self._arn_prefix}{name}:{a['name']}", "creationDate": a["created"]}
            for a in page]}
        if len(listed) > limit:
            out["nextToken"] = _token(page[-1]["name"])
        return out
