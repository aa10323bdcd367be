"""The StepFunctions operations of the AWS JSON 1.0 protocol, on the engine and the registry: the
dispatch table from operation names to the operations.

Each operation takes the decoded request object and returns the response object (or raw JSON
bytes on the StartSyncExecution hot path); every refusal is an :class:`ApiError` carrying AWS's
error code, which the server turns into ``{"__type": code, "message": ...}`` with HTTP 400.
Fields are checked against the botocore service model's constraints before anything runs
(:mod:`express.http.validation`); unknown fields are ignored, as AWS does.

The operations are in :mod:`express.http.machines` (state machines and their tags),
:mod:`express.http.versions` (their versions and aliases) and
:mod:`express.http.executions` (StartSyncExecution, StartExecution, TestState), on what they share
(:mod:`express.http.api_base`). The names they define are also importable from here.

Execution ARNs: ``arn:aws:states:REGION:ACCOUNT:express:MACHINE:NAME:UUID``; an execution
without a name gets a UUID as its name. Execution names are exactly-once (see
:mod:`express.http.names`) for StartSyncExecution and StartExecution alike.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from express.http.api_base import ApiBase, ApiMetrics, store_call, store_unavailable
from express.http.executions import ExecutionAbandoned, ExecutionOperations
from express.http.machines import MachineOperations
from express.http.messages import Operation
from express.http.names import NameTable
from express.http.validation import (
    DEFAULT_ROLE,
    ENCRYPTION_TYPES,
    INCLUDED_DATA,
    INSPECTION_LEVELS,
    LOG_LEVELS,
    MACHINE_TYPES,
    MAX_DEFINITION_BYTES,
    MAX_INPUT_BYTES,
    MAX_TAGS,
    SEVERITIES,
    SHAPES,
    TAG_PATTERN,
    ApiError,
    F,
    check_name,
    check_payload,
    check_shape,
    problems_message,
)
from express.serve.config import Settings
from express.serve.registry import Registry

__all__ = [
    "DEFAULT_ROLE", "ENCRYPTION_TYPES", "INCLUDED_DATA", "INSPECTION_LEVELS", "LOG_LEVELS", "MACHINE_TYPES",
    "MAX_DEFINITION_BYTES", "MAX_INPUT_BYTES", "MAX_TAGS", "SEVERITIES", "SHAPES", "TAG_PATTERN", "TARGET_PREFIX",
    "ApiBase", "ApiError", "ApiMetrics", "ExecutionAbandoned", "F", "StepFunctionsApi", "check_name", "check_payload",
    "check_shape", "problems_message", "store_call", "store_unavailable",
]

TARGET_PREFIX = "AWSStepFunctions."


class StepFunctionsApi(ExecutionOperations, MachineOperations):
    def __init__(self, settings: Settings, registry: Registry, *, spawn: Callable[[Awaitable[Any]], Any],
                 names: NameTable | None = None, kafka: Any = None, max_machines: int = 10_000,
                 max_background: int = 10_000) -> None:
        super().__init__(settings, registry, spawn=spawn, names=names, kafka=kafka, max_machines=max_machines,
                         max_background=max_background)
        self.operations: dict[str, Operation] = {
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
            "PublishStateMachineVersion": self.publish_state_machine_version,
            "ListStateMachineVersions": self.list_state_machine_versions,
            "DeleteStateMachineVersion": self.delete_state_machine_version,
            "CreateStateMachineAlias": self.create_state_machine_alias,
            "DescribeStateMachineAlias": self.describe_state_machine_alias,
            "UpdateStateMachineAlias": self.update_state_machine_alias,
            "DeleteStateMachineAlias": self.delete_state_machine_alias,
            "ListStateMachineAliases": self.list_state_machine_aliases,
            "TestState": self.test_state,
        }
