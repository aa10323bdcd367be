"""The one source of truth for state machines created over the API: a :class:`MachineStore`
shared by every worker of a server (and, with a networked store, by several servers).

Each write gives the machine's row the next value of a store-wide, monotonically increasing
change sequence; a deletion leaves a tombstone row with its own sequence, so a reader that
remembers the highest sequence it has applied learns every later change, deletions included,
with one query (:mod:`express.store.follower` does that for each worker's registry).

``[state] url`` chooses the implementation (:func:`open_store`): SQLite in ``[state] dir``
(the default, :mod:`express.store.sqlite`), ``memory:`` for none (per process, as before), and
``redis://`` (refused at start until it exists).
"""
from __future__ import annotations

import abc
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from express.serve.config import Settings

DEFAULT_FILE = "express.db"
REDIS_NOT_IMPLEMENTED = ("[state] url: redis:// state stores are not implemented yet; use the default SQLite store "
                         "(one server, every worker) or memory:")


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
    seq: int = 0  # set by the store on every write
    deleted: bool = False  # a tombstone: the machine was deleted at ``seq``


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
        """Replace a live machine; the stored record, or None when there is no live machine of that name."""

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
    if scheme == "redis":
        raise StoreError(REDIS_NOT_IMPLEMENTED)
    if scheme != "sqlite":
        raise StoreError(f"[state] url: unknown store {settings.state.url!r}")
    from express.store.sqlite import SqliteMachineStore

    return SqliteMachineStore(sqlite_path(settings))
