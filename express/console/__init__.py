"""The web console: state machines as graphs, their recent executions with their history, live
counters and validation as you type. Served by the HTTP server under ``/console``.

The engine's only part in it is :class:`ExecutionRing`, its ``recorder``: one deque append per
execution, and only when a recorder is configured (``express serve`` does; an :class:`Engine`
made in Python has none). Everything else runs when someone looks.
"""
from __future__ import annotations

from express.console.graph import graph_model, node_for_pointer
from express.console.ring import ExecutionRing

__all__ = ["Console", "ExecutionRing", "graph_model", "node_for_pointer"]


def __getattr__(name: str) -> object:
    if name == "Console":  # imported lazily: it pulls in the HTTP layer
        from express.console.app import Console

        return Console
    raise AttributeError(name)
