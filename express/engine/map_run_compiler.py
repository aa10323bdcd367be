"""The Distributed Map's compiled parts: its ItemReader (items from S3 through the integrations), ItemBatcher
and ResultWriter, and the Map run that ties them to MapState; a mixin of :class:`express.engine.compiler.Compiler`.
Also the basics both compile with: :class:`CompileFailed` (a problem at a JSON pointer), ``ptr``, ``jsonata_template``."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from express.asl import errors, jsonpath, payload
from express.asl.errors import ASLError, Problem
from express.engine import tasks
from express.engine.frame import Frame
from express.engine.map_state import MAX_BATCH_BYTES, MAX_ITEMS_PER_RUN, Batching, MapRun


class CompileFailed(Exception):
    def __init__(self, pointer: str, message: str, code: str = "SCHEMA_VALIDATION_FAILED") -> None:
        super().__init__(message)
        self.problem = Problem(pointer, code, message)


def ptr(*parts: object) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def jsonata_template(value: Any, field: str, where: str) -> Callable[[dict[str, Any], Frame], Any]:
    from express.asl.jsonata import compile_template

    try:
        fn: Callable[[dict[str, Any], Frame], Any] = compile_template(value, field)
        return fn
    except ValueError as e:
        raise CompileFailed(where, f"Invalid JSONata in '{field}': {e}") from None


class _MissingField(Exception):
    pass


def _request_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ASLError(errors.RUNTIME, f"The {field} of the request must be an object, but was: "
                                       f"{payload.json_text(value)}")
    return value


_INT_TEXT = re.compile(r"[+-]?\d+")


_FLOAT_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _numeric_text(v: Any, integer: bool) -> Any:
    """A ``*Path`` field's value that is a number written as a string ("1") is that number, as
    AWS parses it; anything else is returned unchanged for the caller's type check."""
    if type(v) is str:
        t = v.strip()
        if integer and _INT_TEXT.fullmatch(t):
            return int(t)
        if not integer and _FLOAT_TEXT.fullmatch(t):
            return float(t)
    return v


def _is_integer(v: Any) -> bool:
    """An integer as AWS reads one: an int or an integral float, never a boolean."""
    return type(v) is not bool and isinstance(v, (int, float)) and not (isinstance(v, float) and not v.is_integer())


def _path_value(get: Callable[[Any, Frame, Any], Any], data: Any, frame: Frame, states: Any, path: Any,
                integer: bool = True) -> Any:
    """``get``'s value: a ``*Path`` that selects nothing is States.Runtime (AWS's message), and a number
    a ``*Path`` selects as text is that number."""
    try:
        v = get(data, frame, states)
    except _MissingField:
        raise ASLError(errors.RUNTIME, f"Invalid path '{path}' : No results for path: "
                                       f"{jsonpath.parse_path(str(path)).jayway()}") from None
    return _numeric_text(v, integer) if path else v


def _plain(v: Any) -> str:
    return v if isinstance(v, str) else payload.json_text(v)


