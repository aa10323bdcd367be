"""Execution names in the SQLite store, written by a helper process of each worker.

A named StartSyncExecution makes two writes (the claim, then the answer). Made from a thread of the
worker, every SQLite call there hands the GIL back and forth with the event loop's thread, and that
handover, not SQLite, cost the most: the worker served durable names at half the rate of names kept in
memory. So each worker starts ``python -m express.store.sqlite_names FILE`` and talks to it over a
pipe: the loop sends the name calls of one turn as one frame (a 4-byte length, then a pickle: a
private pipe between a process and its own child), the helper writes every frame it has read in one
transaction (a group commit) and answers each frame in order.

The helper ends when its pipe closes, so a worker that dies (SIGKILL included) takes it along; one
that dies on its own fails the calls in flight with StoreError (the API answers 503, SDKs retry) and
the next call starts a new one.
"""
from __future__ import annotations

import asyncio
import collections
import os
import pickle
import signal
import sqlite3
import struct
import sys
import threading
import time
from typing import Any, cast

from express.store import NameClaim, StoreError
from express.store.batching import MAX_BATCH, Call

CHECKPOINT_EVERY_S = 0.1  # the WAL is copied into the file this often (SQLite's own default: every 1000 pages)
# The WAL starts over only when a write transaction begins with every frame already copied into the
# file. Under steady load the helper is always inside a transaction when the checkpoint thread finishes,
# and its commit adds frames before its next one begins: the WAL never started over, growing ~9 MB a
# second at 2,000 names/s, without bound, and so did the index every page read searches. Past this many
# frames (64 MiB of 4 KiB pages) the helper itself, between two transactions, copies the short tail the
# thread left (a RESTART checkpoint) so that its next transaction starts the WAL over; it does not wait
# for another writer or a reader (it tries again after the next frame).
RESTART_AFTER_FRAMES = 16384
PURGE_EVERY_S = 60.0  # expired names are deleted at most this often (a claim checks its own row anyway)
# Many-row statements (see NamesSql._distinct) in a few fixed sizes, so that a handful of prepared
# statements serve every batch: 37 rows are 16 + 16 + 4 + 1.
_MANY_SIZES = (64, 16, 4, 1)
_CLAIM_MANY = {size: "INSERT INTO names (machine, name, digest, token, arn, start, lease_until) VALUES "
               + ", ".join(["(?, ?, ?, 1, ?, ?, ?)"] * size) + " ON CONFLICT DO NOTHING RETURNING machine, name"
               for size in _MANY_SIZES}
_FINISH_MANY = {size: "UPDATE names SET answer = v.column4, expires = v.column5, lease_until = 0 FROM (VALUES "
                + ", ".join(["(?, ?, ?, ?, ?)"] * size) + ") AS v WHERE names.machine = v.column1 AND "
                "names.name = v.column2 AND names.token = v.column3 AND names.answer IS NULL "
                "RETURNING names.machine, names.name" for size in _MANY_SIZES}
_LENGTH = struct.Struct(">I")
# A claim crosses the pipe as NameClaim's fields (token, execution_arn, start_date, answer, conflict):
# a tuple pickles in a fraction of a dataclass's time.
ClaimFields = tuple[int, str, float, bytes | None, bool]


