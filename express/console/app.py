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

``GET .../executions?search=TEXT`` lists only the executions whose name contains TEXT (any case),
searched in everything the rings keep, before the listing's limit.

Several workers (``express serve --workers N`` with HTTP on all of them): every answer covers
all workers. The worker a request lands on asks the others over their private routing sockets
(:mod:`express.console.peers`) and merges: recent executions newest first with the limit applied
after merging, an execution's detail asked of the worker that keeps it (named by its id), recent
counts summed, observed percentiles over every worker's durations (the live counters already are
the sum over workers, from the metrics' multi-process files). Such answers carry ``"workers":
{"answered", "of"[, "unanswered": [index...]]}``: a worker that does not answer within
:data:`express.console.peers.PEER_TIMEOUT_S` is left out and named there. Execution summaries then
carry the ``worker`` that ran them. With one worker nothing is asked and the answers are as
before.

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
from urllib.parse import parse_qs, unquote

import orjson

from express.asl.limits import suspect
from express.console.graph import graph_model, node_for_pointer
from express.console.peers import (
    PEER,
    PEER_TIMEOUT_S,
    PeerError,
    Peers,
    durations_to_send,
    merged_percentiles,
    newest_first,
)
from express.console.peers import path as peer_path
from express.console.ring import PERCENTILES, ExecutionRing
from express.console.stats import LiveCounters, flush_metrics
from express.http.protocol import Request, Response

