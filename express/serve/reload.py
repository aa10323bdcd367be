"""The mock config a service runs ``ARN#CASE`` executions with, and the edit-run loop of
``express serve --reload``: the machines folder and the mock config are polled (their files'
modification times and sizes, every ``interval_s``, read off the event loop); a changed file is
recompiled and replaces the running version, an invalid one is reported with the JSON pointers
of its problems while the previous version keeps serving; a deleted machine file removes the
machine. Executions already running finish on the version they started with.
"""
from __future__ import annotations

import asyncio
import os
import pathlib
from collections.abc import Callable

from express.asl.errors import DefinitionError
from express.serve.background import cancel_and_wait
from express.serve.config import ConfigError
from express.serve.registry import MACHINE_SUFFIX, Registry
from express.testing.mocking import MockConfig, MockConfigError

Signature = tuple[int, int]  # (mtime_ns, size)


def _scan(machines_dir: pathlib.Path, mock_path: pathlib.Path | None) -> dict[pathlib.Path, Signature]:
    """What the watched files look like now (blocking: runs in a thread)."""
    found: dict[pathlib.Path, Signature] = {}
    paths = list(machines_dir.glob("*" + MACHINE_SUFFIX)) if machines_dir.is_dir() else []
    if mock_path is not None:
        paths.append(mock_path)
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue  # deleted while scanning: the next scan sees it gone
        found[path] = (st.st_mtime_ns, st.st_size)
    return found


class Reloader:
    """Owns the registry's mock config and, when watching, the polling task (start/stop idempotent)."""

    def __init__(self, registry: Registry, machines_dir: str | os.PathLike[str],
                 mock_path: str | os.PathLike[str] | None = None, *, interval_s: float = 0.5,
                 log: Callable[[str], None] = print) -> None:
        self.registry = registry
        self.machines_dir = pathlib.Path(machines_dir)
        self.mock_path = pathlib.Path(mock_path) if mock_path is not None else None
        self.interval_s = interval_s
        self.log = log
        self._seen: dict[pathlib.Path, Signature] = {}
        self._from_files: set[str] = set()  # machines that came from files (a deleted file removes them)
        self._task: asyncio.Task[None] | None = None
        self._started = False

    async def start(self, watch: bool = True) -> None:
        """Load the mock config (ConfigError naming the file and the pointer when it is invalid or
        does not fit the loaded machines), then, with ``watch``, start polling."""
        if self._started:
            return
        self._started = True
        if self.mock_path is not None:
            try:
                config = await asyncio.to_thread(MockConfig.load, self.mock_path)
            except MockConfigError as e:
                raise _config_error(e) from None
            problems = self._misfits(config)
            if problems:
                raise _config_error(MockConfigError(config.source, problems))
            self._use(config)
        if watch:
            self._seen = await asyncio.to_thread(_scan, self.machines_dir, self.mock_path)
            self._from_files = {self._name(p) for p in self._seen if p != self.mock_path}
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="express-reload")
            watched = str(self.machines_dir) + (f" and {self.mock_path}" if self.mock_path is not None else "")
            self.log(f"reload: watching {watched} (every {self.interval_s:g} s)")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception as e:  # noqa: BLE001 - the loop must outlive any one bad reload
                self.log(f"reload: {type(e).__name__}: {e}")

    async def check(self) -> list[str]:
        """One poll: apply what changed since the last one; returns what was reloaded or removed."""
        seen = await asyncio.to_thread(_scan, self.machines_dir, self.mock_path)
        changed = [p for p, sig in seen.items() if self._seen.get(p) != sig]
        gone = [p for p in self._seen if p not in seen]
        self._seen = seen
        done: list[str] = []
        for path in sorted(changed):
            if path != self.mock_path and await self._machine_changed(path):
                done.append(self._name(path))
        for path in sorted(gone):
            name = self._name(path)
            if path != self.mock_path and name in self._from_files:
                self._from_files.discard(name)
                if self.registry.delete(name):
                    self.log(f"reload: {path} was deleted: the state machine '{name}' is no longer served")
                    done.append(name)
        if self.mock_path is not None and self.mock_path in changed and await self._mock_changed():
            done.append(str(self.mock_path))
        elif done and self.registry.mock_config is not None:
            for name in done:
                self._warn_misfits(self.registry.mock_config, name)
        return done

    async def _machine_changed(self, path: pathlib.Path) -> bool:
        name = self._name(path)
        try:
            text = await asyncio.to_thread(path.read_text)
        except (OSError, UnicodeDecodeError) as e:
            self.log(f"reload: {path}: cannot read: {e}")
            return False
        entry = self.registry.entry(name)
        if entry is not None and entry.definition_text == text:
            return False
        try:
            self.registry.put(name, text)
        except DefinitionError as e:
            for p in e.problems:
                self.log(f"reload: {path}: {p}")
            self.log(f"reload: {path}: " + (f"still serving the previous version of '{name}'" if entry is not None
                                            else f"'{name}' is not served until it is valid"))
            return False
        self._from_files.add(name)
        self.log(f"reload: the state machine '{name}' was {'recompiled' if entry is not None else 'added'} "
                 f"from {path}")
        return True

    async def _mock_changed(self) -> bool:
        assert self.mock_path is not None
        try:
            config = await asyncio.to_thread(MockConfig.load, self.mock_path)
            problems = self._misfits(config)
            if problems:
                raise MockConfigError(config.source, problems)
        except MockConfigError as e:
            for line in str(e).splitlines():
                self.log(f"reload: {line}")
            self.log(f"reload: {self.mock_path}: still using the previous mock config")
            return False
        self._use(config)
        return True

    def _use(self, config: MockConfig) -> None:
        self.registry.mock_config = config
        cases = sum(len(c) for c in config.machines.values())
        self.log(f"mock config {config.source}: {cases} test case(s) for {len(config.machines)} state machine(s); "
                 "run one with stateMachineArn ARN#CASE")
        for name in config.machines:
            if name not in self.registry:
                self.log(f"mock config {config.source}: no state machine '{name}' is loaded yet: its test cases run "
                         "once it is created")

    def _misfits(self, config: MockConfig) -> list[tuple[str, str]]:
        """Test cases that mock states the loaded machines do not have (or that are no Tasks)."""
        problems = []
        for name in config.machines:
            entry = self.registry.entry(name)
            if entry is not None:
                problems += config.check_machine(name, entry.machine.definition)
        return problems

    def _warn_misfits(self, config: MockConfig, name: str) -> None:
        entry = self.registry.entry(name)
        if entry is None:
            return
        for pointer, reason in config.check_machine(name, entry.machine.definition):
            self.log(f"reload: {config.source}: {pointer}: {reason} (after '{name}' changed)")

    def _name(self, path: pathlib.Path) -> str:
        return path.name[: -len(MACHINE_SUFFIX)]


def _config_error(e: MockConfigError) -> ConfigError:
    pointer, reason = e.problems[0] if e.problems else ("", str(e))
    more = "".join(f"; {p or '/'}: {r}" for p, r in e.problems[1:])
    return ConfigError(e.source, pointer or "/", reason + more)

