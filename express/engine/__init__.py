"""Compiling a definition into closures and running it: the compiler, the state implementations, the
execution frame and the yielding runner, Task resources, clocks, the execution history and Express billing.

May import :mod:`express.asl` only. Observability reaches the engine through objects passed in (a metrics
recorder, sinks); the engine never imports a metrics library, a transport or the service.
"""
from express.engine.clock import RealClock, VirtualClock
from express.engine.machine import Engine, ExecutionResult, Machine

__all__ = ["Engine", "ExecutionResult", "Machine", "RealClock", "VirtualClock"]
