"""ASL errors: the one exception type the engine raises while running, and the definition error.

Every failure inside an execution is an :class:`ASLError` carrying the exact ASL error name and
cause; foreign Python exceptions are translated into one at the boundary where they enter
(task invocation, intrinsic evaluation, the execution runner), never deeper.
"""
from __future__ import annotations

from dataclasses import dataclass

ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
RUNTIME = "States.Runtime"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
BRANCH_FAILED = "States.BranchFailed"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
ITEM_READER_FAILED = "States.ItemReaderFailed"
RESULT_WRITER_FAILED = "States.ResultWriterFailed"
PERMISSIONS = "States.Permissions"

# AWS: these end the execution; neither States.ALL nor States.TaskFailed matches them.
UNCATCHABLE_BY_WILDCARD = frozenset({RUNTIME})
UNCATCHABLE = frozenset({RUNTIME})
# Errors the engine itself raises while evaluating a state's fields: their causes name the state.
LOCATED_ERRORS = frozenset({RUNTIME, QUERY_EVALUATION_ERROR, INTRINSIC_FAILURE})


class ASLError(Exception):
    """A failure with an ASL error name, as a state or an execution reports it."""

    __slots__ = ("error", "cause", "located")

    def __init__(self, error: str, cause: str | None = None, located: bool = False) -> None:
        super().__init__(error, cause)
        self.error = error
        self.cause = cause
        # False while the cause still lacks AWS's "An error occurred while executing the state..."
        # prefix; the state that was running adds it (only for the engine's own runtime errors).
        self.located = located

    def __str__(self) -> str:
        return f"{self.error}: {self.cause}" if self.cause else self.error


class PathMissing(Exception):
    """A JSONPath that is valid but selects nothing in the data it was applied to."""

    __slots__ = ("path", "detail")

    def __init__(self, path: str, detail: str = "") -> None:
        super().__init__(path, detail)
        self.path = path
        self.detail = detail


class ExecutionTimedOut(Exception):
    """The execution's deadline passed; unwinds every frame to the runner (not catchable)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a definition: AWS-style code, message and JSON pointer to the place."""

    pointer: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message} at {self.pointer or '/'}"


class DefinitionError(ValueError):
    """A state machine definition is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the state machine definition:\n{lines}")


def matches(error: str, error_equals: tuple[str, ...]) -> bool:
    """AWS's rule for whether a Retrier's or Catcher's ErrorEquals names ``error``.

    States.Runtime ends the execution even when a Catcher names it explicitly (AWS-recorded)."""
    if error in UNCATCHABLE:
        return False
    if error in error_equals:
        return True
    if error in UNCATCHABLE_BY_WILDCARD:
        return False
    if ALL in error_equals:
        return True
    return TASK_FAILED in error_equals and error != TIMEOUT
