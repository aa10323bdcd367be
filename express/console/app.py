"""The console's HTTP routes, served by :class:`express.http.server.HttpServer` under ``/console``.

- ``GET /console``: the single-page app; ``GET /console/static/<file>``: its assets (packaged
  with express, including the vendored graph-layout library: no CDN, works offline);
- ``GET /console/api/machines``: the state machines, with what the console knows of each;
- ``GET /console/api/machines/<name>``: a machine's definition and graph model;
- ``GET /console/api/machines/<name>/executions``: its recent executions (summaries, newest first);
- ``GET /console/api/machines/<name>/executions/<id>``: one execution with its history;
- ``POST /console/api/machines/<name>/executions``: start an execution (``{"input": TEXT,
  "name": NAME?}``), wait for its end and answer its outcome and output (the console's "Start
  execution"; at most :data:`MAX_STARTS` at a time);
- ``GET /console/api/stats``: live counters per machine (executions/s, failures, p99 duration),
  with percentiles of the observed durations of its recent executions (``observed``);
- ``POST /console/api/validate``: definition text -> problems with their JSON pointers, and the
  graph model.

Login: the console has a token of its own (``[console] token`` / ``EXPRESS_CONSOLE_TOKEN``; with
credentials configured and no token, ``express serve`` generates one at start and prints it), so
the SigV4 secret never travels over plain HTTP and a leaked console token cannot sign API calls.
With a token (or credentials), ``/console/api/*`` needs ``Authorization: Bearer TOKEN`` or the
session cookie that ``POST /console/api/login`` (``{"token": TOKEN}``) sets (HttpOnly,
SameSite=Strict; ``POST /console/api/logout`` clears it); the page and its static assets hold no
data and load without it, and the page asks for the token. Without either, the console is open.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import sys
import uuid
from importlib import resources
from typing import Any
from urllib.parse import unquote

import orjson

from express.console.graph import graph_model, node_for_pointer
from express.console.ring import ExecutionRing
from express.console.stats import LiveCounters
from express.http.protocol import Request, Response

PREFIX = "/console"
API = "/console/api/"
STATIC = "/console/static/"
MAX_EXECUTIONS_LISTED = 500
SESSION_COOKIE = "express_console"
MAX_LOGIN_BYTES = 4096
MAX_STARTS = 4  # executions started from the console and still running
_EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_TYPES = {
    "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml", "json": "application/json", "md": "text/plain; charset=utf-8",
    "txt": "text/plain; charset=utf-8", "png": "image/png", "ico": "image/x-icon",
}
_SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
]


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every packaged asset by its path under static/, read once."""
    files: dict[str, tuple[bytes, str]] = {}
    root = resources.files("express.console").joinpath("static")

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            rel = prefix + child.name
            if child.is_dir():
                walk(child, rel + "/")
            elif child.is_file():
                ext = child.name.rpartition(".")[2].lower()
                files[rel] = (child.read_bytes(), _TYPES.get(ext, "application/octet-stream"))

    if root.is_dir():
        walk(root, "")
    return files


