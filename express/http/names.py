"""Exactly-once execution names: a request that carries an execution ``name`` runs at most once.

One :class:`NameTable` per server process remembers every named execution of every state machine
(key: machine name + execution name) together with a digest of its canonical input:

- the first request for a name starts the execution and publishes its answer on a future;
- a concurrent duplicate (same name, same input) awaits that future instead of running again;
- a retry after completion gets the stored answer (the very same response bytes);
- the same name with a different input is refused with ``ExecutionAlreadyExists``.

Names are remembered for ``retention_s`` after their execution finished, and at most
``max_names`` of them in at most ``max_bytes``. Every record counts its stored answer, its key
and ARN and a fixed estimate of what the record itself costs (:data:`RECORD_OVERHEAD_BYTES`),
running ones included, so that long names cannot grow the table past its bytes either. Under
pressure the table first drops expired names, then the oldest *finished* ones (counted in
``evicted_early``: a retry of such a name would run again, so the server logs it); it never
forgets a running execution: when running ones fill the slots or the bytes, a new name is
refused with ``ThrottlingException`` (:class:`NamesExhausted`) and nothing runs.

Inputs are compared as JSON values (keys sorted), so ``{"a":1, "b":2}`` and ``{"b": 2, "a": 1}``
are the same input; only a 128-bit BLAKE2b digest of the canonical form is kept.

More than one server process
----------------------------
This table is the owner of its names only inside one process. A deployment with several
processes must keep the guarantee, and no configuration may silently weaken it: a multi-process
mode must refuse to start unless one of these is configured.

1. **Route by name** (no shared state): a front router (or the first process that accepts the
   connection, forwarding over a local socket) hashes ``(machine, name)`` to one owner process,
   so every request for a name lands on the process whose table holds it. Unnamed requests go
   anywhere. A process that dies takes its names with it; the router must then stop routing to
   it (requests for its names fail until the table is rebuilt), never re-route them silently.
2. **Shared store (Redis)**: ``SET names:{machine}:{name} {digest,owner,status} NX PX retention``
   claims a name atomically; the owner runs the execution and writes the answer with
   ``SET ... XX PX retention`` plus ``PUBLISH names:{...}``; duplicates that lose the ``NX`` race
   compare digests (``ExecutionAlreadyExists`` on mismatch) and wait on the channel (or poll with
   a bounded backoff) for the stored answer. An owner that dies mid-run leaves a claim with a
   lease that expires after the 5-minute execution cap plus margin; until then duplicates get
   the same "still running" wait, after it they get an error, never a second run. The store
   must be a single primary (no asynchronous replica fail-over) or the guarantee is void.

This module implements only the single-process table.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from hashlib import blake2b
from typing import Any

import orjson

__all__ = ["NameRecord", "NameTable", "NamesExhausted", "NameConflict", "input_digest", "RECORD_OVERHEAD_BYTES"]

# What one record costs beyond its strings and answer, measured with tracemalloc on CPython 3.11
# (~270 bytes running: the record, its future, the table slot; ~100 more once finished: the
# retention order; plus the key tuple and the digest), rounded up.
RECORD_OVERHEAD_BYTES = 512


def input_digest(value: Any) -> bytes:
    """128-bit digest of a JSON value in canonical form (sorted keys)."""
    return blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


class NamesExhausted(Exception):
    """Every slot holds an execution that is still running: refuse rather than forget one."""


class NameConflict(Exception):
    """The name is known with a different input."""


class NameRecord:
    """One named execution: its identity, and the future on which its answer is published."""

    __slots__ = ("key", "digest", "execution_arn", "start_date", "done", "finished_at", "size")

    def __init__(self, key: tuple[str, str], digest: bytes, execution_arn: str, start_date: float,
                 done: asyncio.Future[bytes]) -> None:
        self.key = key
        self.digest = digest
        self.execution_arn = execution_arn
        self.start_date = start_date
        self.done = done  # result: the StartSyncExecution response body
        self.finished_at: float | None = None
        # bytes counted against the table: the overhead estimate, key and ARN, then the answer
        self.size = RECORD_OVERHEAD_BYTES + len(key[0]) + len(key[1]) + len(execution_arn)

    @property
    def running(self) -> bool:
        return self.finished_at is None


class NameTable:
    """Bounded, time-limited memory of named executions (see the module docstring)."""

    def __init__(self, retention_s: float, max_names: int, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.retention_s = float(retention_s)
        self.max_names = int(max_names)
        self.max_bytes = int(max_bytes)
        self._records: dict[tuple[str, str], NameRecord] = {}
        # Finished records in the order they finished (so also in order of expiry).
        self._finished: OrderedDict[tuple[str, str], NameRecord] = OrderedDict()
        self._running = 0
        self._bytes = 0
        self.evicted_early = 0

    def __len__(self) -> int:
        return len(self._records)

    @property
    def running(self) -> int:
        return self._running

    @property
    def stored_bytes(self) -> int:
        """Bytes counted against ``max_bytes``: every record's estimate and every stored answer."""
        return self._bytes

    def lookup(self, key: tuple[str, str], digest: bytes) -> NameRecord | None:
        """The record for ``key`` if it is known with this input; raises NameConflict if it is
        known with another one; None if it is unknown (or expired)."""
        record = self._records.get(key)
        if record is None:
            return None
        if record.finished_at is not None and time.monotonic() - record.finished_at >= self.retention_s:
            self._drop(record)
            return None
        if record.digest != digest:
            raise NameConflict()
        return record

    def claim(self, key: tuple[str, str], digest: bytes, execution_arn: str, start_date: float) -> NameRecord:
        """Register a new running execution under ``key`` (which :meth:`lookup` found unknown)."""
        self.purge()
        if self.max_names <= 0:
            raise NamesExhausted()
        size = RECORD_OVERHEAD_BYTES + len(key[0]) + len(key[1]) + len(execution_arn)
        while len(self._records) >= self.max_names or self._bytes + size > self.max_bytes:
            if not self._evict_oldest_finished():
                raise NamesExhausted()
        loop = asyncio.get_running_loop()
        record = NameRecord(key, digest, execution_arn, start_date, loop.create_future())
        self._records[key] = record
        self._running += 1
        self._bytes += record.size
        return record

    def finish(self, record: NameRecord, body: bytes) -> None:
        """Publish the answer and start the record's retention."""
        if record.finished_at is not None:
            return
        record.finished_at = time.monotonic()
        self._running -= 1
        if not record.done.done():
            record.done.set_result(body)
        if self._records.get(record.key) is not record:
            return
        if self.retention_s <= 0:
            self._drop(record)
            return
        self._finished[record.key] = record
        record.size += len(body)
        self._bytes += len(body)
        while self._bytes > self.max_bytes and self._evict_oldest_finished():
            pass

    def abandon(self, record: NameRecord, exc: BaseException) -> None:
        """The execution could not produce an answer (server error or shutdown): forget the name so
        that a retry may run it, and fail whoever is waiting."""
        if record.finished_at is None:
            record.finished_at = time.monotonic()
            self._running -= 1
        if not record.done.done():
            record.done.set_exception(exc)
            record.done.exception()  # retrieved: waiters may all be gone
        if self._records.get(record.key) is record:
            del self._records[record.key]
            self._bytes -= record.size

    def purge(self) -> int:
        """Drop every name whose retention has passed; returns how many."""
        if not self._finished:
            return 0
        limit = time.monotonic() - self.retention_s
        n = 0
        while self._finished:
            record = next(iter(self._finished.values()))
            if record.finished_at is not None and record.finished_at > limit:
                break
            self._drop(record)
            n += 1
        return n

    def _evict_oldest_finished(self) -> bool:
        if not self._finished:
            return False
        record = next(iter(self._finished.values()))
        self._drop(record)
        self.evicted_early += 1
        return True

    def _drop(self, record: NameRecord) -> None:
        if self._records.get(record.key) is record:
            del self._records[record.key]
            self._bytes -= record.size
        if self._finished.pop(record.key, None) is None and record.finished_at is None:
            self._running -= 1
