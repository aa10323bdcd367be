"""(being written)"""
from __future__ import annotations

from typing import Any


def build(resource: str, integrations: Any) -> Any:
    return None