class Console:
    """``await handle(request) -> Response`` for every path under ``/console``."""

    def __init__(self, registry: Any, *, ring: ExecutionRing | None = None, counters: LiveCounters | None = None,
                 verifier: Any = None, token: str | None = None) -> None:
        self.registry = registry
        if ring is None:
            recorder = getattr(getattr(registry, "engine", None), "recorder", None)
            ring = recorder if isinstance(recorder, ExecutionRing) else None
        self.ring = ring
        self.counters = counters if counters is not None else LiveCounters()
        if not token and verifier is not None:
            # The API is protected, so the console must be too; `express serve` normally passes a
            # token (configured or generated at start), this covers servers made in code.
            token = secrets.token_urlsafe(24)
            print(f"express: console: login token {token} (set [console] token or EXPRESS_CONSOLE_TOKEN to "
                  "choose one)", file=sys.stderr, flush=True)
        self._token = token.encode() if token else None
        # the session cookie's value: derived from the token, so the cookie store never holds it
        self._session = hmac.new(self._token, b"express console session", hashlib.sha256).hexdigest().encode() \
            if self._token else None
        self._static: dict[str, tuple[bytes, str]] | None = None
        self._starts = 0

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _json(value: Any, status: int = 200) -> Response:
        return Response(status, orjson.dumps(value, default=str), "application/json",
                        [("Cache-Control", "no-store"), *_SECURITY_HEADERS])

    def _error(self, status: int, message: str) -> Response:
        return self._json({"error": message}, status)

    @property
    def login_required(self) -> bool:
        return self._token is not None

    def _authorized(self, request: Request) -> bool:
        if self._token is None or self._session is None:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self._token):
            return True
        for part in request.headers.get("cookie", "").replace(",", ";").split(";"):
            name, _, cookie = part.strip().partition("=")
            if name == SESSION_COOKIE and hmac.compare_digest(cookie.strip().encode(), self._session):
                return True
        return False

    def _unauthorized(self) -> Response:
        # Bearer, not Basic: a browser must not pop up its own dialog (and send a password with it).
        return Response(401, b'{"error":"sign in with the console token","login":true}', "application/json",
                        [("WWW-Authenticate", 'Bearer realm="express console"'), ("Cache-Control", "no-store"),
                         *_SECURITY_HEADERS])

    def login(self, request: Request) -> Response:
        if request.method != "POST":
            return self._error(405, "login accepts POST only")
        if self._token is None or self._session is None:
            return self._json({"ok": True, "required": False})
        token = None
        if len(request.body) <= MAX_LOGIN_BYTES:
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                body = None
            token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self._token):
            return self._unauthorized()
        response = self._json({"ok": True, "required": True})
        assert response.headers is not None
        response.headers.append(("Set-Cookie", f"{SESSION_COOKIE}={self._session.decode()}; Path={PREFIX}; HttpOnly; "
                                               "SameSite=Strict"))
        return response

    def logout(self, request: Request) -> Response:
        if request.method != "POST":
            return self._error(405, "logout accepts POST only")
        response = self._json({"ok": True})
        assert response.headers is not None
        response.headers.append(("Set-Cookie", f"{SESSION_COOKIE}=; Path={PREFIX}; HttpOnly; SameSite=Strict; "
                                               "Max-Age=0"))
        return response

    async def handle(self, request: Request) -> Response:
        path = request.path
        method = request.method
        if path.startswith(API):
            route = path[len(API):]
            if route == "login":
                return self.login(request)
            if route == "logout":
                return self.logout(request)
            if not self._authorized(request):
                return self._unauthorized()
            if route == "validate":
                if method != "POST":
                    return self._error(405, "validate accepts POST only")
                return await self.validate(request.body)
            if method == "POST":
                parts = [unquote(p) for p in route.split("/")]
                if len(parts) == 3 and parts[0] == "machines" and parts[2] == "executions":
                    return await self.start(parts[1], request.body)
            if method not in ("GET", "HEAD"):
                return self._error(405, f"{path} accepts GET only")
            return self.api_get(route)
        if method not in ("GET", "HEAD"):
            return self._error(405, f"{path} accepts GET only")
        if path in (PREFIX, PREFIX + "/", PREFIX + "/index.html"):
            return self.static("index.html", cache=False)
        if path.startswith(STATIC):
            return self.static(unquote(path[len(STATIC):]))
        return self._error(404, f"no console page at {path[:100]}")

    def static(self, rel: str, cache: bool = True) -> Response:
        if self._static is None:
            self._static = _static_files()
        found = self._static.get(rel)
        if found is None:
            return self._error(404, f"no console asset {rel[:100]}")
        body, content_type = found
        headers = [("Cache-Control", "public, max-age=3600" if cache else "no-cache"), *_SECURITY_HEADERS]
        return Response(200, body, content_type, headers)

    # ------------------------------------------------------------------ API
    def api_get(self, route: str) -> Response:
        parts = [unquote(p) for p in route.split("/")]
        if parts == ["machines"]:
            return self._json(self.machines())
        if parts == ["stats"]:
            return self._json(self.stats())
        if len(parts) >= 2 and parts[0] == "machines":
            name = parts[1]
            if len(parts) == 2:
                found = self.machine(name)
                return self._json(found) if found is not None else self._error(404, f"no state machine {name!r}")
            if parts[2] == "executions" and len(parts) == 3:
                return self._json(self.executions(name))
            if parts[2] == "executions" and len(parts) == 4:
                try:
                    execution_id = int(parts[3])
                except ValueError:
                    return self._error(404, "no such execution")
                found = self.ring.detail(name, execution_id) if self.ring is not None else None
                return self._json(found) if found is not None else self._error(404, "no such execution (any more)")
        return self._error(404, f"no console API route {route[:100]}")

    def machines(self) -> dict[str, Any]:
        out = []
        names = list(self.registry)
        current = set(names)
        for name in names:
            entry = self.registry.entry(name)
            if entry is None:
                continue
            machine = entry.machine
            states = machine.definition.get("States") if isinstance(machine.definition, dict) else None
            ok, failed = self.ring.counts(name) if self.ring is not None else (0, 0)
            out.append({"name": name, "arn": machine.arn, "type": entry.type, "created": entry.created,
                        "logging": _logging(entry), "states": len(states) if isinstance(states, dict) else 0,
                        "recent": {"succeeded": ok, "failed": failed}})
        if self.ring is not None:
            for name in self.ring.machines():
                if name not in current:  # deleted machines: their executions go too
                    self.ring.forget(name)
        engine = getattr(self.registry, "engine", None)
        return {"machines": out, "recording": self.ring is not None,
                "metrics": bool(getattr(engine, "metrics", False))}

    def machine(self, name: str) -> dict[str, Any] | None:
        entry = self.registry.entry(name)
        if entry is None:
            return None
        machine = entry.machine
        return {"name": name, "arn": machine.arn, "type": entry.type, "created": entry.created,
                "logging": _logging(entry), "definition": machine.definition,
                "definition_text": entry.definition_text, "graph": graph_model(machine.definition)}

    def executions(self, name: str) -> dict[str, Any]:
        if self.ring is None:
            return {"recording": False, "executions": []}
        current = self.registry.get(name)
        listed = self.ring.executions(name, MAX_EXECUTIONS_LISTED)
        return {"recording": True, "size": self.ring.size, "failed_size": self.ring.failed_size,
                "executions": listed, "current_machine": current is not None}

    def stats(self) -> dict[str, Any]:
        snapshot = self.counters.snapshot()
        if self.ring is not None:
            machines = snapshot.setdefault("machines", {})
            for name in self.ring.machines():
                machines.setdefault(name, {})["observed"] = self.ring.percentiles(name)
        return snapshot

    async def start(self, name: str, body: bytes) -> Response:
        """Runs one execution of ``name`` with the input text of ``body`` and answers its outcome."""
        entry = self.registry.entry(name)
        if entry is None:
            return self._error(404, f"no state machine {name!r}")
        try:
            request = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError as e:
            return self._error(400, f"the request is not JSON: {e.msg}")
        if not isinstance(request, dict):
            return self._error(400, "the request must be a JSON object: {\"input\": TEXT, \"name\": NAME}")
        text = request.get("input", "{}")
        if not isinstance(text, str):
            return self._error(400, "/input must be the input as JSON text")
        try:
            value = orjson.loads(text) if text.strip() else {}
        except orjson.JSONDecodeError as e:
            line, column = _line_col(text, e.pos)
            return self._json({"error": f"the input is not valid JSON: {e.msg} (line {line}, column {column})",
                               "field": "input", "line": line, "column": column}, 400)
        execution_name = request.get("name") or f"console-{uuid.uuid4().hex[:12]}"
        if not isinstance(execution_name, str) or not _EXECUTION_NAME.fullmatch(execution_name):
            return self._error(400, "/name must be 1 to 80 letters, digits, '-' or '_'")
        if self._starts >= MAX_STARTS:
            return self._error(429, f"{MAX_STARTS} executions started from the console are still running")
        self._starts += 1
        try:
            result = await entry.machine.execute(value, name=execution_name)
        finally:
            self._starts -= 1
        from express.console.ring import data_view, outcome

        error, cause = outcome(entry.machine, result)
        execution_id = self.ring.find(name, execution_name) if self.ring is not None else None
        return self._json({"name": result.name, "status": result.status, "error": error, "cause": cause,
                           "output": data_view(result.output) if result.status == "SUCCEEDED" else None,
                           "duration_ms": round(result.duration_s * 1000.0, 3),
                           "state_transitions": result.state_transitions, "id": execution_id})

    async def validate(self, body: bytes) -> Response:
        return self._json(await asyncio.to_thread(validate_text, body))