# ---------------------------------------------------------------------- in the helper: the SQL
class NamesSql:
    """The name calls on one connection (synchronous = NORMAL: in WAL mode a commit survives a crash of
    any process, SIGKILL included, not a power cut, and costs no fsync)."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.description = f"sqlite:///{path}"
        self.db = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
        self.db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        self.db.execute("PRAGMA synchronous = NORMAL")
        # Checkpoints (copying the WAL into the file, with its fsyncs) run on a thread of their own,
        # not inside a name's commit: a commit stalled behind one held every name waiting for it.
        self.db.execute("PRAGMA wal_autocheckpoint = 0")
        self._busy_timeout_ms = busy_timeout_ms
        self.wal_frames = 0  # the WAL's length at the checkpoint thread's last pass
        self._purged = 0.0
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint, args=(path, busy_timeout_ms),
                                              name="express-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint(self, path: str, busy_timeout_ms: int) -> None:
        db = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous = NORMAL")
        file = os.open(path, os.O_RDONLY)
        try:
            while not self._stop.wait(CHECKPOINT_EVERY_S):
                try:
                    frames = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                    if frames >= RESTART_AFTER_FRAMES:
                        # A PASSIVE checkpoint that never completes never syncs the file it copied into:
                        # flushed here, so that the helper's RESTART has only its short tail to sync.
                        os.fsync(file)
                        # and what came during that flush, copied now rather than by the RESTART
                        frames = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                    self.wal_frames = frames
                except (sqlite3.Error, OSError) as e:  # busy with another checkpoint, or the flush failed: the next pass
                    print(f"express: state: checkpoint of {path}: {e}", file=sys.stderr, flush=True)
        finally:
            os.close(file)
            db.close()

    def restart_wal(self) -> None:
        """Between two transactions, once the WAL is long: copy what is left of it and have the next
        transaction start it over (see RESTART_AFTER_FRAMES); at once busy if another connection
        writes or reads the WAL, and then tried again later."""
        if self.wal_frames < RESTART_AFTER_FRAMES:
            return
        db = self.db
        try:
            db.execute("PRAGMA busy_timeout = 0")
            busy = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
        except sqlite3.Error:
            busy = 1
        finally:
            db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        if not busy:
            self.wal_frames = 0

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join()
        self.db.close()

    def batch(self, calls: list[Call]) -> list[Any]:
        """The calls, in one write transaction; each call's result, or the StoreError it raised."""
        db = self.db
        now = time.time()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            return [self._error(e)] * len(calls)
        try:
            if now - self._purged > PURGE_EVERY_S:
                db.execute("DELETE FROM names WHERE expires IS NOT NULL AND expires <= ?", (now,))
                self._purged = now
            if len({(args[0], args[1]) for _, args in calls}) == len(calls):
                results = self._distinct(now, calls)
            else:  # one name twice (a duplicate, or a claim beside a finish): strictly in order
                results = [self._one(now, op, args) for op, args in calls]
            db.execute("COMMIT")
        except sqlite3.Error as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            return [self._error(e)] * len(calls)
        return results

    def _error(self, e: sqlite3.Error) -> StoreError:
        return StoreError(f"{self.description}: {type(e).__name__}: {e}")

    def _one(self, now: float, op: str, args: tuple[Any, ...]) -> Any:
        try:
            return getattr(self, "_" + op)(now, *args)
        except sqlite3.Error as e:
            return self._error(e)

    def _distinct(self, now: float, calls: list[Call]) -> list[Any]:
        """Calls on distinct names, whose order then does not matter: new names are claimed and answers
        written with a few many-row statements rather than one statement per call."""
        results: list[Any] = [None] * len(calls)
        claims = [i for i, (op, _) in enumerate(calls) if op == "claim_name"]
        finishes = [i for i, (op, _) in enumerate(calls) if op == "finish_name"]
        claimed = self._many(_CLAIM_MANY, [(m, n, digest, arn, start, now + lease)
                                           for m, n, digest, arn, start, lease in (calls[i][1] for i in claims)])
        answered = self._many(_FINISH_MANY, [(m, n, token, answer, now + retention)
                                             for m, n, token, answer, retention in (calls[i][1] for i in finishes)])
        for i in claims:
            machine, name, _, arn, start, _ = calls[i][1]
            if (machine, name) in claimed:
                results[i] = (1, arn, start, None, False)
            else:  # known already (finished, running elsewhere, expired, another input): the row decides
                results[i] = self._one(now, *calls[i])
        for i in finishes:
            results[i] = (calls[i][1][0], calls[i][1][1]) in answered
        for i, (op, args) in enumerate(calls):
            if op not in ("claim_name", "finish_name"):
                results[i] = self._one(now, op, args)
        return results

    def _many(self, statement: dict[int, str], rows: list[tuple[Any, ...]]) -> set[tuple[str, str]]:
        """``statement`` over ``rows`` in chunks of the fixed sizes; the (machine, name) of each row it
        returned."""
        done: set[tuple[str, str]] = set()
        at = 0
        for size in _MANY_SIZES:
            sql = statement[size]
            while len(rows) - at >= size:
                done.update(self.db.execute(sql, [value for row in rows[at:at + size] for value in row]).fetchall())
                at += size
        return done

    def _claim_name(self, now: float, machine: str, name: str, digest: bytes, arn: str, start: float,
                    lease_s: float) -> ClaimFields:
        db = self.db
        row = db.execute("SELECT digest, token, arn, start, lease_until, answer, expires FROM names "
                         "WHERE machine = ? AND name = ?", (machine, name)).fetchone()
        if row is not None and row[6] is not None and row[6] <= now:
            row = None  # its retention is over: a new execution of that name
        if row is None:
            db.execute("INSERT OR REPLACE INTO names (machine, name, digest, token, arn, start, lease_until) "
                       "VALUES (?, ?, ?, 1, ?, ?, ?)", (machine, name, digest, arn, start, now + lease_s))
            return (1, arn, start, None, False)
        if bytes(row[0]) != digest:
            return (0, row[2], row[3], None, True)
        if row[5] is not None:
            return (0, row[2], row[3], bytes(row[5]), False)
        if row[4] > now:
            return (0, row[2], row[3], None, False)
        # the owner's lease ran out (it died or stalled): the name passes on, fenced
        db.execute("UPDATE names SET token = ?, lease_until = ? WHERE machine = ? AND name = ?",
                   (row[1] + 1, now + lease_s, machine, name))
        return (row[1] + 1, row[2], row[3], None, False)

    def _finish_name(self, now: float, machine: str, name: str, token: int, answer: bytes,
                     retention_s: float) -> bool:
        cursor = self.db.execute("UPDATE names SET answer = ?, expires = ?, lease_until = 0 "
                                 "WHERE machine = ? AND name = ? AND token = ? AND answer IS NULL",
                                 (answer, now + retention_s, machine, name, token))
        return cursor.rowcount == 1

    def _release_name(self, now: float, machine: str, name: str, token: int) -> None:
        self.db.execute("DELETE FROM names WHERE machine = ? AND name = ? AND token = ? AND answer IS NULL",
                        (machine, name, token))