PREFIX = "/console"
API = "/console/api/"
STATIC = "/console/static/"
MAX_EXECUTIONS_LISTED = 500
MAX_SEARCH_CHARS = 200
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
    """``await handle(request) -> Response`` for every path under ``/console``; ``await
    peer(request)`` for the questions of the other workers (``router``: the server's
    :class:`express.http.routing.NameRouter`, which names them; ``None``: a single worker)."""

    def __init__(self, registry: Any, *, ring: ExecutionRing | None = None, counters: LiveCounters | None = None,
                 verifier: Any = None, token: str | None = None, router: Any = None,
                 peer_timeout_s: float = PEER_TIMEOUT_S) -> None:
        self.registry = registry
        self.peers = Peers.of(router, timeout_s=peer_timeout_s)
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
            return await self.api_get(route, request.query)
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
    async def api_get(self, route: str, query: str = "") -> Response:
        parts = [unquote(p) for p in route.split("/")]
        if parts == ["machines"]:
            return self._json(await self.machines())
        if parts == ["stats"]:
            return self._json(await self.stats())
        if len(parts) >= 2 and parts[0] == "machines":
            name = parts[1]
            if len(parts) == 2:
                found = self.machine(name)
                return self._json(found) if found is not None else self._error(404, f"no state machine {name!r}")
            if parts[2] == "executions" and len(parts) == 3:
                return self._json(await self.executions(name, _search(query)))
            if parts[2] == "executions" and len(parts) == 4:
                execution_id = _execution_id(parts[3])
                if execution_id is None:
                    return self._error(404, "no such execution")
                return await self.execution(name, execution_id)
        return self._error(404, f"no console API route {route[:100]}")

    async def machines(self) -> dict[str, Any]:
        counts: dict[str, list[int]] = {}
        peers = self.peers
        if peers is not None:
            answers, unanswered = await peers.ask_all(peer_path("counts"))
            for answer in answers:
                for name, (ok, failed) in (answer.get("counts") or {}).items():
                    total = counts.setdefault(name, [0, 0])
                    total[0] += ok
                    total[1] += failed
        out = []
        names = list(self.registry)
        for name in names:
            entry = self.registry.entry(name)
            if entry is None:
                continue
            machine = entry.machine
            states = machine.definition.get("States") if isinstance(machine.definition, dict) else None
            ok, failed = self.ring.counts(name) if self.ring is not None else (0, 0)
            if name in counts:
                ok, failed = ok + counts[name][0], failed + counts[name][1]
            out.append({"name": name, "arn": machine.arn, "type": entry.type, "created": entry.created,
                        "logging": _logging(entry), "states": len(states) if isinstance(states, dict) else 0,
                        "recent": {"succeeded": ok, "failed": failed}})
        self._forget_deleted(set(names))
        engine = getattr(self.registry, "engine", None)
        answer = {"machines": out, "recording": self.ring is not None,
                  "metrics": bool(getattr(engine, "metrics", False))}
        if peers is not None:
            answer["workers"] = peers.report(unanswered)
        return answer

    def _forget_deleted(self, current: set[str] | None = None) -> None:
        """Deleted machines: their executions go too (each worker forgets its own)."""
        if self.ring is None:
            return
        if current is None:
            current = set(self.registry)
        for name in self.ring.machines():
            if name not in current:
                self.ring.forget(name)

    def machine(self, name: str) -> dict[str, Any] | None:
        entry = self.registry.entry(name)
        if entry is None:
            return None
        machine = entry.machine
        return {"name": name, "arn": machine.arn, "type": entry.type, "created": entry.created,
                "logging": _logging(entry), "definition": machine.definition,
                "definition_text": entry.definition_text, "graph": graph_model(machine.definition)}

    async def executions(self, name: str, search: str | None = None) -> dict[str, Any]:
        if self.ring is None:
            return {"recording": False, "executions": []}
        current = self.registry.get(name)
        listed = self._own(self.ring.executions(name, MAX_EXECUTIONS_LISTED, search))
        answer = {"recording": True, "size": self.ring.size, "failed_size": self.ring.failed_size,
                  "executions": listed, "current_machine": current is not None}
        peers = self.peers
        if peers is not None:
            answers, unanswered = await peers.ask_all(peer_path("machines", name, "executions", search=search or ""))
            others = [a["executions"] for a in answers if isinstance(a.get("executions"), list)]
            answer["executions"] = newest_first([listed, *others], MAX_EXECUTIONS_LISTED)
            answer["workers"] = peers.report(unanswered)
        return answer

    def _own(self, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """This worker's summaries (or detail) with the ids the console hands out, naming the worker."""
        peers = self.peers
        if peers is not None:
            for s in listed:
                s["id"] = peers.global_id(s["id"])
                s["worker"] = peers.index
        return listed

    def _own_detail(self, name: str, execution_id: int) -> dict[str, Any] | None:
        """The detail of one of this worker's executions, by the id the console handed out."""
        if self.ring is None:
            return None
        peers = self.peers
        if peers is None:
            return self.ring.detail(name, execution_id)
        worker, local = peers.locate(execution_id)
        found = self.ring.detail(name, local) if worker == peers.index else None
        return self._own([found])[0] if found is not None else None

    async def execution(self, name: str, execution_id: int) -> Response:
        peers = self.peers
        if peers is None or self.ring is None or peers.locate(execution_id)[0] == peers.index:
            found = self._own_detail(name, execution_id)
            return self._json(found) if found is not None else self._error(404, "no such execution (any more)")
        worker = peers.locate(execution_id)[0]
        try:
            status, found = await peers.ask(worker, peer_path("machines", name, "executions", str(execution_id)))
        except PeerError as e:
            return self._json({"error": f"execution {execution_id} is kept by worker {worker}, which did not "
                                        f"answer: {e}", "workers": peers.report([worker])}, 404)
        if status != 200 or not isinstance(found, dict):
            return self._error(404, "no such execution (any more)")
        return self._json(found)

    async def stats(self) -> dict[str, Any]:
        peers = self.peers
        answers: list[Any] = []
        unanswered: list[int] = []
        if peers is not None:
            # first: the others flush their counts into the metrics files the snapshot reads
            answers, unanswered = await peers.ask_all(peer_path("stats"))
        snapshot = self.counters.snapshot()
        machines = snapshot.setdefault("machines", {})
        if peers is None:
            if self.ring is not None:
                for name in self.ring.machines():
                    machines.setdefault(name, {})["observed"] = self.ring.percentiles(name)
            return snapshot
        samples: dict[str, list[dict[str, Any]]] = {}
        if self.ring is not None:
            for name in self.ring.machines():
                window = self.ring.window(name)
                samples[name] = [{"n": len(window), "values": window}]
        for answer in answers:
            for name, sample in (answer.get("durations") or {}).items():
                samples.setdefault(name, []).append(sample)
        for name, parts in samples.items():
            machines.setdefault(name, {})["observed"] = merged_percentiles(parts, PERCENTILES)
        snapshot["workers"] = peers.report(unanswered)
        return snapshot

    async def peer(self, request: Request) -> Response:
        """Another worker's question (:mod:`express.console.peers`), served on the private routing
        socket only: this worker's own part of the answer, with the ids the console hands out."""
        if request.method not in ("GET", "HEAD"):
            return self._error(405, f"{request.path[:100]} accepts GET only")
        if not request.path.startswith(PEER):
            return self._error(404, f"no console peer route {request.path[:100]}")
        parts = [unquote(p) for p in request.path[len(PEER):].split("/")]
        ring = self.ring
        if parts == ["counts"]:
            self._forget_deleted()
            return self._json({"counts": {n: ring.counts(n) for n in ring.machines()} if ring is not None else {}})
        if parts == ["stats"]:
            flush_metrics()
            windows = {n: ring.window(n) for n in ring.machines()} if ring is not None else {}
            return self._json({"durations": durations_to_send(windows)})
        if len(parts) in (3, 4) and parts[0] == "machines" and parts[2] == "executions":
            name = parts[1]
            if len(parts) == 3:
                listed = ring.executions(name, MAX_EXECUTIONS_LISTED, _search(request.query)) \
                    if ring is not None else []
                return self._json({"executions": self._own(listed)})
            execution_id = _execution_id(parts[3])
            found = self._own_detail(name, execution_id) if execution_id is not None else None
            return self._json(found) if found is not None else self._error(404, "no such execution (any more)")
        return self._error(404, f"no console peer route {request.path[:100]}")

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
        # the input's size as given spares the engine measuring it again (not for the rare text
        # it must check itself: express.asl.limits.suspect)
        raw = text.encode("utf-8", "surrogatepass") if text.strip() else b"{}"
        try:
            result = await entry.machine.execute(value, name=execution_name,
                                                 input_size=None if suspect(raw) else len(raw))
        finally:
            self._starts -= 1
        from express.console.ring import data_view, outcome

        error, cause = outcome(entry.machine, result)
        execution_id = self.ring.find(name, execution_name) if self.ring is not None else None
        if execution_id is not None and self.peers is not None:
            execution_id = self.peers.global_id(execution_id)
        return self._json({"name": result.name, "status": result.status, "error": error, "cause": cause,
                           "output": data_view(result.output) if result.status == "SUCCEEDED" else None,
                           "duration_ms": round(result.duration_s * 1000.0, 3),
                           "state_transitions": result.state_transitions, "id": execution_id})

    async def validate(self, body: bytes) -> Response:
        return self._json(await asyncio.to_thread(validate_text, body))


def _search(query: str) -> str | None:
    """``search`` of the query string, bounded."""
    if not query:
        return None
    values = parse_qs(query).get("search")
    return values[0][:MAX_SEARCH_CHARS] if values and values[0] else None


def _execution_id(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


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
