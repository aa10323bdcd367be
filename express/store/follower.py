"""Keeps one process's registry equal to the store: at start every live machine is compiled in;
then an owned task polls the store's change sequence every ``interval_s`` (150 ms) and applies
what changed, so a change made through another worker is served here within
``interval_s`` plus one query and one compile (documented bound: 1 s). Control-plane reads
(Describe, List, and any call naming a machine this process does not know) call
:meth:`MachineFollower.catch_up` first, which sees every change committed before it was called.

Machines of the config folder are never replaced or removed by the store (the files are their
source); a stored machine of the same name is skipped, with a warning at start.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from express.asl.errors import DefinitionError
from express.engine.machine import Machine
from express.serve.background import cancel_and_wait
from express.serve.registry import Entry, Registry
from express.store import MachineRecord, MachineStore, StoreError

POLL_INTERVAL_S = 0.15
PROPAGATION_BOUND_S = 1.0  # what the README and the tests promise for the other workers


def entry_from_record(record: MachineRecord, machine: Machine) -> Entry:
    return Entry(machine, record.definition, record.created, role_arn=record.role_arn, logging=record.logging,
                 type=record.type, tracing=record.tracing, revision_id=record.revision_id, tags=list(record.tags),
                 encryption=dict(record.encryption), references={k: list(v) for k, v in record.references.items()},
                 references_of=record.definition, seq=record.seq,
                 versions={v["version"]: v for v in record.versions}, last_version=record.last_version,
                 aliases={a["name"]: a for a in record.aliases})


class MachineFollower:
    """Owns the polling task (start/stop idempotent)."""

    def __init__(self, store: MachineStore, registry: Registry, *, interval_s: float = POLL_INTERVAL_S,
                 log: Callable[[str], None] = print) -> None:
        self.store = store
        self.registry = registry
        self.interval_s = interval_s
        self.log = log
        self.applied = 0  # the highest change sequence applied
        self._lock = asyncio.Lock()
        self._polls = 0  # polls begun
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._shadowed: set[str] = set()  # stored names a config file overrides (warned about once)
        self._failed: dict[str, int] = {}  # name -> seq that did not compile here (warned about once)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self.catch_up()
        self._task = asyncio.get_running_loop().create_task(self._poll_forever(), name="express-state-follower")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def catch_up(self) -> None:
        """Apply every change committed before this call."""
        ticket = self._polls
        async with self._lock:
            if self._polls > ticket:
                return  # a poll began after the call and has finished: it saw what we must see
            self._polls += 1
            while True:
                changes = await self.store.changes(self.applied)
                for record in changes:
                    await self._apply(record)
                    self.applied = max(self.applied, record.seq)
                if len(changes) < 1000:
                    return

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.catch_up()
            except StoreError as e:  # e.g. the disk is full: keep serving what we have, say why
                self.log(f"state: cannot read the store: {e}")

    async def _apply(self, record: MachineRecord) -> None:
        registry = self.registry
        current = registry.entry(record.name)
        if current is not None and current.from_config:
            if record.name not in self._shadowed and not record.deleted:
                self._shadowed.add(record.name)
                self.log(f"state: WARNING: machine {record.name!r} of the store is shadowed by the file in "
                         f"{registry.settings.machines_dir if registry.settings else 'the machines folder'}")
            return
        if current is not None and current.seq >= record.seq:
            return  # this process made (or already applied) that change
        if record.deleted:
            if current is not None:
                registry.delete(record.name)
            return
        try:
            if current is not None and current.definition_text == record.definition \
                    and current.logging == record.logging:
                machine = current.machine  # e.g. only the tags changed: nothing to compile
            else:
                machine = await registry.compile_async(record.definition, record.name, record.logging)
        except DefinitionError as e:
            # compiled where it was created, so only a different [functions] setup gets here
            if self._failed.get(record.name) != record.seq:
                self._failed[record.name] = record.seq
                self.log(f"state: machine {record.name!r} (change {record.seq}) does not compile here: "
                         + "; ".join(str(p) for p in e.problems))
            return
        current = registry.entry(record.name)  # the compile may have awaited
        if current is not None and (current.from_config or current.seq >= record.seq):
            return
        registry.install(entry_from_record(record, machine), record.name)
