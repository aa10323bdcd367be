"""express: AWS Step Functions (Amazon States Language) executed in memory, Express-style."""
from express.asl.errors import ASLError, DefinitionError, Problem
from express.engine.clock import RealClock, VirtualClock
from express.engine.machine import Engine, ExecutionResult, Machine

__all__ = [
    "ASLError",
    "DefinitionError",
    "Engine",
    "ExecutionResult",
    "Machine",
    "Problem",
    "RealClock",
    "VirtualClock",
]
__version__ = "0.1.0"
