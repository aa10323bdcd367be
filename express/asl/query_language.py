"""The two query languages of a definition, and how a field's value is marked as JSONata.

Kept apart from :mod:`express.asl.jsonata` (which loads the JSONata engine) so that the validator
and the compiler can tell an expression from a literal without loading it.
"""
from __future__ import annotations

from typing import Any

JSONPATH = "JSONPath"
JSONATA = "JSONata"


def is_jsonata(value: Any) -> bool:
    """A JSONata expression: a string that starts with ``{%`` and ends with ``%}``, nothing
    around them, the two delimiters apart (so ``"{%}"`` is not one)."""
    return type(value) is str and len(value) >= 4 and value.startswith("{%") and value.endswith("%}")
