"""What JSON express accepts: how deep values may nest, and which integers it keeps exactly.

Both limits come from orjson, which reads and writes every JSON value express handles.

Nesting. orjson reads 1,024 levels of arrays and objects but writes only 254 ("Recursion limit
reached" beyond), so a value between the two could be accepted and then never answered. Every
value an execution holds (its input, what its states build, its output) therefore nests at most
:data:`MAX_DEPTH` levels: 253, one below what orjson writes, because the deepest document a value
is written inside puts it one level down (a Kafka result's ``"output"``, ``express exec``'s
answer). The doors refuse deeper input (HTTP: 400 InvalidExecutionInput; Kafka: the dead-letter
topic with reason ``too-deep``; the Python API: FAILED with States.Runtime), a state that builds a
deeper value fails with States.Runtime, and a definition nested deeper is a DefinitionError.
(AWS's Jackson allows more; no real payload comes near 253.)

Integers. orjson keeps integers from -2**63 to 2**64-1 exactly and silently turns any other into
a float (123456789012345678901234567890 would become 1.2345678901234568e+29), and it cannot write
such an integer from Python at all. AWS keeps them exact (Jackson parses them as BigInteger), so
express, rather than change a number, refuses them clearly: HTTP 400 InvalidExecutionInput, Kafka
dead-letter reason ``number-out-of-range``, Python API FAILED with States.Runtime, a definition
SCHEMA_VALIDATION_FAILED. Send such numbers as strings.

Cost: :func:`suspect` is a C-speed pre-filter on the raw text; only the rare input it flags pays
for the precise checks of :func:`refusal`.
"""
from __future__ import annotations

import json
from typing import Any

import orjson

from express.asl.errors import RUNTIME, ASLError

ORJSON_WRITE_DEPTH = 254  # the deepest value orjson.dumps writes (tests pin it)
MAX_DEPTH = ORJSON_WRITE_DEPTH - 1  # see the module docstring
MIN_INT = -(2**63)
MAX_INT = 2**64 - 1

TOO_DEEP = "too-deep"
NUMBER_OUT_OF_RANGE = "number-out-of-range"

# A value nested d levels deep is at least 2*d bytes of JSON.
_DEEP_BYTES = 2 * MAX_DEPTH
# One pass maps digits and "-" to "0", "[" and "{" to "[", anything else to " ": an integer orjson
# cannot keep is a run of 20 digits, or of a minus sign and 19 digits.
_SCAN = bytes(0x30 if 0x30 <= c <= 0x39 or c == 0x2D else 0x5B if c in (0x5B, 0x7B) else 0x20
              for c in range(256))
_LONG = b"0" * 20


def suspect(text: bytes) -> bool:
    """False for almost every input: then it nests at most MAX_DEPTH levels and holds no integer
    out of range. True: ask :func:`refusal`."""
    if len(text) < 20:
        return False
    scan = text.translate(_SCAN)
    return _LONG in scan or (len(text) > _DEEP_BYTES and scan.count(b"[") > MAX_DEPTH)


def _long_digits(text: bytes) -> bool:
    return len(text) >= 20 and _LONG in text.translate(_SCAN)


