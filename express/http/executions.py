"""The StepFunctions operations that run: StartSyncExecution and StartExecution (their names
exactly-once, see :mod:`express.http.names`), and TestState.
"""
from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

from express.asl.errors import DefinitionError
from express.asl.limits import decode_refusal, input_refusal
from express.asl.uuids import uuid4
from express.engine.machine import Machine
from express.http.api_base import store_call
from express.http.messages import in_task
from express.http.names import NameConflict, NamesExhausted, input_digest
from express.http.teststate import TestStateInputError, run_test_state
from express.http.validation import ARN_RE, ApiError, check_name, check_payload, check_shape, clip, problems_message
from express.http.versions import VersionOperations
from express.serve.registry import Entry
from express.store import MachineStore, NameClaim, StoreError

# A named execution's lease in the state store outlives the execution cap by this much (clock skew
# between hosts, the answer's write); duplicates poll for the answer at most this far apart.
NAME_LEASE_MARGIN_S = 5.0
NAME_POLL_MAX_S = 0.25


class ExecutionAbandoned(Exception):
    """A named execution ended without an answer (server error or shutdown)."""


class ExecutionOperations(VersionOperations):
    def _prepare(self, op: str, body: dict[str, Any], versioned: tuple[str, Entry] | None = None
                 ) -> tuple[str, Entry, str, Any, str | None]:
        check_shape(op, body)
        name = body.get("name")
        if name is not None:
            check_name(name)
        machine_name, entry = versioned if versioned is not None else self.entry_for(body["stateMachineArn"])
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
            if e.code != "StateMachineDoesNotExist":
                raise
            await in_task()  # the state store's client may need one (StartSyncExecution starts inline)
            # a version or alias ARN (express.http.versions): the version it runs
            versioned = await self.versioned_entry(body["stateMachineArn"])
            if versioned is not None:
                return self._prepare(op, body, versioned)
            if not await self._catch_up():
                raise
            return self._prepare(op, body)

    async def start_sync_execution(self, body: dict[str, Any], headers: Mapping[str, str]) -> bytes:
        machine_name, entry, input_text, value, name = await self._prepare_following("StartSyncExecution", body)
        # started inline (express.http.middleware.INLINE_OPERATIONS): a machine that may wait (its
        # branches, timeouts and clients) and a name kept in the state store go on in a Task
        if entry.machine.may_wait or (name is not None and self.registry.store is not None):
            await in_task()
        if self.machine_type(machine_name) != "EXPRESS":
            raise ApiError("StateMachineTypeNotSupported",
                           "This operation is not supported by this type of state machine")
        trace = headers.get("x-amzn-trace-id") or body.get("traceHeader")
        included = body.get("includedData") != "METADATA_ONLY"
        if name is None:
            name = uuid4()
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
                store = self.registry.store
                if store is None:
                    answer = await self._run(entry.machine, machine_name, name, arn, input_text, value, trace, True,
                                             "sync")
                else:
                    answer = await self._run_once(store, entry.machine, machine_name, name, digest, arn, input_text,
                                                  value, trace)
            except BaseException as e:
                names.abandon(record, ExecutionAbandoned(f"The execution '{name}' ended without an answer: "
                                                         f"{type(e).__name__}; retry it"))
                raise
        finally:
            self.sync_running -= 1
        names.finish(record, answer)
        return answer

    async def _run_once(self, store: MachineStore, machine: Machine, machine_name: str, name: str, digest: bytes,
                        arn: str, input_text: str, value: Any, trace: str | None) -> bytes:
        """A named StartSyncExecution decided by the state store, so that the name runs once across
        restarts and servers: the store's answer if the name finished, a wait while another owner
        runs it, else this process runs it under a lease (the execution cap plus a margin) and a
        fencing token; an owner whose lease ran out cannot write its late answer (the name's answer
        is its successor's)."""
        lease = self.engine.max_duration_s + NAME_LEASE_MARGIN_S
        claim = await self._claim_name(store, machine_name, name, digest, arn, time.time(), lease)
        if claim.answer is not None:
            return claim.answer
        try:
            answer = await self._run(machine, machine_name, name, claim.execution_arn, input_text, value, trace,
                                     True, "sync")
        except BaseException:
            await asyncio.shield(self._release_name(store, machine_name, name, claim.token))
            raise
        if await store_call(store.finish_name(machine_name, name, claim.token, answer,
                                              self.settings.http.name_retention_s)):
            return answer
        # the lease ran out while this ran (the process stalled) and the name passed on: its answer
        # is the successor's, once there is one
        later = await self._claim_name(store, machine_name, name, digest, arn, time.time(), lease, take=False)
        if later.answer is None:
            raise ApiError("ServiceUnavailable", f"The execution '{name}' outlived its lease in the state store and "
                           "no other owner answered it: retry it", status=503)
        return later.answer

    async def _claim_name(self, store: MachineStore, machine_name: str, name: str, digest: bytes, arn: str,
                          start: float, lease: float, take: bool = True) -> NameClaim:
        """The store's claim of a name: the caller's (a token), a finished answer, or, while another
        owner runs it, a wait (bounded backoff, at most a lease) until either. ``take=False`` waits for
        an answer only (a token it gets is given back); it may then end with neither."""
        delay, deadline = 0.005, time.monotonic() + lease
        while True:
            claim = await store_call(store.claim_name(machine_name, name, digest, arn, start, lease))
            if claim.conflict:
                raise ApiError("ExecutionAlreadyExists",
                               f"Execution Already Exists: '{self._exec_prefix}{machine_name}:{name}'")
            if claim.answer is not None or (claim.token and take):
                return claim
            if claim.token:
                await self._release_name(store, machine_name, name, claim.token)
                return NameClaim(execution_arn=claim.execution_arn, start_date=claim.start_date)
            if time.monotonic() > deadline:
                raise ApiError("ServiceUnavailable", f"The execution '{name}' is still running elsewhere: retry it",
                               status=503)
            await asyncio.sleep(delay)
            delay = min(delay * 2, NAME_POLL_MAX_S)

    @staticmethod
    async def _release_name(store: MachineStore, machine_name: str, name: str, token: int) -> None:
        try:
            await store.release_name(machine_name, name, token)
        except StoreError as e:  # the lease runs out on its own: a retry then runs the name
            print(f"express: http: could not release the name '{name}' in the state store: {e}",
                  file=sys.stderr, flush=True)

    def _admit_sync(self, machine_name: str) -> None:
        """One more StartSyncExecution may run, or AWS's ThrottlingException (HTTP 400, "Rate
        exceeded": SDKs back off and retry it); duplicates of a running name only wait, uncounted."""
        if self.sync_running >= self.max_concurrent_sync:
            self.metrics.throttled(machine_name, "StartSyncExecution")
            raise ApiError("ThrottlingException", "Rate exceeded")
        self.sync_running += 1

    def _execution_arn(self, machine_name: str, name: str) -> str:
        return f"{self._exec_prefix}{machine_name}:{name}:{uuid4()}"

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
        store: MachineStore | None = None
        token = 0
        if name is None:
            name = uuid4()
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
            store = self.registry.store
            arn, start = self._execution_arn(machine_name, name), time.time()
            if store is not None:  # the name across restarts and servers: known there, it is answered as is
                claim = await store_call(store.claim_name(machine_name, name, digest, arn, start,
                                                          self.engine.max_duration_s + NAME_LEASE_MARGIN_S))
                if claim.conflict:
                    raise ApiError("ExecutionAlreadyExists",
                                   f"Execution Already Exists: '{self._exec_prefix}{machine_name}:{name}'")
                if not claim.token:
                    return {"executionArn": claim.execution_arn, "startDate": claim.start_date}
                token = claim.token
            try:
                record = self.names.claim(key, digest, arn, start)
            except NamesExhausted:
                self.metrics.throttled(machine_name, "StartExecution")
                if store is not None:
                    await self._release_name(store, machine_name, name, token)
                raise ApiError("ThrottlingException",
                               "Too many executions with names are still running: retry later") from None
        arn = record.execution_arn if record is not None else self._execution_arn(machine_name, name)
        start = record.start_date if record is not None else time.time()
        starts = self.kafka_starts
        topic = starts.topic(machine_name) if starts is not None else None
        if topic is not None:  # through Kafka: answered once the broker has the start event
            assert starts is not None
            answer = {"executionArn": arn, "startDate": start}
            try:
                await starts.start(topic, machine_name, name, arn, input_text)
            except Exception as e:  # the broker's refusal: nothing was started, a retry may start it
                if record is not None:
                    self.names.abandon(record, ExecutionAbandoned(f"The execution '{name}' was not started"))
                    if store is not None:
                        await self._release_name(store, machine_name, name, token)
                raise ApiError("ServiceUnavailable", f"The start event could not be written to Kafka topic "
                               f"'{topic}': {type(e).__name__}: {e}", status=503) from None
            if record is not None:
                started = orjson.dumps(answer)
                self.names.finish(record, started)
                if store is not None:
                    await store_call(store.finish_name(machine_name, name, token, started,
                                                       self.settings.http.name_retention_s))
            return answer
        machine = entry.machine
        self.background += 1

        async def run() -> None:
            try:
                answer = await self._run(machine, machine_name, name, arn, input_text, value, trace, True, "async")
            except BaseException as e:
                if record is not None:
                    self.names.abandon(record, ExecutionAbandoned(f"The execution '{name}' ended without an answer"))
                    if store is not None:
                        await asyncio.shield(self._release_name(store, machine_name, name, token))
                if not isinstance(e, asyncio.CancelledError):
                    print(f"express: http: background execution failed: {type(e).__name__}: {e}",
                          file=sys.stderr, flush=True)
                raise
            else:
                if record is not None:
                    self.names.finish(record, answer)
                    if store is not None:
                        try:
                            await store.finish_name(machine_name, name, token, answer,
                                                    self.settings.http.name_retention_s)
                        except StoreError as e:
                            print(f"express: http: the answer of '{name}' is not in the state store: {e}",
                                  file=sys.stderr, flush=True)
            finally:
                self.background -= 1

        self._spawn(run())
        return {"executionArn": arn, "startDate": start}

    async def test_state(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        check_shape("TestState", body)
        role = body.get("roleArn")
        if role is not None and not ARN_RE.match(role):
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(role)}'")
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
