"""Input and output processing of a state: the compiled :class:`Dataflow` (InputPath, Parameters,
ResultSelector, ResultPath, OutputPath, or JSONata's Arguments/Output), the 256 KiB bound on every
state's data tracked with incremental sizes, and variable assignment."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, PathMissing
from express.asl.jsonpath import parse_path
from express.asl.limits import MAX_DEPTH, deeper_than, json_size, written_too_deep
from express.engine.frame import Frame

Fn = Callable[[Any, Frame], Any]
MAX_PAYLOAD_BYTES = 256 * 1024

def locate(e: ASLError, name: str, event_id: int) -> None:
    if not e.located:
        e.located = True
        if e.error in errors.LOCATED_ERRORS:
            e.cause = (
                f"An error occurred while executing the state '{name}' "
                f"(entered at the event id #{event_id}). {e.cause or ''}"
            ).rstrip()


def invalid_path(e: PathMissing) -> ASLError:
    return ASLError(errors.RUNTIME, f"Invalid path '{e.path}' : {e.detail}")


def payload_size(value: Any) -> int:
    """Bytes of ``value`` as JSON. Measured one level down, so that orjson itself refuses a value
    nested deeper than MAX_DEPTH: that, or an integer it cannot write, fails with States.Runtime
    (express.asl.limits)."""
    try:
        return len(orjson.dumps([value])) - 2
    except TypeError:
        return json_size(value, "a value the state built")


def written_size(value: Any, depth: int) -> int:
    """payload_size of a result a ResultPath writes ``depth`` levels down into the state's data:
    measured that much deeper again, so that the data it lands in nests at most MAX_DEPTH levels."""
    if depth == 1:  # the common "$.key"
        box = [[value]]
    elif depth == 2:
        box = [[[value]]]
    else:
        box = [value]
        for _ in range(depth):
            box = [box]
    try:
        return len(orjson.dumps(box)) - 2 * depth - 2
    except TypeError:
        size = json_size(value, "the state's result")  # raises when it cannot be written at all
        if deeper_than(value, MAX_DEPTH - depth):
            raise written_too_deep(value, depth) from None
        return size


def too_large(name: str) -> ASLError:
    return ASLError(
        errors.DATA_LIMIT_EXCEEDED,
        f"The state/task '{name}' returned a result with a size exceeding the maximum number of bytes "
        "service limit.",
        located=True,
    )


def remeasure(frame: Frame, name: str, data: Any) -> None:
    """The bound passed the limit: measure the payload itself; fail if it really is too large."""
    size = payload_size(data)
    if size > frame.execution.limit:
        raise too_large(name)
    frame.size = size


def grow(frame: Frame, name: str, out: Any, added: int) -> None:
    size = frame.size + added
    if size > frame.execution.limit:
        remeasure(frame, name, out)
    else:
        frame.size = size


def measured(frame: Frame, name: str, out: Any) -> None:
    size = payload_size(out)
    if size > frame.execution.limit:
        raise too_large(name)
    frame.size = size


# --------------------------------------------------------------------------- dataflow


class Dataflow:
    """The path/template fields of one state, compiled. Query-language specific builders fill
    these closures; ``None`` means the field is absent (identity)."""

    __slots__ = ("input_path", "parameters", "result_selector", "result_path", "output_path",
                 "assign", "jsonata", "arguments", "output")

    def __init__(self) -> None:
        self.input_path: Fn | None = None
        self.parameters: Fn | None = None
        self.result_selector: Fn | None = None
        self.result_path: Callable[[Any, Any], Any] | None = None  # (raw, result) -> data
        self.output_path: Fn | None = None
        # Assign: (result_or_input, frame, states_for_jsonata) -> dict of new variables
        self.assign: Callable[[Any, Frame, Any], dict[str, Any]] | None = None
        self.jsonata = False
        self.arguments: Callable[[dict[str, Any], Frame], Any] | None = None
        self.output: Callable[[dict[str, Any], Frame], Any] | None = None

    # JSONPath: raw -> effective input
    def effective_input(self, raw: Any, frame: Frame) -> Any:
        data = raw
        if self.input_path is not None:
            data = self.input_path(data, frame)
        if self.parameters is not None:
            data = self.parameters(data, frame)
        return data

    def states_binding(self, raw: Any, frame: Frame) -> dict[str, Any]:
        return {"input": raw, "context": frame.context_object()}


def _path_depth(path: Any) -> int:
    try:
        return len(parse_path(path).segments) if isinstance(path, str) else 0
    except ValueError:
        return 0


def _discard(raw: Any, result: Any) -> Any:
    """ResultPath: null — the result is dropped and the state's input passes through."""
    return raw


MAX_VARIABLE_BYTES = 256 * 1024
MAX_ASSIGN_BYTES = 256 * 1024
MAX_VARIABLES_BYTES_PER_EXECUTION = 10 * 1024 * 1024


def apply_assign(frame: Frame, new_vars: dict[str, Any]) -> None:
    """Store an Assign's values, within AWS's limits: 256 KiB per variable and per Assign, and
    10 MiB for all variables a scope can see (its own and those of the scopes around it)."""
    if not new_vars:
        return
    total = 0
    delta = 0
    old_vars = frame.vars
    for name, value in new_vars.items():
        size = payload_size(value)
        if size > MAX_VARIABLE_BYTES:
            raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                           f"The variable '{name}' has a size of {size} bytes, exceeding the maximum of "
                           f"{MAX_VARIABLE_BYTES} bytes.", located=True)
        total += size
        delta += size - (payload_size(old_vars[name]) if name in old_vars else 0)
    if total > MAX_ASSIGN_BYTES:
        raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                       f"The assigned variables have a total size of {total} bytes, exceeding the maximum of "
                       f"{MAX_ASSIGN_BYTES} bytes for one Assign.", located=True)
    if frame.var_bytes + delta > MAX_VARIABLES_BYTES_PER_EXECUTION:
        raise ASLError(errors.DATA_LIMIT_EXCEEDED,
                       f"The variables of the execution would have a total size of {frame.var_bytes + delta} "
                       f"bytes, exceeding the maximum of {MAX_VARIABLES_BYTES_PER_EXECUTION} bytes.", located=True)
    frame.var_bytes += delta
    old_vars.update(new_vars)


# --------------------------------------------------------------------------- retry / catch