def serve(path: str, busy_timeout_ms: int, read_fd: int = 0, write_fd: int = 1) -> None:
    """The helper's loop: read what the pipe holds, write all of its complete frames in one
    transaction, answer each frame; end at the end of the pipe."""
    # Ctrl-C reaches the whole process group and the supervisor's SIGTERM may too: the helper stays until
    # its worker, draining, has written its last names and closed the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sql = NamesSql(path, busy_timeout_ms)
    buffer = bytearray()
    while chunk := os.read(read_fd, 1 << 20):
        buffer += chunk
        frames: list[list[Call]] = []
        while len(buffer) >= 4 and len(buffer) - 4 >= (size := _LENGTH.unpack_from(buffer)[0]):
            frames.append(pickle.loads(buffer[4:4 + size]))
            del buffer[:4 + size]
        if not frames:
            continue
        results = sql.batch([call for frame in frames for call in frame])
        out = bytearray()
        at = 0
        for frame in frames:
            body = pickle.dumps(results[at:at + len(frame)], protocol=pickle.HIGHEST_PROTOCOL)
            at += len(frame)
            out += _LENGTH.pack(len(body)) + body
        view = memoryview(out)
        try:
            while view:
                view = view[os.write(write_fd, view):]
        except BrokenPipeError:  # the worker is gone: so is whoever waited for these answers
            break
        sql.restart_wal()  # after the answers: a name waits on it only if it came meanwhile
    sql.close()


# ---------------------------------------------------------------------- in the worker: the client
class NamesHelper(asyncio.SubprocessProtocol):
    """``MachineStore._names`` for SQLite: ``await call(op, *args)``; the calls made in one turn of the
    event loop go to the helper as one frame."""

    def __init__(self, path: str, description: str, busy_timeout_ms: int) -> None:
        self.path = path
        self.description = description
        self.busy_timeout_ms = busy_timeout_ms
        self._transport: asyncio.SubprocessTransport | None = None
        self._exited: asyncio.Future[None] | None = None
        self._starting: asyncio.Lock | None = None
        self._pending: list[tuple[asyncio.Future[Any], Call]] = []
        self._sent: collections.deque[list[asyncio.Future[Any]]] = collections.deque()  # frames in flight
        self._buffer = bytearray()
        self._closed = True  # until started

    async def start(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        self._exited = loop.create_future()
        self._buffer.clear()
        self._closed = False
        self._transport, _ = await loop.subprocess_exec(
            lambda: self, sys.executable, "-c", "import sys; from express.store.sqlite_names import serve; "
            "serve(sys.argv[1], int(sys.argv[2]))", self.path, str(self.busy_timeout_ms),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None)

    async def call(self, op: str, *args: Any) -> Any:
        if self._closed:
            raise StoreError(f"{self.description}: the store is not open")
        if self._transport is None:  # the helper exited: a new one
            if self._starting is None:
                self._starting = asyncio.Lock()
            async with self._starting:
                await self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._send)
        self._pending.append((future, (op, args)))
        if len(self._pending) >= MAX_BATCH:
            self._send()
        return await future

    def _send(self) -> None:
        if not self._pending:
            return
        calls, self._pending = self._pending, []
        transport = self._transport
        stdin = transport.get_pipe_transport(0) if transport is not None else None
        if stdin is None or stdin.is_closing():
            error = StoreError(f"{self.description}: the names helper is not running")
            for future, _ in calls:
                if not future.done():
                    future.set_exception(error)
            return
        body = pickle.dumps([call for _, call in calls], protocol=pickle.HIGHEST_PROTOCOL)
        self._sent.append([future for future, _ in calls])
        cast(asyncio.WriteTransport, stdin).write(_LENGTH.pack(len(body)) + body)  # uvloop's is no subclass

    # ------------------------------------------------------------------ asyncio.SubprocessProtocol
    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4 and len(buffer) - 4 >= (size := _LENGTH.unpack_from(buffer)[0]):
            results = pickle.loads(buffer[4:4 + size])
            del buffer[:4 + size]
            for future, result in zip(self._sent.popleft(), results, strict=True):
                if future.done():
                    continue
                if type(result) is tuple:
                    future.set_result(NameClaim(*result))
                elif isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def connection_lost(self, exc: Exception | None) -> None:
        """The helper exited and its pipes are drained (every answer it wrote has been read)."""
        transport, self._transport = self._transport, None
        status = transport.get_returncode() if transport is not None else None
        if transport is not None:
            transport.close()
        error = StoreError(f"{self.description}: the names helper exited (status {status})")
        for futures in self._sent:
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self._sent.clear()
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(None)

    async def aclose(self) -> None:
        """Send what is queued, let the helper write it, and wait for it to exit."""
        self._closed = True
        self._send()
        transport = self._transport
        if transport is None:
            return
        stdin = transport.get_pipe_transport(0)
        if stdin is not None:
            stdin.close()  # the end of its pipe: the helper ends once it has answered everything
        if self._exited is not None:
            await asyncio.shield(self._exited)
