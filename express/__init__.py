"""express: AWS Step Functions (Amazon States Language) executed in memory, Express-style."""
from express.clock import RealClock, VirtualClock
from express.engine import Engine, ExecutionResult, Machine
from express.errors import ASLError, DefinitionError, Problem

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
