"""The service's own log lines (not the executions' logs, see :mod:`express.observe.sinks`): levels and a
text or JSON format, configured once at start (:func:`configure`) from ``[logging] format`` and
``[logging] service_level``.

* ``text`` (the default): ``express: <component>: <message>``, with ``WARNING:`` / ``ERROR:``
  after the component for those levels, as people read them on a terminal.
* ``json``: one object per line, for log shippers: ``time`` (RFC 3339, UTC), ``level``,
  ``worker`` (the worker index, or ``"supervisor"``), ``component``, ``event`` (a short stable
  name to filter on), ``message`` and ``fields`` (the values the message names, machine-readable).

Each module keeps a small ``log()`` that names its component and calls :func:`emit`. Lines go to
stderr; the supervisor copies its workers' lines (JSON ones unchanged, see :mod:`express.serve.supervisor`).
"""
from __future__ import annotations

import datetime
import logging
import sys
from typing import Any

import orjson

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
FORMATS = ("text", "json")
_UTC = datetime.UTC


class _Config:
    __slots__ = ("format", "threshold", "worker")

    def __init__(self) -> None:
        self.format = "text"
        self.threshold = LEVELS["info"]
        self.worker: int | str | None = None


_CONFIG = _Config()


def configure(fmt: str = "text", *, level: str = "info", worker: int | str | None = None) -> None:
    """Once, at start: the format, the lowest level written, and who this process is (the worker
    index; ``"supervisor"``). In JSON, Python's own logging (aiokafka's warnings) is written as JSON too."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    _CONFIG.format, _CONFIG.threshold, _CONFIG.worker = fmt, LEVELS[level], worker
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _JsonHandler):
            root.removeHandler(handler)
    if fmt == "json":
        root.addHandler(_JsonHandler())


def current_format() -> str:
    return _CONFIG.format


def enabled(level: str) -> bool:
    return LEVELS[level] >= _CONFIG.threshold


def _now() -> str:
    return datetime.datetime.now(_UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_json(level: str, component: str, event: str, message: str, fields: dict[str, Any] | None = None,
                worker: int | str | None = None) -> str:
    record = {"time": _now(), "level": level, "worker": _CONFIG.worker if worker is None else worker,
              "component": component, "event": event, "message": message, "fields": fields or {}}
    return orjson.dumps(record, default=str).decode()


def format_text(level: str, component: str, message: str) -> str:
    shown = f"{level.upper()}: " if LEVELS[level] >= LEVELS["warning"] else ""
    return f"express: {component}: {shown}{message}" if component else f"express: {shown}{message}"


def emit(component: str, message: str, *, level: str = "info", event: str = "", **fields: Any) -> None:
    """Write one line. ``event`` defaults to the component's name; ``fields`` appear in JSON only
    (the text message already says them in words)."""
    if LEVELS[level] < _CONFIG.threshold:
        return
    if _CONFIG.format == "json":
        line = format_json(level, component, event or component or "service", message, fields)
    else:
        line = format_text(level, component, message)
    _write(line)


def _write(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: a log line is never worth a crash
        pass


_TROUBLE = ("failed", "cannot ", "could not ")


def emit_message(component: str, message: str, *, event: str = "", **fields: Any) -> None:
    """A module's ``log(message)``: the level read from the wording these messages have always had
    (a leading ``WARNING:`` or ``ERROR:``, or a failure), so their call sites stay as they are."""
    level = "info"
    head, sep, rest = message.partition(": ")
    if sep and head in ("WARNING", "ERROR"):
        level, message = head.lower(), rest
    elif "WARNING: " in message:  # "state: WARNING: ..." says its level already
        if LEVELS["warning"] < _CONFIG.threshold:
            return
        if _CONFIG.format == "json":
            emit(component, message, level="warning", event=event, **fields)
        else:
            _write(f"express: {component}: {message}" if component else f"express: {message}")
        return
    elif any(word in message for word in _TROUBLE):
        level = "warning"
    emit(component, message, level=level, event=event, **fields)


class _JsonHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning" if record.levelno >= logging.WARNING \
            else "info" if record.levelno >= logging.INFO else "debug"
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # a bad format string in a library's call
            message = str(record.msg)
        emit(record.name.partition(".")[0], message, level=level, event="library", logger=record.name)
