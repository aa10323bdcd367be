"""Definition -> compiled blocks of states. Runs once per ``engine.compile()``; the hot path never
sees ASL JSON, path strings or state names again."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from express.asl import errors, jsonpath, payload
from express.asl.errors import ASLError, PathMissing, Problem
from express.asl.limits import MAX_DEPTH
from express.asl.query_language import is_jsonata
from express.asl.timestamps import parse_timestamp
from express.engine import pass_runs, tasks
from express.engine.branches import ParallelState
from express.engine.dataflow import Dataflow, _discard, invalid_path
from express.engine.frame import Frame
from express.engine.map_run_compiler import (
    CompileFailed,
    MapRunCompiler,
    _is_integer,
    _MissingField,
    _numeric_text,
    _path_value,
    _plain,
    jsonata_template,
    ptr,
)
from express.engine.map_state import MapState
from express.engine.runner import Block
from express.engine.states import (
    Catcher,
    ChoiceState,
    FailState,
    PassState,
    Retrier,
    State,
    SucceedState,
    TaskState,
    WaitState,
)

JSONATA = "JSONata"
JSONPATH = "JSONPath"


class Compiler(MapRunCompiler):
    def __init__(self, functions: dict[str, Callable[..., Any]], tracks_context: bool,
                 query_language: str, logged: bool | Callable[[Any], Any] = False,
                 mocked: dict[str, tasks.Invoker] | None = None,
                 integrations: tasks.ResourceProvider | None = None) -> None:
        self.functions = functions
        self.integrations = integrations  # runs the resources no function is bound to
        # Task state name -> the invoker that replaces its Resource (express.testing.mocking); a mocked
        # state's Resource is never bound, so it need not be callable here.
        self.mocked = mocked or {}
        self.mocked_found: set[str] = set()
        self.logged = logged
        self.tracks_context = tracks_context
        self.top_language = query_language
        self.problems: list[Problem] = []

    # ------------------------------------------------------------------ helpers
    def getter(self, text: Any, where: str) -> Callable[[Any, Frame], Any]:
        try:
            return jsonpath.compile_getter(text)
        except ValueError as e:
            raise CompileFailed(where, str(e), "INVALID_JSON_PATH") from None

    def setter(self, text: Any, where: str) -> Callable[[Any, Any], Any]:
        """A ResultPath's writer. One that writes more than MAX_DEPTH - 1 levels down could never
        give output that can be written (a Catcher's error output is an object: one level more)."""
        try:
            setter = jsonpath.compile_setter(text)
            depth = len(jsonpath.parse_path(text).segments)
        except ValueError as e:
            raise CompileFailed(where, str(e), "INVALID_JSON_PATH") from None
        if depth > MAX_DEPTH - 1:
            raise CompileFailed(where, f"The ResultPath writes {depth} levels down, and may write at most "
                                       f"{MAX_DEPTH - 1}: data may nest at most {MAX_DEPTH} levels")
        return setter

    def path_field(self, spec: dict[str, Any], field: str, where: str) -> Callable[[Any, Frame], Any] | None:
        """InputPath/OutputPath: absent -> identity (None), null -> {}, else a checked getter."""
        if field not in spec:
            return None
        text = spec[field]
        if text is None:
            return _empty_object
        if text == "$":
            return None
        getter = self.getter(text, where + "/" + field)

        def path(data: Any, frame: Frame) -> Any:
            try:
                return getter(data, frame)
            except PathMissing as e:
                raise invalid_path(e) from None

        return path

    def template(self, value: Any, field: str, where: str) -> Callable[[Any, Frame], Any]:
        try:
            return payload.compile_template(value, field)
        except ValueError as e:
            raise CompileFailed(where, str(e)) from None

    # ------------------------------------------------------------------ blocks
    def block(self, spec: dict[str, Any], where: str, language: str) -> Block:
        block = Block()
        states_spec = spec.get("States") or {}
        for name, sspec in states_spec.items():
            try:
                block.states[name] = self.state(name, sspec, where + ptr("States", name), language)
            except CompileFailed as e:
                self.problems.append(e.problem)
        if self.problems:
            return block
        if self.logged:
            # Transitions must land on the wrappers, so wrap before linking.
            from express.engine.history import LoggedState

            inner = block.states
            wrap = self.logged if callable(self.logged) else LoggedState  # a callable: the recorder's trace wrapper
            block.states = {name: wrap(st) for name, st in inner.items()}
            for name, state in inner.items():
                self.link(block, state, where + ptr("States", name))
        else:
            for name, state in block.states.items():
                self.link(block, state, where + ptr("States", name))
            if not self.problems:
                for state in block.states.values():
                    if isinstance(state, PassState):
                        state.specialize()
        block.start = block.states.get(spec.get("StartAt"))  # type: ignore[arg-type]
        if block.start is None:
            self.problems.append(Problem(where + "/StartAt", "MISSING_TRANSITION_TARGET",
                                         f"Missing 'StartAt' target: {spec.get('StartAt')}"))
        elif not self.logged and not self.problems:
            pass_runs.fuse(block)  # chains of simple Pass states: one step each
        block.is_async = any(s.is_async for s in block.states.values())
        block.assigns = any(_assigns(s) for s in states_spec.values())
        return block

    def link(self, block: Block, state: State, where: str) -> None:
        def target(name: Any, field: str) -> State:
            t = block.states.get(name)
            if t is None:
                self.problems.append(Problem(where + "/" + field, "MISSING_TRANSITION_TARGET",
                                             f"Missing 'Next' target: {name}"))
            return t  # type: ignore[return-value]

        if state.next_name is not None:
            state.next = target(state.next_name, "Next")
        if isinstance(state, ChoiceState):
            state.resolved = [
                (pred, target(nxt, f"Choices/{i}/Next"), assign, state.rule_output[i])
                for i, (pred, nxt, assign) in enumerate(state.rules)
            ]
            if state.default_name is not None:
                state.default = target(state.default_name, "Default")
        for i, c in enumerate(getattr(state, "catchers", ())):
            c.next = target(c.next_name, f"Catch/{i}/Next")

    # ------------------------------------------------------------------ states
    def state(self, name: str, spec: Any, where: str, language: str) -> State:
        if not isinstance(spec, dict):
            raise CompileFailed(where, "A state must be an object")
        lang = spec.get("QueryLanguage", language)
        jsonata = lang == JSONATA
        kind = spec.get("Type")
        flow = self.dataflow(spec, where, jsonata, kind)
        st: State
        if kind == "Pass":
            result = None
            if not jsonata:
                if "Result" in spec:
                    # Result is the state's result; Parameters, if also given, is still evaluated
                    # (its errors count) but its value is replaced, as AWS does
                    result = _literal(spec["Result"])
                elif "Parameters" in spec:
                    # the template dataflow() compiled is the state's result
                    result, flow.parameters = flow.parameters, None
            st = PassState(name, spec, flow, result)
        elif kind == "Succeed":
            st = SucceedState(name, spec, flow)
        elif kind == "Fail":
            st = self.fail_state(name, spec, flow, where, jsonata)
        elif kind == "Choice":
            st = self.choice_state(name, spec, flow, where, jsonata)
        elif kind == "Wait":
            st = WaitState(name, spec, flow, self.wait_delay(spec, where, jsonata))
        elif kind == "Task":
            st = self.task_state(name, spec, flow, where, jsonata)
        elif kind == "Parallel":
            branches = [self.block(b, where + ptr("Branches", i), self.top_language)
                        for i, b in enumerate(spec.get("Branches") or [])]
            st = ParallelState(name, spec, flow, *self.recovery(spec, where, jsonata), branches)
        elif kind == "Map":
            st = self.map_state(name, spec, flow, where, jsonata)
        else:
            raise CompileFailed(where + "/Type", f"Unknown state type: {kind}")
        st.track_context = self.tracks_context
        if spec.get("End") is True:
            st.next_name = None
        return st

    def dataflow(self, spec: dict[str, Any], where: str, jsonata: bool, kind: Any) -> Dataflow:
        flow = Dataflow()
        flow.jsonata = jsonata
        if jsonata:
            if "Arguments" in spec:
                flow.arguments = jsonata_template(spec["Arguments"], "Arguments", where + "/Arguments")
            if "Output" in spec:
                flow.output = jsonata_template(spec["Output"], "Output", where + "/Output")
            if "Assign" in spec:
                flow.assign = self.jsonata_assign(spec["Assign"], where + "/Assign")
            return flow
        flow.input_path = self.path_field(spec, "InputPath", where)
        flow.output_path = self.path_field(spec, "OutputPath", where)
        if "Parameters" in spec and kind in ("Task", "Parallel", "Pass"):
            flow.parameters = self.template(spec["Parameters"], "Parameters", where + "/Parameters")
        if "ResultSelector" in spec:
            flow.result_selector = self.template(spec["ResultSelector"], "ResultSelector",
                                                 where + "/ResultSelector")
        if kind in ("Task", "Parallel", "Map", "Pass") and "ResultPath" in spec:
            rp = spec["ResultPath"]
            if rp is None:
                flow.result_path = _discard
            else:
                flow.result_path = self.setter(rp, where + "/ResultPath")
        elif kind in ("Task", "Parallel", "Map", "Pass"):
            flow.result_path = None  # default "$": the result replaces the input
        if "Assign" in spec:
            flow.assign = self.jsonpath_assign(spec["Assign"], where + "/Assign")
        return flow

    def jsonpath_assign(self, value: Any, where: str) -> Callable[[Any, Frame, Any], dict[str, Any]]:
        tpl = self.template(value, "Assign", where)

        def assign(data: Any, frame: Frame, states: Any) -> dict[str, Any]:
            out: dict[str, Any] = tpl(data, frame)
            return out

        return assign

    def jsonata_assign(self, value: Any, where: str) -> Callable[[Any, Frame, Any], dict[str, Any]]:
        tpl = jsonata_template(value, "Assign", where)

        def assign(data: Any, frame: Frame, states: Any) -> dict[str, Any]:
            out: dict[str, Any] = tpl(states, frame)
            return out

        return assign

    def value_field(self, spec: dict[str, Any], field: str, where: str, jsonata: bool,
                    ) -> Callable[[Any, Frame, Any], Any] | None:
        """A field given literally, as a JSONata expression, or (JSONPath) by ``<field>Path``."""
        if field in spec:
            v = spec[field]
            if jsonata and is_jsonata(v):
                tpl = jsonata_template(v, field, where + "/" + field)
                return lambda data, frame, states: tpl(states, frame)
            return lambda data, frame, states: v
        pf = field + "Path"
        if pf in spec and not jsonata:
            getter = self.getter(spec[pf], where + "/" + pf)
            path_text = spec[pf]

            def from_path(data: Any, frame: Frame, states: Any) -> Any:
                try:
                    return getter(data, frame)
                except PathMissing:
                    raise _MissingField(pf, path_text) from None

            return from_path
        return None

    # ------------------------------------------------------------------ Fail
    def fail_state(self, name: str, spec: dict[str, Any], flow: Dataflow, where: str, jsonata: bool) -> State:
        def text_field(field: str) -> Callable[[Any, Frame], Any] | None:
            if field in spec:
                v = spec[field]
                if jsonata and is_jsonata(v):
                    tpl = jsonata_template(v, field, where + "/" + field)

                    def ev(data: Any, frame: Frame) -> Any:
                        out = tpl(flow.states_binding(data, frame), frame)
                        if not isinstance(out, str):
                            raise ASLError(
                                errors.QUERY_EVALUATION_ERROR,
                                f"The JSONata expression '{v[2:-2].strip()}' specified for the field "
                                f"'{field}' returned an unexpected result type. Expected 'string', but "
                                f"was '{_json_type(out)}' for value: {payload.json_text(out)}")
                        return out

                    return ev
                return lambda data, frame: v
            pf = field + "Path"
            if pf in spec:
                text = spec[pf]
                if payload.is_intrinsic(text):
                    fn = self.template({"v.$": text}, pf, where + "/" + pf)
                    return lambda data, frame: fn(data, frame)["v"]
                getter = self.getter(text, where + "/" + pf)

                def from_path(data: Any, frame: Frame) -> Any:
                    try:
                        out = getter(data, frame)
                    except PathMissing:
                        raise ASLError(
                            errors.RUNTIME,
                            f"The JSONPath '{text}' specified for the field '{pf}' could not be found "
                            f"in the input '{payload.json_text(data)}'") from None
                    if not isinstance(out, str):
                        raise ASLError(
                            errors.RUNTIME,
                            f"The JSONPath '{text}' specified for the field '{pf}' did not return a "
                            f"string: {payload.json_text(out)}")
                    return out

                return from_path
            return None

        return FailState(name, spec, flow, text_field("Error"), text_field("Cause"))

    # ------------------------------------------------------------------ Choice
    def choice_state(self, name: str, spec: dict[str, Any], flow: Dataflow, where: str,
                     jsonata: bool) -> State:
        rules: list[tuple[Any, Any, Any]] = []
        outputs: list[Any] = []
        for i, rule in enumerate(spec.get("Choices") or []):
            rwhere = where + ptr("Choices", i)
            if not isinstance(rule, dict):
                raise CompileFailed(rwhere, "A Choice Rule must be an object")
            if jsonata or "Condition" in rule:
                cond = rule.get("Condition")
                if is_jsonata(cond):
                    tpl = jsonata_template(cond, "Condition", rwhere + "/Condition")
                    pred = _condition(tpl, str(cond))
                else:
                    pred = (lambda c: lambda states, frame: c is True)(cond)
                assign = self.jsonata_assign(rule["Assign"], rwhere + "/Assign") if "Assign" in rule else None
                out = jsonata_template(rule["Output"], "Output", rwhere + "/Output") if "Output" in rule else None
            else:
                from express.asl.choice import compile_rule

                try:
                    pred = compile_rule(rule)
                except ValueError as e:
                    raise CompileFailed(rwhere, str(e)) from None
                assign = self.jsonpath_assign(rule["Assign"], rwhere + "/Assign") if "Assign" in rule else None
                out = None
            rules.append((pred, rule.get("Next"), assign))
            outputs.append(out)
        return ChoiceState(name, spec, flow, rules, spec.get("Default"), outputs)

    # ------------------------------------------------------------------ Wait
    def wait_delay(self, spec: dict[str, Any], where: str, jsonata: bool) -> Callable[[Any, Frame, Any], float]:
        if "Seconds" in spec or "SecondsPath" in spec:
            maybe_get = self.value_field(spec, "Seconds", where, jsonata)
            if maybe_get is None:
                raise CompileFailed(where, "Wait needs Seconds or SecondsPath")
            get = maybe_get
            via_path = "SecondsPath" in spec
            path_text = spec.get("SecondsPath")

            def seconds(data: Any, frame: Frame, states: Any) -> float:
                try:
                    v = get(data, frame, states)
                except _MissingField:
                    raise ASLError(errors.RUNTIME,
                                   f"The SecondsPath parameter does not reference an input value: {path_text}") from None
                if via_path:
                    if not _is_integer(v):
                        raise ASLError(errors.RUNTIME,
                                       f"The SecondsPath parameter cannot be parsed as a long value: {path_text} == {payload.json_text(v)}")
                    if v < 0:
                        raise ASLError(errors.RUNTIME,
                                       f"The SecondsPath parameter references a negative value: {path_text} == {payload.json_text(v)}")
                    return float(v)
                if type(v) is bool or not isinstance(v, (int, float)) or v < 0 or (isinstance(v, float) and not v.is_integer()):
                    raise ASLError(errors.QUERY_EVALUATION_ERROR if jsonata else errors.RUNTIME,
                                   f"The Seconds field must be a non-negative integer, but was: {payload.json_text(v)}")
                return float(v)

            return seconds
        ts_get = self.value_field(spec, "Timestamp", where, jsonata)
        if ts_get is None:
            return lambda data, frame, states: 0.0
        via_path = "TimestampPath" in spec
        path_text = spec.get("TimestampPath")

        def until(data: Any, frame: Frame, states: Any) -> float:
            try:
                v = ts_get(data, frame, states)
            except _MissingField:
                raise ASLError(errors.RUNTIME,
                               f"The TimestampPath parameter does not reference an input value: {path_text}") from None
            t = parse_timestamp(v)
            if t is None:
                if via_path:
                    raise ASLError(errors.RUNTIME,
                                   "The TimestampPath parameter does not reference a valid ISO-8601 extended "
                                   f"offset date-time format string: {path_text} == {v if isinstance(v, str) else payload.json_text(v)}")
                raise ASLError(errors.QUERY_EVALUATION_ERROR if jsonata else errors.RUNTIME,
                               "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time "
                               f"format string: {v if isinstance(v, str) else payload.json_text(v)}")
            return t - frame.execution.clock.now()

        return until

    # ------------------------------------------------------------------ Task / Parallel / Map
    def recovery(self, spec: dict[str, Any], where: str, jsonata: bool) -> tuple[list[Retrier], list[Catcher]]:
        retriers = [Retrier(r) for r in spec.get("Retry") or [] if isinstance(r, dict)]
        catchers = []
        for i, c in enumerate(spec.get("Catch") or []):
            if not isinstance(c, dict):
                continue
            cw = where + ptr("Catch", i)
            catcher = Catcher(c)
            catcher.jsonata = jsonata
            if jsonata:
                if "Output" in c:
                    catcher.output = jsonata_template(c["Output"], "Output", cw + "/Output")
                if "Assign" in c:
                    catcher.assign = self.jsonata_assign(c["Assign"], cw + "/Assign")
            else:
                if "ResultPath" in c:
                    rp = c["ResultPath"]
                    if rp is None:
                        catcher.result_path = _discard
                    else:
                        catcher.result_path = self.setter(rp, cw + "/ResultPath")
                if "Assign" in c:
                    catcher.assign = self.jsonpath_assign(c["Assign"], cw + "/Assign")
            catchers.append(catcher)
        return retriers, catchers

    def task_state(self, name: str, spec: dict[str, Any], flow: Dataflow, where: str, jsonata: bool) -> State:
        resource = spec.get("Resource")
        if not isinstance(resource, str):
            raise CompileFailed(where + "/Resource", "The field 'Resource' is required and must be a string")
        reason = tasks.unsupported_reason(resource)
        if reason:
            raise CompileFailed(where + "/Resource", reason)
        mocked = self.mocked.get(name)
        if mocked is not None:
            invoke = mocked
            self.mocked_found.add(name)
        else:
            try:
                invoke = tasks.build_invoker(resource, self.functions, self.integrations)
            except ValueError as e:
                if not tasks.recognized(resource):
                    raise CompileFailed(where + "/Resource", tasks.not_recognized_message(resource)) from None
                raise CompileFailed(where + "/Resource", str(e)) from None
        timeout_get = self.value_field(spec, "TimeoutSeconds", where, jsonata)
        tpath = spec.get("TimeoutSecondsPath")

        def timeout(data: Any, frame: Frame, states: Any) -> float | None:
            if timeout_get is None:
                return None
            try:
                v = timeout_get(data, frame, states)
            except _MissingField:
                raise ASLError(errors.RUNTIME,
                               f"Invalid path '{tpath}' : No results for path: {jsonpath.parse_path(str(tpath)).jayway()}") from None
            if type(v) is bool or not isinstance(v, (int, float)) or v <= 0:
                raise ASLError(errors.QUERY_EVALUATION_ERROR if jsonata else errors.RUNTIME,
                               f"The TimeoutSeconds field must be a positive integer, but was: {payload.json_text(v)}")
            return float(v)

        credentials = None
        if "Credentials" in spec:  # evaluated as Arguments is: on the raw input, or on $states
            credentials = (jsonata_template if jsonata else self.template)(spec["Credentials"], "Credentials",
                                                                           where + "/Credentials")
        retriers, catchers = self.recovery(spec, where, jsonata)
        return TaskState(name, spec, flow, retriers, catchers, invoke, timeout, credentials)

    def map_state(self, name: str, spec: dict[str, Any], flow: Dataflow, where: str, jsonata: bool) -> State:
        proc_spec = spec.get("ItemProcessor") or spec.get("Iterator") or {}
        field = "ItemProcessor" if "ItemProcessor" in spec else "Iterator"
        processor = self.block(proc_spec, where + "/" + field, self.top_language)
        # Items
        if jsonata:
            if "Items" in spec:
                items_v = spec["Items"]
                tpl = jsonata_template(items_v, "Items", where + "/Items")
                expr_text = items_v[2:-2].strip() if is_jsonata(items_v) else payload.json_text(items_v)

                def items(data: Any, frame: Frame, states: Any) -> Any:
                    v = tpl(states, frame)
                    if not isinstance(v, list):
                        raise ASLError(
                            errors.QUERY_EVALUATION_ERROR,
                            f"The JSONata expression '{expr_text}' specified for the field 'Items' returned an "
                            f"unexpected result type. Expected 'array', but was '{_json_type(v)}' for value: "
                            f"{payload.json_text(v)}")
                    return v
            else:
                def items(data: Any, frame: Frame, states: Any) -> Any:
                    if not isinstance(data, list):
                        raise ASLError(errors.QUERY_EVALUATION_ERROR,
                                       f"Map state input must be an array but was: {payload.json_text(data)}")
                    return data
        else:
            ipath = spec.get("ItemsPath", "$")
            getter = self.getter(ipath, where + "/ItemsPath")

            def items(data: Any, frame: Frame, states: Any) -> Any:
                try:
                    v = getter(data, frame)
                except PathMissing as e:
                    raise invalid_path(e) from None
                if not isinstance(v, list):
                    raise ASLError(errors.RUNTIME,
                                   f"Map state input must be an array but was: {payload.json_text(v)}")
                return v

        # ItemSelector (or legacy Parameters)
        sel_field = "ItemSelector" if "ItemSelector" in spec else ("Parameters" if "Parameters" in spec else None)
        item_selector = None
        if sel_field is not None:
            if jsonata:
                stpl = jsonata_template(spec[sel_field], sel_field, where + "/" + sel_field)

                def item_selector(data: Any, frame: Frame, states: Any) -> Any:
                    st = dict(states)
                    st["context"] = frame.context_object()
                    return stpl(st, frame)
            else:
                ptpl = self.template(spec[sel_field], sel_field, where + "/" + sel_field)

                def item_selector(data: Any, frame: Frame, states: Any) -> Any:
                    return ptpl(data, frame)

        mc = self.value_field(spec, "MaxConcurrency", where, jsonata)
        mc_path = spec.get("MaxConcurrencyPath")

        def max_concurrency(data: Any, frame: Frame, states: Any) -> int:
            if mc is None:
                return 0
            v = _path_value(mc, data, frame, states, mc_path)
            if not _is_integer(v):
                raise ASLError(errors.RUNTIME if mc_path else errors.QUERY_EVALUATION_ERROR,
                               f"The MaxConcurrencyPath field refers to value \"{_plain(v)}\" which is not a valid integer: {mc_path}")
            if v < 0:
                raise ASLError(errors.RUNTIME, "MaxConcurrency cannot be negative.")
            return int(v)

        pct_get = self.value_field(spec, "ToleratedFailurePercentage", where, jsonata)
        cnt_get = self.value_field(spec, "ToleratedFailureCount", where, jsonata)
        pct_path = spec.get("ToleratedFailurePercentagePath")
        cnt_path = spec.get("ToleratedFailureCountPath")

        def tolerated(data: Any, frame: Frame, states: Any) -> tuple[float | None, int | None]:
            pct = cnt = None
            if pct_get is not None:
                v = pct_get(data, frame, states)
                if pct_path:
                    v = _numeric_text(v, False)
                if type(v) is bool or not isinstance(v, (int, float)):
                    raise ASLError(errors.RUNTIME,
                                   f"The ToleratedFailurePercentagePath field refers to value \"{_plain(v)}\" which is not a valid float: {pct_path}")
                if not 0 <= v <= 100:
                    raise ASLError(errors.RUNTIME, "ToleratedFailurePercentage must be between 0 and 100.")
                pct = float(v)
            if cnt_get is not None:
                v = cnt_get(data, frame, states)
                if cnt_path:
                    v = _numeric_text(v, True)
                if not _is_integer(v):
                    raise ASLError(errors.RUNTIME,
                                   f"The ToleratedFailureCountPath field refers to value \"{_plain(v)}\" which is not a valid integer: {cnt_path}")
                if v < 0:
                    raise ASLError(errors.RUNTIME, "ToleratedFailureCount cannot be negative.")
                cnt = int(v)
            return pct, cnt

        run = self.map_run(spec, where, jsonata)
        retriers, catchers = self.recovery(spec, where, jsonata)
        return MapState(name, spec, flow, retriers, catchers, processor, items, item_selector,
                        max_concurrency, tolerated, run)

    # ------------------------------------------------------------------ Map Run
def _assigns(spec: Any) -> bool:
    if not isinstance(spec, dict):
        return False
    if "Assign" in spec:
        return True
    rules = [r for r in (spec.get("Choices") or []) if isinstance(r, dict)]
    catchers = [c for c in (spec.get("Catch") or []) if isinstance(c, dict)]
    return any("Assign" in x for x in rules + catchers)


def _json_type(v: Any) -> str:
    return payload.json_type(v, "function")


def _condition(tpl: Callable[[dict[str, Any], Frame], Any], text: str) -> Callable[[Any, Frame], bool]:
    expr = text[2:-2].strip()

    def pred(states: Any, frame: Frame) -> bool:
        v = tpl(states, frame)
        if not isinstance(v, bool):
            raise ASLError(
                errors.QUERY_EVALUATION_ERROR,
                f"The JSONata expression '{expr}' specified for the field 'Condition' returned an unexpected "
                f"result type. Expected 'boolean', but was '{_json_type(v)}' for value: {payload.json_text(v)}")
        return v

    return pred


def _empty_object(data: Any, frame: Frame) -> Any:
    return {}




def _literal(value: Any) -> Callable[[Any, Frame], Any]:
    """A static JSON value rebuilt fresh on each call (so callers may own what they get)."""
    if value is None or isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value)):
        return lambda d, f: value
    src = f"def literal(d, f):\n    return {value!r}\n"
    ns: dict[str, Any] = {}
    try:
        exec(compile(src, "<express:literal>", "exec"), ns)  # noqa: S102 - repr() of JSON data
        fn: Callable[[Any, Frame], Any] = ns["literal"]
        return fn
    except (SyntaxError, NameError, RecursionError, MemoryError):
        import copy

        return lambda d, f: copy.deepcopy(value)