def huge_integer(text: str | bytes | bytearray) -> tuple[str, str] | None:
    """(digits, JSON pointer) of the first integer in the JSON ``text`` that orjson would turn into
    a float, or None (at once for almost every text)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    return _huge_integer(raw) if _long_digits(raw) else None


def refusal(text: bytes, value: Any, subject: str = "the input") -> tuple[str, str] | None:
    """Why ``value`` (orjson's parse of ``text``) must be refused, as (reason, message), or None.

    ``reason`` is :data:`TOO_DEEP` or :data:`NUMBER_OUT_OF_RANGE`; the message names the place
    (a JSON pointer) and the limit, with ``subject`` as the sentence's subject."""
    if deeper_than(value, MAX_DEPTH):
        return TOO_DEEP, too_deep_message(value, subject)
    found = _huge_integer(text) if _long_digits(text) else None
    if found is not None:
        return NUMBER_OUT_OF_RANGE, integer_message(subject, *found)
    return None


def input_refusal(text: str | bytes, value: Any, subject: str = "the input") -> tuple[str, str] | None:
    """:func:`refusal` behind the :func:`suspect` pre-filter, for text as str or bytes."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return refusal(raw, value, subject) if suspect(raw) else None


def decode_refusal(error: orjson.JSONDecodeError, subject: str = "the input") -> tuple[str, str] | None:
    """(TOO_DEEP, message) when orjson refused the text for its nesting alone, else None."""
    text = str(error)
    if not text.startswith("depth limit exceeded"):
        return None
    return TOO_DEEP, (f"{subject} nests arrays and objects more than 1024 levels deep (from character "
                      f"{error.pos}), and the limit is {MAX_DEPTH}")


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays and objects more than ``limit`` levels (0 <= limit <= 254),
    at C speed: orjson writes at most 254 levels, so ``value`` inside 254 - limit one-element
    lists is written only if it nests ``limit`` levels or fewer."""
    if limit < 0:
        return True
    box = value
    for _ in range(ORJSON_WRITE_DEPTH - limit):
        box = [box]
    try:
        orjson.dumps(box, default=str)
    except orjson.JSONEncodeError as e:
        return _is_depth(e)
    return False


def _is_depth(error: orjson.JSONEncodeError) -> bool:
    return str(error) == "Recursion limit reached"


def json_size(value: Any, subject: str) -> int:
    """Bytes of ``value`` as compact JSON (default=str for what is not JSON), raising States.Runtime
    when it cannot be written: nested more than MAX_DEPTH levels, or an integer out of range."""
    try:
        # one level more than the value: orjson itself refuses a value nested deeper than MAX_DEPTH
        return len(orjson.dumps([value])) - 2
    except TypeError:
        try:
            return len(orjson.dumps([value], default=str)) - 2
        except TypeError as e:
            raise unwritable(value, subject, e) from None


def unwritable(value: Any, subject: str, error: BaseException) -> ASLError:
    """The States.Runtime error for a value orjson could not write (``error``): too deep, an
    integer out of range, or (from the Python API) a key that is not a string."""
    if deeper_than(value, MAX_DEPTH):
        return ASLError(RUNTIME, _capital(too_deep_message(value, subject)))
    found = _find(value, lambda v: type(v) is int and not MIN_INT <= v <= MAX_INT)
    if found is not None:
        return ASLError(RUNTIME, _capital(integer_message(subject, str(found[1]), found[0])))
    found = _find_key(value)
    if found is not None:
        return ASLError(RUNTIME, _capital(f"{subject} is not JSON: the object at {found[0] or '/'} has the key "
                                          f"{_clip(repr(found[1]))}, and JSON keys are strings"))
    return ASLError(RUNTIME, _capital(f"{subject} cannot be written as JSON: {error}"))


def too_deep_message(value: Any, subject: str) -> str:
    where = _first_too_deep(value, MAX_DEPTH)
    return (f"{subject} nests arrays and objects more than {MAX_DEPTH} levels deep: the value at "
            f"{_clip(where)} is at depth {MAX_DEPTH + 1}, and the limit is {MAX_DEPTH}")


def written_too_deep(value: Any, depth: int) -> ASLError:
    """States.Runtime for a result that nests too deeply for the place ``depth`` levels down its
    ResultPath writes it."""
    where = _first_too_deep(value, MAX_DEPTH - depth)
    return ASLError(RUNTIME, f"The ResultPath writes the result {depth} level{'s' if depth > 1 else ''} down, "
                             f"where it would nest arrays and objects more than {MAX_DEPTH} levels deep: its "
                             f"value at {_clip(where)} would be at depth {MAX_DEPTH + 1}, and the limit is "
                             f"{MAX_DEPTH}")


def integer_message(subject: str, digits: str, pointer: str) -> str:
    return (f"{subject} holds the integer {_clip(digits)} at {_clip(pointer) or '/'}, outside the range "
            f"{MIN_INT} to {MAX_INT} that is kept exactly; give it as a string")


# ---------------------------------------------------------------------- finding the place

def _first_too_deep(value: Any, limit: int) -> str:
    """JSON pointer of the first array or object (in document order) nested deeper than limit."""
    if not isinstance(value, (dict, list)):
        return "/"
    stack: list[tuple[Any, int, Any]] = [(value, 1, None)]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            return _pointer(path) or "/"
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in reversed(list(children)):
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, (path, key)))
    return "/"


def _find(value: Any, bad: Any) -> tuple[str, Any] | None:
    """(pointer, leaf) of the first leaf for which ``bad(leaf)``, in document order."""
    stack: list[tuple[Any, Any]] = [(value, None)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, (dict, list)):
            children = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend((child, (path, key)) for key, child in reversed(list(children)))
        elif bad(node):
            return _pointer(path), node
    return None


def _find_key(value: Any) -> tuple[str, Any] | None:
    stack: list[tuple[Any, Any]] = [(value, None)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    return _pointer(path), key
            stack.extend((child, (path, key)) for key, child in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((child, (path, i)) for i, child in reversed(list(enumerate(node))))
    return None


class _Huge:
    __slots__ = ("digits",)

    def __init__(self, digits: str) -> None:
        self.digits = digits


def _huge_integer(text: bytes) -> tuple[str, str] | None:
    """(digits, pointer) of the first integer in ``text`` that orjson would not keep exactly.

    Python's json module keeps every integer token as written (``parse_int``); it runs only on
    the rare text :func:`suspect` flags, whose nesting :func:`refusal` has already bounded."""
    seen: list[bool] = []

    def parse_int(digits: str) -> Any:
        n = int(digits)
        if MIN_INT <= n <= MAX_INT:
            return n
        seen.append(True)
        return _Huge(digits)

    try:
        value = json.loads(text, parse_int=parse_int)
    except (ValueError, RecursionError):
        return None
    if not seen:
        return None
    found = _find(value, lambda v: type(v) is _Huge)
    return (found[1].digits, found[0]) if found is not None else None


def _pointer(path: Any) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append("/" + str(key).replace("~", "~0").replace("/", "~1"))
    return "".join(reversed(parts))


def _clip(text: str, keep: int = 60) -> str:
    return text if len(text) <= 2 * keep + 3 else f"{text[:keep]}...{text[-keep:]}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
