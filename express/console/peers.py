"""The console across worker processes. With ``express serve --workers N`` and HTTP on every worker
(SO_REUSEPORT), each worker keeps its own ring of recent executions; the worker that a console
request lands on asks the others for theirs and merges the answers with its own.

The questions go over the private Unix sockets of :mod:`express.http.routing` (in a directory only
the service's user can reach, mode 0700), to paths under :data:`PEER`, which only those sockets
serve (the public port answers 404 there). The console request itself was authenticated (token
or session cookie) by the worker that received it, as a forwarded API request is by the worker
that forwards it.

Bounded: a peer has :data:`PEER_TIMEOUT_S` to answer, connecting included; at most
:data:`MAX_ASKS` questions are in flight per worker (waiting for a slot counts against the timeout);
an answer takes at most :data:`MAX_ANSWER_BYTES`. A peer that does not answer in time (stopped,
restarting, overloaded) is left out, and the answer says so:
``"workers": {"answered": 1, "of": 2, "unanswered": [1], "by": 0}``; never a hang, never a 5xx.

Ids: a worker's ring numbers its executions 1, 2, ...; the console hands out ``local * count +
worker``, so an id names the worker that holds the execution, and its detail is asked of that
worker alone. With one worker there are no peers and the ids are the ring's own.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import orjson

from express.console.ring import nearest_rank
from express.http.response_parser import ResponseError, ResponseParser
from express.http.routing import FORWARDED_HEADER, socket_path

PEER = "/console/peer/"
PEER_TIMEOUT_S = 2.0
MAX_ASKS = 32  # questions to other workers in flight, per worker
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# Durations a worker sends for the merged percentiles, all machines together: beyond, each
# machine's window is thinned to evenly spaced order statistics, each standing for several values.
MAX_DURATIONS_SENT = 100_000
_MIN_PER_MACHINE = 32


class PeerError(Exception):
    pass


class Peers:
    """The other workers of this one (``index`` of ``count``), reached through ``directory``."""

    def __init__(self, index: int, count: int, directory: str, *, timeout_s: float = PEER_TIMEOUT_S,
                 max_asks: int = MAX_ASKS) -> None:
        if not 0 <= index < count:
            raise ValueError(f"worker index {index} is not below the worker count {count}")
        self.index = index
        self.count = count
        self.directory = directory
        self.timeout_s = timeout_s
        self.others = [i for i in range(count) if i != index]
        self._slots = asyncio.Semaphore(max_asks)

    @classmethod
    def of(cls, router: Any, **kw: Any) -> Peers | None:
        """Those of a :class:`express.http.routing.NameRouter`; ``None`` without one or alone."""
        if router is None or router.count < 2:
            return None
        return cls(router.index, router.count, router.directory, **kw)

    # ------------------------------------------------------------------ ids
    def global_id(self, local: int) -> int:
        return local * self.count + self.index

    def locate(self, global_id: int) -> tuple[int, int]:
        """(worker, the id in its ring)."""
        return global_id % self.count, global_id // self.count

    # ------------------------------------------------------------------ asking
    async def ask(self, worker: int, path: str) -> tuple[int, Any]:
        """``GET path`` of worker ``worker``: (status, JSON body); :class:`PeerError` when it does
        not answer within the timeout or answers something unreadable."""
        request = (f"GET {path} HTTP/1.1\r\nhost: express-worker\r\nconnection: close\r\n"
                   f"{FORWARDED_HEADER}: 1\r\n\r\n").encode("latin-1")
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._slots:
                    answer = await _exchange(socket_path(self.directory, worker), request)
        except TimeoutError:
            raise PeerError(f"worker {worker} did not answer within {self.timeout_s:g} s") from None
        except (OSError, ResponseError) as e:
            raise PeerError(f"worker {worker} is not reachable: {e}") from None
        try:
            return answer.status, orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise PeerError(f"worker {worker} answered {answer.status} without JSON") from None

    async def ask_all(self, path: str) -> tuple[list[Any], list[int]]:
        """The JSON answers (200) of every other worker to ``GET path``, and the workers that gave none."""
        outcomes = await asyncio.gather(*(self.ask(i, path) for i in self.others), return_exceptions=True)
        answers: list[Any] = []
        unanswered: list[int] = []
        for worker, outcome in zip(self.others, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                if not isinstance(outcome, PeerError):  # a defect: this worker's answer goes on without it
                    _log(f"asking worker {worker} for {path[:200]}: {type(outcome).__name__}: {outcome}")
                unanswered.append(worker)
            elif outcome[0] == 200 and isinstance(outcome[1], dict):
                answers.append(outcome[1])
            else:
                unanswered.append(worker)
        return answers, unanswered

    def report(self, unanswered: list[int]) -> dict[str, Any]:
        """The ``workers`` field: how many answered (this one included) of how many, and which one
        this is (``by``)."""
        out: dict[str, Any] = {"answered": self.count - len(unanswered), "of": self.count, "by": self.index}
        if unanswered:
            out["unanswered"] = sorted(unanswered)
        return out


def _log(message: str) -> None:
    from express.observe.logs import emit_message

    emit_message("console", message)


async def _exchange(path: str, request: bytes) -> Any:
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(request)
        parser = ResponseParser(MAX_ANSWER_BYTES)
        while True:
            data = await reader.read(256 * 1024)
            done = parser.feed(data) if data else parser.feed_eof()
            if done:
                return done[0]
            if not data:
                raise ResponseError("the connection was closed without an answer")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def path(*parts: str, **query: str) -> str:
    """A peer path, its parts quoted."""
    out = PEER + "/".join(quote(p, safe="") for p in parts)
    pairs = [f"{k}={quote(v, safe='')}" for k, v in query.items() if v]
    return out + ("?" + "&".join(pairs) if pairs else "")


# ---------------------------------------------------------------------- merging
def newest_first(lists: Iterable[list[dict[str, Any]]], limit: int) -> list[dict[str, Any]]:
    """Execution summaries of several workers, newest end first, the limit applied after merging
    (each worker sent at most ``limit``, its newest: the merged newest are among them)."""
    merged = [s for listed in lists for s in listed]
    merged.sort(key=lambda s: (s.get("stop_time") or 0.0, s.get("start_time") or 0.0), reverse=True)
    return merged[:limit]


def durations_to_send(windows: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Each machine's sorted window, thinned when all of them together would exceed
    :data:`MAX_DURATIONS_SENT`: ``{"n": how many observed, "values": sorted durations}``."""
    cap = max(_MIN_PER_MACHINE, MAX_DURATIONS_SENT // max(1, len(windows)))
    out: dict[str, dict[str, Any]] = {}
    for name, window in windows.items():
        n = len(window)
        values = window if n <= cap else [window[min(n - 1, (2 * i + 1) * n // (2 * cap))] for i in range(cap)]
        out[name] = {"n": n, "values": [round(v, 6) for v in values]}
    return out


def merged_percentiles(samples: list[dict[str, Any]], quantiles: Iterable[float]) -> dict[str, Any]:
    """p50/p90/... over the union of several workers' windows (each ``{"n", "values"}``): by nearest
    rank, as one worker's, when every window came whole; weighted by what a kept value stands
    for when one was thinned."""
    total = sum(int(s["n"]) for s in samples)
    out: dict[str, Any] = {"observed": total}
    whole = all(len(s["values"]) == s["n"] for s in samples)
    if whole:
        ordered = sorted(v for s in samples for v in s["values"])
        for q in quantiles:
            out[f"p{round(q * 100)}_s"] = nearest_rank(ordered, q)
        return out
    weighted = sorted((v, s["n"] / len(s["values"])) for s in samples if s["values"] for v in s["values"])
    for q in quantiles:
        target, seen, found = q * total, 0.0, None
        for value, weight in weighted:
            seen += weight
            found = value
            if seen >= target - 1e-9:
                break
        out[f"p{round(q * 100)}_s"] = found
    return out
