"""Helpers shared by the engine tests (import: ``from tests.support import ...``)."""
from __future__ import annotations

from typing import Any

import express


class FakeFrame:
    """Stands in for express.frame.Frame where a getter/template only needs vars and ``$$``."""

    def __init__(self, vars: dict[str, Any] | None = None, context: dict[str, Any] | None = None) -> None:
        self.vars = vars or {}
        self._context = context or {}

    def context_object(self) -> dict[str, Any]:
        return self._context


def machine(states: dict[str, Any], start: str | None = None, **top: Any) -> dict[str, Any]:
    """A definition from a States dict (StartAt = first state unless given)."""
    return {"StartAt": start or next(iter(states)), "States": states, **top}


def single(state: dict[str, Any]) -> dict[str, Any]:
    """A one-state machine; adds End:true where the state type needs it."""
    s = dict(state)
    if s["Type"] not in ("Succeed", "Fail", "Choice") and "Next" not in s:
        s.setdefault("End", True)
    return machine({"S": s})


async def run(definition: Any, input: Any = None, functions: dict[str, Any] | None = None,
              **engine_kw: Any) -> express.ExecutionResult:
    engine_kw.setdefault("clock", express.VirtualClock())
    engine = express.Engine(functions=functions, **engine_kw)
    m = engine.compile(definition)
    if input is None:
        return await m.execute()
    return await m.execute(input)