class MapRunCompiler:
    """The Distributed Map's part of the compiler (the Compiler provides ``value_field`` and ``template``)."""

    integrations: Any
    value_field: Any
    template: Any

    def map_run(self, spec: dict[str, Any], where: str, jsonata: bool) -> MapRun | None:
        """A Distributed Map's ItemReader, ItemBatcher and ResultWriter, compiled; None without any.
        The S3 side comes from the integrations (``item_reader``/``result_writer``, see
        :class:`express.engine.tasks.MapRunProvider`); the engine evaluates the fields."""
        if not any(f in spec for f in ("ItemReader", "ItemBatcher", "ResultWriter")):
            return None
        proc = spec.get("ItemProcessor") or spec.get("Iterator") or {}
        config = proc.get("ProcessorConfig") if isinstance(proc, dict) else None
        express_children = isinstance(config, dict) and config.get("ExecutionType") == "EXPRESS"
        reader = self.item_reader(spec["ItemReader"], where + "/ItemReader", jsonata) if "ItemReader" in spec else None
        batcher = self.item_batcher(spec["ItemBatcher"], where + "/ItemBatcher", jsonata) if "ItemBatcher" in spec else None
        writer, transformation = (self.result_writer(spec["ResultWriter"], where + "/ResultWriter", jsonata)
                                  if "ResultWriter" in spec else (None, "COMPACT"))
        label = spec.get("Label")
        return MapRun(reader, batcher, writer, transformation, label if isinstance(label, str) else None,
                      express_children)

    def io_arguments(self, spec: dict[str, Any], where: str, jsonata: bool) -> Callable[[Any, Frame, Any], dict[str, Any]]:
        """An ItemReader's or ResultWriter's Parameters (JSONPath) or Arguments (JSONata), evaluated
        against the state's input: the request of its S3 call."""
        field = "Arguments" if jsonata else "Parameters"
        if field not in spec:
            return lambda data, frame, states: {}
        if jsonata:
            tpl = jsonata_template(spec[field], field, where + "/" + field)

            def request(data: Any, frame: Frame, states: Any) -> dict[str, Any]:
                return _request_object(tpl(states, frame), field)
        else:
            ptpl = self.template(spec[field], field, where + "/" + field)

            def request(data: Any, frame: Frame, states: Any) -> dict[str, Any]:
                return _request_object(ptpl(data, frame), field)

        return request

    def item_reader(self, spec: Any, where: str, jsonata: bool) -> Callable[[Any, Frame, Any], AsyncIterator[Any]]:
        spec = spec if isinstance(spec, dict) else {}
        resource = spec.get("Resource")
        config = spec.get("ReaderConfig") or {}
        if not isinstance(config, dict):
            raise CompileFailed(where + "/ReaderConfig", "The value for the field 'ReaderConfig' must be an OBJECT")
        request = self.io_arguments(spec, where, jsonata)
        max_items = self.value_field(config, "MaxItems", where + "/ReaderConfig", jsonata)
        path = config.get("MaxItemsPath")
        make = getattr(self.integrations, "item_reader", None)
        read: tasks.ItemReader | None = None
        if make is not None and isinstance(resource, str):
            try:
                read = make(resource, config)
            except ValueError as e:
                raise CompileFailed(where + "/ReaderConfig", str(e)) from None

        def items(data: Any, frame: Frame, states: Any) -> AsyncIterator[Any]:
            if read is None:
                # a valid definition (AWS accepts it), but no integration reads this resource here
                raise ASLError(errors.ITEM_READER_FAILED,
                               f"The ItemReader cannot read its items from '{resource}': no S3 integration "
                               "is available to this engine (Engine(integrations=...))", located=True)
            limit = MAX_ITEMS_PER_RUN
            if max_items is not None:
                v = _path_value(max_items, data, frame, states, path)
                if not _is_integer(v):
                    field = f"MaxItemsPath field refers to value \"{_plain(v)}\"" if path else \
                        f"MaxItems field has the value {payload.json_text(v)}"
                    raise ASLError(errors.ITEM_READER_FAILED,
                                   f"The {field} which is not a valid integer" + (f": {path}" if path else ""),
                                   located=True)
                if v < 0:
                    raise ASLError(errors.ITEM_READER_FAILED, "field MaxItems must be positive", located=True)
                if v:  # 0: every item, up to AWS's bound
                    limit = min(int(v), MAX_ITEMS_PER_RUN)
            return read(request(data, frame, states), limit, frame)

        return items

    def item_batcher(self, spec: Any, where: str, jsonata: bool) -> Callable[[Any, Frame, Any], Batching]:
        spec = spec if isinstance(spec, dict) else {}
        max_items = self.value_field(spec, "MaxItemsPerBatch", where, jsonata)
        max_bytes = self.value_field(spec, "MaxInputBytesPerBatch", where, jsonata)
        batch_input: Callable[[Any, Frame, Any], Any] | None = None
        if "BatchInput" in spec:
            if jsonata:
                btpl = jsonata_template(spec["BatchInput"], "BatchInput", where + "/BatchInput")
                batch_input = lambda data, frame, states: btpl(states, frame)  # noqa: E731
            else:
                ptpl = self.template(spec["BatchInput"], "BatchInput", where + "/BatchInput")
                batch_input = lambda data, frame, states: ptpl(data, frame)  # noqa: E731

        def limit(get: Callable[[Any, Frame, Any], Any] | None, field: str, data: Any, frame: Frame,
                  states: Any) -> int | None:
            if get is None:
                return None
            path = spec.get(field + "Path")
            v = _path_value(get, data, frame, states, path)
            if not _is_integer(v):
                raise ASLError(errors.RUNTIME if path or not jsonata else errors.QUERY_EVALUATION_ERROR,
                               f"The {field}Path field refers to value \"{_plain(v)}\" which is not a valid integer: {path}"
                               if path else f"The {field} field must be an integer, but was: {payload.json_text(v)}")
            if v < 0:
                raise ASLError(errors.RUNTIME, f"{field} cannot be negative.")
            return int(v) or None  # 0: no limit of its own

        def batching(data: Any, frame: Frame, states: Any) -> Batching:
            items = limit(max_items, "MaxItemsPerBatch", data, frame, states)
            size = limit(max_bytes, "MaxInputBytesPerBatch", data, frame, states)
            size = MAX_BATCH_BYTES if size is None else min(size, MAX_BATCH_BYTES)
            if batch_input is None:
                return Batching(items, size, None, False)
            return Batching(items, size, batch_input(data, frame, states), True)

        return batching

    def result_writer(self, spec: Any, where: str, jsonata: bool,
                      ) -> tuple[Callable[[Any, Frame, Any, str], tasks.ResultSink] | None, str]:
        spec = spec if isinstance(spec, dict) else {}
        config = spec.get("WriterConfig") or {}
        if not isinstance(config, dict):
            raise CompileFailed(where + "/WriterConfig", "The value for the field 'WriterConfig' must be an OBJECT")
        resource = spec.get("Resource")
        # AWS: the full records (NONE) when exporting to S3, the outputs alone (COMPACT) otherwise
        transformation = config.get("Transformation", "NONE" if resource is not None else "COMPACT")
        if transformation not in ("NONE", "COMPACT", "FLATTEN"):
            raise CompileFailed(where + "/WriterConfig/Transformation", "The value for the field 'Transformation' "
                                "must be one of NONE, COMPACT, FLATTEN")
        if config.get("OutputType", "JSON") not in ("JSON", "JSONL"):
            raise CompileFailed(where + "/WriterConfig/OutputType", "The value for the field 'OutputType' "
                                "must be one of JSON, JSONL")
        if resource is None:
            return None, transformation
        request = self.io_arguments(spec, where, jsonata)
        make = getattr(self.integrations, "result_writer", None)
        bound: tasks.ResultWriter | None = None
        if make is not None and isinstance(resource, str):
            try:
                bound = make(resource, config)
            except ValueError as e:
                raise CompileFailed(where + "/WriterConfig", str(e)) from None

        def writer(data: Any, frame: Frame, states: Any, map_run_arn: str) -> tasks.ResultSink:
            if bound is None:
                raise ASLError(errors.RESULT_WRITER_FAILED,
                               f"The ResultWriter cannot write its results to '{resource}': no S3 integration "
                               "is available to this engine (Engine(integrations=...))", located=True)
            return bound(request(data, frame, states), map_run_arn, frame)

        return writer, transformation