def _logging(entry: Any) -> dict[str, Any]:
    logging = entry.machine.logging
    if logging is None:
        return {"level": "OFF", "includeExecutionData": False}
    return {"level": logging.level, "includeExecutionData": logging.include_execution_data}


def validate_text(body: bytes | str) -> dict[str, Any]:
    """Definition text -> ``{"valid", "problems": [{pointer, code, message, node}], "graph"}``;
    the graph is drawn even when there are problems, as far as the definition allows."""
    from express.asl.validation import validate

    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    if not text.strip():
        return {"valid": False, "problems": [{"pointer": "", "code": "INVALID_JSON_DESCRIPTION",
                                              "message": "The definition is empty", "node": None}], "graph": None}
    try:
        definition = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        line, column = _line_col(text, e.pos)
        return {"valid": False, "graph": None, "problems": [{
            "pointer": "", "code": "INVALID_JSON_DESCRIPTION", "message": f"Invalid JSON: {e.msg}",
            "line": line, "column": column, "node": None}]}
    try:
        problems = validate(definition)
        graph = graph_model(definition)
    except RecursionError:
        return {"valid": False, "graph": None, "problems": [{
            "pointer": "", "code": "SCHEMA_VALIDATION_FAILED", "message": "The definition is nested too deeply",
            "node": None}]}
    ids = frozenset(n["id"] for n in graph["nodes"])
    return {"valid": not problems, "graph": graph, "problems": [
        {"pointer": p.pointer, "code": p.code, "message": p.message, "node": node_for_pointer(p.pointer, ids)}
        for p in problems]}


def _line_col(text: str, pos: int | None) -> tuple[int | None, int | None]:
    if pos is None:
        return None, None
    before = text[:pos]
    return before.count("\n") + 1, pos - (before.rfind("\n") + 1) + 1
