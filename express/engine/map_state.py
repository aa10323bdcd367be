"""The Map state: inline and Distributed Map iterations, ItemSelector, MaxConcurrency and tolerated
failures."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from express.asl import errors
from express.asl.errors import ASLError
from express.engine.branches import (
    _size,
    inner_frame,
    paced,
    run_concurrently,
)
from express.engine.dataflow import (
    Dataflow,
    payload_size,
)
from express.engine.frame import Frame
from express.engine.runner import (
    FIRST_RUNS,
    TURNS,
    Block,
    Pace,
    Suspended,
    check_deadline,
    give_back,
)
from express.engine.states import (
    Catcher,
    RecoverableState,
    Retrier,
)


class MapState(RecoverableState):
    attempt_events = 0

    def __init__(self, name: str, spec: dict[str, Any], flow: Dataflow,
                 retriers: list[Retrier], catchers: list[Catcher], processor: Block,
                 items: Callable[[Any, Frame, Any], Any],
                 item_selector: Callable[[Any, Frame, Any], Any] | None,
                 max_concurrency: Callable[[Any, Frame, Any], int],
                 tolerated: Callable[[Any, Frame, Any], tuple[float | None, int | None]],
                 ) -> None:
        super().__init__(name, spec, flow, retriers, catchers)
        self.processor = processor
        self.items = items
        self.item_selector = item_selector
        self.max_concurrency = max_concurrency
        self.tolerated = tolerated
        proc = spec.get("ItemProcessor") or {}
        self.distributed = isinstance(proc, dict) and (proc.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"

    async def attempt(self, frame: Frame, raw: Any, entered: int) -> Any:
        flow = self.flow
        ex = frame.execution
        ex.event_id += 1  # MapStateStarted
        ex.parallel_steps += 1
        states = None
        if flow.jsonata:
            states = flow.states_binding(raw, frame)
            eff = raw
        else:
            eff = raw if flow.input_path is None else flow.input_path(raw, frame)
        items = self.items(eff, frame, states)
        limit = self.max_concurrency(eff, frame, states)
        pct, count = self.tolerated(eff, frame, states)
        # Items are parts of the state's input, so its size bounds theirs; selected items are new data.
        selector = self.item_selector
        item_size = frame.size if selector is None else -1
        left, pace = FIRST_RUNS, None
        if selector is None:
            inputs = list(items)
        else:
            inputs = []
            for i, item in enumerate(items):
                sel_frame = Frame(ex, frame.vars, {"Index": i, "Value": item})
                sel_frame.state_name = frame.state_name
                sel_frame.entered_at = frame.entered_at
                sel_frame.retry_count = frame.retry_count
                inputs.append(selector(eff, sel_frame, states))
                left -= 1
                if not left:
                    pace = pace or Pace(FIRST_RUNS)
                    left = await paced(ex, pace)
        processor = self.processor
        if ex.log is not None:
            ex.log.add("MapStateStarted", {"length": len(inputs)})
            results = await self._logged_iterations(frame, inputs, limit, pct, count, item_size)
        elif pct is None and count is None:
            if not processor.is_async:
                results = []
                # nothing in the iterations writes variables: they can share one scope
                shared = None if processor.assigns else inner_frame(frame, 0, self.distributed)
                lo, n, batch = 0, len(inputs), left
                while lo < n:
                    for v in inputs if lo == 0 and batch >= n else inputs[lo:lo + batch]:
                        ex.event_id += 1  # MapIterationStarted
                        if shared is None:
                            scope = inner_frame(frame, _size(v, item_size), self.distributed)
                        else:
                            scope = shared
                            shared.size = item_size if item_size >= 0 else payload_size(v)
                        try:
                            results.append(processor.run_sync(scope, v))
                        except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                            results.append(await processor.resume(scope, s))
                        ex.event_id += 1  # MapIterationSucceeded
                    lo += batch
                    if lo < n:
                        pace = pace or Pace(batch)
                        batch = await paced(ex, pace)
            else:
                jobs: list[Callable[[], Any]] = [functools.partial(self._iteration, frame, v, item_size) for v in inputs]
                results = await run_concurrently(jobs, min(limit, 40) if limit else 40)
        else:
            results = await self._tolerant(frame, inputs, limit, pct, count, item_size)
        ex.event_id += 1  # MapStateSucceeded
        if ex.log is not None:
            ex.log.add("MapStateSucceeded", {})
        if not flow.jsonata and flow.result_selector is not None:
            results = flow.result_selector(results, frame)
        return self.finish(frame, raw, results, results)

    async def _logged_iterations(self, frame: Frame, inputs: list[Any], limit: int, pct: float | None,
                                 count: int | None, item_size: int) -> list[Any]:
        log = frame.execution.log

        async def one(index: int, value: Any) -> Any:
            log.add("MapIterationStarted", {"index": index, "name": self.name})
            try:
                out = await self._iteration(frame, value, item_size)
            except ASLError as e:
                log.add("MapIterationFailed", {"index": index, "name": self.name, "error": e.error,
                                               "cause": e.cause})
                raise
            log.add("MapIterationSucceeded", {"index": index, "name": self.name})
            return out

        if pct is not None or count is not None:
            return await self._tolerant(frame, inputs, limit, pct, count, item_size)
        jobs: list[Callable[[], Any]] = [functools.partial(one, i, v) for i, v in enumerate(inputs)]
        return await run_concurrently(jobs, min(limit, 40) if limit else 40)

    async def _iteration(self, frame: Frame, value: Any, size: int) -> Any:
        ex = frame.execution
        # Iterations run as tasks, many ready at once: each starts within the slice or waits its turn.
        now = check_deadline(ex)
        if now >= TURNS.until and TURNS.must_wait(now):
            await give_back(ex)
        ex.event_id += 1
        processor = self.processor
        scope = inner_frame(frame, _size(value, size), self.distributed)
        if processor.is_async:
            out = await processor.run(scope, value)
        else:
            try:
                out = processor.run_sync(scope, value)
            except Suspended as s:  # its slice of the loop is used up: on in the yielding runner
                out = await processor.resume(scope, s)
        ex.event_id += 1
        return out

    async def _tolerant(self, frame: Frame, inputs: list[Any], limit: int,
                        pct: float | None, count: int | None, item_size: int) -> list[Any]:
        failures = 0
        results: list[Any] = [None] * len(inputs)
        last: ASLError | None = None

        def exceeded() -> bool:
            if count is not None and failures > count:
                return True
            if pct is not None and inputs and failures * 100.0 / len(inputs) > pct:
                return True
            return False

        for i, v in enumerate(inputs):
            try:
                results[i] = await self._iteration(frame, v, item_size)
            except ASLError as e:
                failures += 1
                last = e
                results[i] = None
                if exceeded():
                    break
        if failures and exceeded():
            raise ASLError(
                errors.EXCEED_TOLERATED_FAILURE_THRESHOLD,
                "The specified tolerated failure threshold was exceeded",
                located=True,
            )
        del last
        return results
