"""The synchronous HTTP API: AWS JSON 1.0 StepFunctions operations on the engine (see server.py)."""
from express.http.server import HttpServer

__all__ = ["HttpServer"]
