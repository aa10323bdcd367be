"""The one source of truth for state machines created over the API: a :class:`MachineStore`
shared by every worker of a server (and, with a networked store, by several servers).

Each write gives the machine's row the next value of a store-wide, monotonically increasing
change sequence; a deletion leaves a tombstone row with its own sequence, so a reader that
remembers the highest sequence it has applied learns every later change, deletions included,
with one query (:mod:`express.store.follower` does that for each worker's registry).

``[state] url`` chooses the implementation (:func:`open_store`): SQLite in ``[state] dir``
(the default, :mod:`express.store.sqlite`), ``redis://`` (or ``rediss://``, ``valkey://``) for Redis or
Valkey shared by several servers (:mod:`express.store.redis`), and ``memory:`` for none (per process).
"""
from __future__ import annotations

import abc
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from express.serve.config import Settings

DEFAULT_FILE = "express.db"


class StoreError(Exception):
    """The store cannot be opened or used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class MachineRecord:
    """A state machine as stored: everything DescribeStateMachine reports, plus its change sequence."""

    name: str
    arn: str
    definition: str
    role_arn: str
    type: str = "EXPRESS"
    created: float = 0.0
    logging: dict[str, Any] | None = None
    tracing: bool = False
    revision_id: str | None = None
    encryption: dict[str, Any] = field(default_factory=lambda: {"type": "AWS_OWNED_KEY"})
    # state name -> variable names (DescribeStateMachine's variableReferences)
    references: dict[str, list[str]] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)
    # published versions (oldest first; each an immutable snapshot, see express.http.versions), the
    # highest version number ever given (numbers are never reused), and the aliases routing to them
    versions: list[dict[str, Any]] = field(default_factory=list)
    last_version: int = 0
    aliases: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0  # set by the store on every write
    deleted: bool = False  # a tombstone: the machine was deleted at ``seq``


@dataclass(frozen=True, slots=True)
class NameClaim:
    """What the store answers a request that claims an execution name (see :meth:`MachineStore.claim_name`).

    ``token > 0``: the caller owns the name now and runs the execution; the token fences its writes (an
    owner whose lease expired, e.g. a paused process, holds a smaller one than its successor and cannot
    write). Otherwise: ``conflict`` (the name is known with another input), ``answer`` (the finished
    execution's answer), or neither (it runs under another owner's lease: wait and claim again)."""

    token: int = 0
    execution_arn: str = ""
    start_date: float = 0.0
    answer: bytes | None = None
    conflict: bool = False


class MachineStore(abc.ABC):
    """Durable machines with a change sequence. Every method is safe to await from the event loop
    (implementations do their I/O elsewhere); ``open``/``close`` are idempotent."""

    description: str = ""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def create(self, record: MachineRecord) -> tuple[MachineRecord, bool]:
        """Store a new machine; (the stored record, True), or (the live machine of that name, False)
        when there is one already (nothing is written then)."""

    @abc.abstractmethod
    async def update(self, record: MachineRecord) -> MachineRecord | None:
        """Replace a live machine, keeping its stored versions and aliases; the stored record, or None
        when there is no live machine of that name."""

    @abc.abstractmethod
    async def modify(self, name: str, change: Callable[[MachineRecord], MachineRecord]) -> MachineRecord | None:
        """Replace a live machine's record by ``change(its record)``, atomically (two workers changing
        it at once both count: ``change`` may be called again with the newer record); the stored
        record, or None when there is no live machine of that name. An exception raised by
        ``change`` writes nothing and propagates."""

    @abc.abstractmethod
    async def delete(self, name: str) -> int | None:
        """Leave a tombstone; its sequence, or None when there was no live machine of that name."""

    @abc.abstractmethod
    async def retag(self, name: str, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]
                    ) -> MachineRecord | None:
        """Replace a live machine's tags by ``change(its tags)``, atomically (two workers tagging at
        once both count); the stored record, or None when there is no live machine of that name.
        An exception raised by ``change`` writes nothing and propagates."""

    @abc.abstractmethod
    async def get(self, name: str) -> MachineRecord | None:
        """The live machine of that name, or None."""

    @abc.abstractmethod
    async def changes(self, after: int, limit: int = 1000) -> list[MachineRecord]:
        """Rows written after sequence ``after`` (tombstones included), in sequence order."""

    # ------------------------------------------------------------------ execution names (exactly once)
    # Name calls are written in group commits: an implementation sets ``self._names`` to an object whose
    # ``await call(op, *args)`` queues ("claim_name" | "finish_name" | "release_name", arguments) and
    # whose ``aclose()`` writes what is queued; each batch applies its calls in order, atomically each
    # (Redis: express.store.batching's Batcher; SQLite: express.store.sqlite_names's helper process).
    _names: Any

    async def claim_name(self, machine: str, name: str, digest: bytes, execution_arn: str, start_date: float,
                         lease_s: float) -> NameClaim:
        """Claim ``machine``/``name`` for an execution of the input with ``digest``, atomically: the
        first claim, or one after the holder's lease (``lease_s`` from its claim, by the store's
        clock) ran out, owns it (a new fencing token; the name keeps its first execution ARN)."""
        claim: NameClaim = await self._names.call("claim_name", machine, name, digest, execution_arn, start_date,
                                                  lease_s)
        return claim

    async def finish_name(self, machine: str, name: str, token: int, answer: bytes, retention_s: float) -> bool:
        """Store the answer of the owner holding ``token``, kept ``retention_s``; False (nothing
        written) when that token no longer owns the name."""
        return bool(await self._names.call("finish_name", machine, name, token, answer, retention_s))

    async def release_name(self, machine: str, name: str, token: int) -> None:
        """The owner holding ``token`` gives up without an answer: forget the name, so a retry runs it."""
        await self._names.call("release_name", machine, name, token)


def sqlite_path(settings: Settings) -> pathlib.Path:
    """The SQLite file ``[state] url`` names: ``sqlite:///ABSOLUTE/PATH.db``, ``sqlite:NAME.db``
    (relative to ``[state] dir``) or, by default, ``express.db`` in ``[state] dir``."""
    url = settings.state.url
    rest = url[len("sqlite:"):] if url.startswith("sqlite:") else ""
    if rest.startswith("//"):
        rest = rest[2:]  # sqlite:///abs/path.db -> /abs/path.db
        if not rest.startswith("/"):
            raise StoreError(f"[state] url: expected sqlite:///ABSOLUTE/PATH.db or sqlite:NAME.db, got {url!r}")
        return pathlib.Path(rest)
    return settings.state_dir / (rest or DEFAULT_FILE)


def open_store(settings: Settings) -> MachineStore | None:
    """The store ``[state] url`` chooses (not opened yet), None for ``memory:``; StoreError when
    the URL names one that is not available."""
    scheme = settings.state.url.partition(":")[0] if settings.state.url else "sqlite"
    if scheme == "memory":
        return None
    if scheme in ("redis", "rediss", "valkey", "valkeys"):
        from express.store.redis import RedisMachineStore

        return RedisMachineStore(settings.state.url.replace("valkey", "redis", 1))
    if scheme != "sqlite":
        raise StoreError(f"[state] url: unknown store {settings.state.url!r}")
    from express.store.sqlite import SqliteMachineStore

    return SqliteMachineStore(sqlite_path(settings))
