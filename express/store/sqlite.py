"""The embedded store: one SQLite file in WAL mode (standard library ``sqlite3``), shared by every
worker process of one server. Readers never block the writer and each other in WAL mode; writes
are serialized by ``BEGIN IMMEDIATE`` (``busy_timeout`` waits for another process's write).

Machine calls run on one dedicated thread per process, which owns their connection: the event loop
never waits on the file. Execution names, two writes per named execution, are written by a helper
process of each worker (express.store.sqlite_names), in group commits. Back the file up while serving
with ``sqlite3 FILE ".backup COPY"``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from express.store import MachineRecord, MachineStore, StoreError
from express.store.sqlite_names import NamesHelper

T = TypeVar("T")


class _Busy(Exception):
    """The file was locked by another process's open, recovery or last close: worth another try."""

SCHEMA_VERSION = 2  # 2: versions and aliases (a version-1 file is upgraded in place)
BUSY_TIMEOUT_MS = 10_000
_COLUMNS = ("name", "seq", "deleted", "arn", "definition", "role_arn", "type", "created", "logging", "tracing",
            "revision_id", "encryption", "refs", "tags", "versions", "last_version", "aliases")
_KEPT = 3  # the last columns: versions and aliases, which an update keeps
_ADDED_IN_2 = (("versions", "TEXT NOT NULL DEFAULT '[]'"), ("last_version", "INTEGER NOT NULL DEFAULT 0"),
               ("aliases", "TEXT NOT NULL DEFAULT '[]'"))
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM machines"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS machines (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,           -- the store-wide change sequence of the last write
    deleted INTEGER NOT NULL DEFAULT 0,  -- 1: a tombstone, kept so that readers learn of the deletion
    arn TEXT NOT NULL,
    definition TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    type TEXT NOT NULL,
    created REAL NOT NULL,
    logging TEXT,                   -- JSON, or NULL
    tracing INTEGER NOT NULL,
    revision_id TEXT,
    encryption TEXT NOT NULL,       -- JSON
    refs TEXT NOT NULL,             -- JSON: variableReferences
    tags TEXT NOT NULL,             -- JSON
    versions TEXT NOT NULL DEFAULT '[]',   -- JSON: the published versions
    last_version INTEGER NOT NULL DEFAULT 0,  -- the highest version number given
    aliases TEXT NOT NULL DEFAULT '[]'     -- JSON
);
CREATE INDEX IF NOT EXISTS machines_by_seq ON machines (seq);
CREATE TABLE IF NOT EXISTS names (      -- execution names: exactly once across restarts
    machine TEXT NOT NULL,
    name TEXT NOT NULL,
    digest BLOB NOT NULL,           -- of the canonical input
    token INTEGER NOT NULL,         -- the fencing token of the current owner
    arn TEXT NOT NULL,
    start REAL NOT NULL,
    lease_until REAL NOT NULL,      -- while running: the owner's lease (wall clock)
    answer BLOB,                    -- NULL while running
    expires REAL,                   -- once finished: the end of its retention
    PRIMARY KEY (machine, name)
);
CREATE INDEX IF NOT EXISTS names_by_expiry ON names (expires);
"""
def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _row(row: tuple[Any, ...]) -> MachineRecord:
    (name, seq, deleted, arn, definition, role_arn, type_, created, logging, tracing, revision_id, encryption,
     refs, tags, versions, last_version, aliases) = row
    return MachineRecord(name=name, arn=arn, definition=definition, role_arn=role_arn, type=type_, created=created,
                         logging=orjson.loads(logging) if logging is not None else None, tracing=bool(tracing),
                         revision_id=revision_id, encryption=orjson.loads(encryption), references=orjson.loads(refs),
                         tags=orjson.loads(tags), versions=orjson.loads(versions), last_version=last_version,
                         aliases=orjson.loads(aliases), seq=seq, deleted=bool(deleted))


def _values(r: MachineRecord) -> tuple[Any, ...]:
    return (r.arn, r.definition, r.role_arn, r.type, r.created, _json(r.logging), int(r.tracing), r.revision_id,
            _json(r.encryption), _json(r.references), _json(r.tags), _json(r.versions), r.last_version,
            _json(r.aliases))


class _StoreThread:
    """The thread that owns the machines' connection: calls run there one at a time, in order, each
    answered on its caller's loop with one ``call_soon_threadsafe``."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        # a daemon: a store never closed must not hold the interpreter's exit (SQLite survives that)
        self._thread = threading.Thread(target=self._serve, name="express-state", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """``fn(*args)`` on the thread."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, fn, args))
        return future

    def stop(self) -> None:
        """No more calls: the thread ends once the queued ones are done."""
        self._queue.put(None)

    def join(self) -> None:
        self._thread.join()

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, future, fn, args = item
            try:
                result, error = fn(*args), None
            except BaseException as e:
                result, error = None, e
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # that loop is closed: nobody waits for the answer
                pass


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SqliteMachineStore(MachineStore):
    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self.description = f"sqlite:///{self.path.resolve()}"
        self._thread: _StoreThread | None = None
        self._db: sqlite3.Connection | None = None  # used only on the store's thread
        # execution names: written by a helper process, in group commits (express.store.sqlite_names)
        self._names = NamesHelper(str(self.path), self.description, BUSY_TIMEOUT_MS)

    # ------------------------------------------------------------------ the store's thread
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            raise StoreError(f"{self.description}: the store is not open")
        try:
            result: T = await self._thread.call(fn, *args)
            return result
        except sqlite3.Error as e:
            raise StoreError(f"{self.description}: {type(e).__name__}: {e}") from None

    def _connect(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot use WAL mode (got {mode})")
            db.execute("PRAGMA synchronous = FULL")  # an acknowledged Create survives a power cut too
            db.execute("BEGIN IMMEDIATE")  # one process creates or upgrades the schema, the others see it done
            try:
                for statement in _SCHEMA.split(";"):  # not executescript: it would commit first
                    if statement.strip():
                        db.execute(statement)
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version == 1:  # before versions and aliases: their columns, empty
                    present = {row[1] for row in db.execute("PRAGMA table_info(machines)")}
                    for column, kind in _ADDED_IN_2:
                        if column not in present:
                            db.execute(f"ALTER TABLE machines ADD COLUMN {column} {kind}")
                elif version not in (0, SCHEMA_VERSION):
                    raise StoreError(f"{self.path}: schema version {version}, this express reads {SCHEMA_VERSION}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if db is not None:
                db.close()
            if e.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise _Busy(str(e)) from None
            raise StoreError(f"[state] {self.path}: cannot open the state store: {e} (set [state] dir or "
                             "EXPRESS_STATE_DIR to a writable folder)") from None
        except (OSError, sqlite3.Error) as e:
            if db is not None:
                db.close()
            raise StoreError(f"[state] {self.path}: cannot open the state store: {e} (set [state] dir or "
                             "EXPRESS_STATE_DIR to a writable folder)") from None
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _write(self, fn: Callable[[sqlite3.Connection, int], T]) -> T:
        """``fn(db, next_seq)`` inside one write transaction."""
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM machines").fetchone()[0]
            result = fn(db, seq)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _get(self, name: str) -> MachineRecord | None:
        assert self._db is not None
        row = self._db.execute(_SELECT + " WHERE name = ? AND deleted = 0", (name,)).fetchone()
        return _row(row) if row is not None else None

    def _create(self, record: MachineRecord) -> tuple[MachineRecord, bool]:
        def write(db: sqlite3.Connection, seq: int) -> tuple[MachineRecord, bool]:
            existing = self._get(record.name)
            if existing is not None:
                return existing, False
            db.execute("INSERT OR REPLACE INTO machines (" + ", ".join(_COLUMNS) + ") VALUES ("
                       + ", ".join("?" * len(_COLUMNS)) + ")", (record.name, seq, 0, *_values(record)))
            return _replace(record, seq), True

        return self._write(write)

    def _update(self, record: MachineRecord) -> MachineRecord | None:
        def write(db: sqlite3.Connection, seq: int) -> MachineRecord | None:
            cursor = db.execute("UPDATE machines SET seq = ?, " + ", ".join(f"{c} = ?" for c in _COLUMNS[3:-_KEPT])
                                + " WHERE name = ? AND deleted = 0", (seq, *_values(record)[:-_KEPT], record.name))
            return self._get(record.name) if cursor.rowcount else None

        return self._write(write)

    def _modify(self, name: str, change: Callable[[MachineRecord], MachineRecord]) -> MachineRecord | None:
        def write(db: sqlite3.Connection, seq: int) -> MachineRecord | None:
            current = self._get(name)
            if current is None:
                return None
            new = change(current)
            db.execute("UPDATE machines SET seq = ?, " + ", ".join(f"{c} = ?" for c in _COLUMNS[3:])
                       + " WHERE name = ? AND deleted = 0", (seq, *_values(new), name))
            return _replace(new, seq)

        return self._write(write)

    def _delete(self, name: str) -> int | None:
        def write(db: sqlite3.Connection, seq: int) -> int | None:
            # the definition and the rest are kept in the tombstone: harmless, and handy to recover from
            cursor = db.execute("UPDATE machines SET seq = ?, deleted = 1 WHERE name = ? AND deleted = 0", (seq, name))
            return seq if cursor.rowcount else None

        return self._write(write)

    def _retag(self, name: str, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]
               ) -> MachineRecord | None:
        def write(db: sqlite3.Connection, seq: int) -> MachineRecord | None:
            current = self._get(name)
            if current is None:
                return None
            tags = change(list(current.tags))
            db.execute("UPDATE machines SET seq = ?, tags = ? WHERE name = ? AND deleted = 0",
                       (seq, _json(tags), name))
            return dataclasses.replace(current, tags=tags, seq=seq)

        return self._write(write)

    def _changes(self, after: int, limit: int) -> list[MachineRecord]:
        assert self._db is not None
        rows = self._db.execute(_SELECT + " WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        return [_row(r) for r in rows]

    # ------------------------------------------------------------------ MachineStore
    async def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = _StoreThread()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
        try:
            while True:
                try:
                    await self._call(self._connect)
                    break
                except _Busy as e:
                    # SQLite answers BUSY without waiting while another process opens the file in WAL
                    # mode, recovers it, or checkpoints it as its last connection closes: try again.
                    if loop.time() >= deadline:
                        raise StoreError(f"[state] {self.path}: cannot open the state store: {e}") from None
                    await asyncio.sleep(0.05)
            await self._names.start()
        except BaseException:
            thread, self._thread = self._thread, None
            thread.stop()
            raise

    async def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        await self._names.aclose()
        try:
            await self._call(self._close)
        finally:
            self._thread = None
            thread.stop()
            await asyncio.to_thread(thread.join)

    async def create(self, record: MachineRecord) -> tuple[MachineRecord, bool]:
        return await self._call(self._create, record)

    async def update(self, record: MachineRecord) -> MachineRecord | None:
        return await self._call(self._update, record)

    async def modify(self, name: str, change: Callable[[MachineRecord], MachineRecord]) -> MachineRecord | None:
        return await self._call(self._modify, name, change)

    async def delete(self, name: str) -> int | None:
        return await self._call(self._delete, name)

    async def retag(self, name: str, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]
                    ) -> MachineRecord | None:
        return await self._call(self._retag, name, change)

    async def get(self, name: str) -> MachineRecord | None:
        return await self._call(self._get, name)

    async def changes(self, after: int, limit: int = 1000) -> list[MachineRecord]:
        return await self._call(self._changes, after, limit)


def _replace(record: MachineRecord, seq: int) -> MachineRecord:
    return dataclasses.replace(record, seq=seq, deleted=False)
