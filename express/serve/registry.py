"""The named state machines a service runs: those in ``<config>/machines/NAME.asl.json`` at start,
plus those created over the API. With a store (:mod:`express.store`, attached by the service) the
API's machines are the store's, followed by every worker (:mod:`express.store.follower`); the
registry is each process's compiled cache of them. Without one they live in this process only."""
from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from express.asl.errors import DefinitionError
from express.engine.clock import RealClock, VirtualClock
from express.engine.history import LoggingConfig
from express.engine.machine import Engine, Machine
from express.serve.config import ConfigError, Settings

MACHINE_SUFFIX = ".asl.json"
DEFAULT_ENCRYPTION = {"type": "AWS_OWNED_KEY"}  # what AWS describes for a machine created without one
INLINE_COMPILE_BYTES = 64 * 1024  # larger definitions compile in a worker thread (unless JSONata)


@dataclass(slots=True)
class Entry:
    machine: Machine
    definition_text: str
    created: float
    role_arn: str = "arn:aws:iam::000000000000:role/express"
    logging: dict[str, Any] | None = None
    type: str = "EXPRESS"
    tracing: bool = False
    # AWS gives a machine a revision id only once an UpdateStateMachine has changed it
    revision_id: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    encryption: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ENCRYPTION))
    # DescribeStateMachine's variableReferences, and the definition text they were computed for
    references: dict[str, list[str]] = field(default_factory=dict)
    references_of: str | None = None
    # where it comes from: a file of the machines folder (never changed by the store), else the API
    from_config: bool = False
    seq: int = 0  # the store's change sequence of this version (0: not from the store)
    # published versions by number (immutable snapshots: definition, role, logging, ...), the highest
    # number ever given, and aliases by name (express.http.versions)
    versions: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_version: int = 0
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_function(spec: str, where: str, key: str) -> Callable[..., Any]:
    """``package.module:attribute`` -> the callable."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(where, key, f"expected 'package.module:function', got {spec!r}")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(where, key, f"cannot load {spec!r}: {e}") from None
    if not callable(fn):
        raise ConfigError(where, key, f"{spec!r} is not callable")
    return fn  # type: ignore[no-any-return]


class Registry:
    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self._entries: dict[str, Entry] = {}
        # (machine name, version number) -> (the version's definition, compiled once); an entry is
        # dropped when its machine no longer has that version
        self._versions: dict[tuple[str, int], tuple[str, Machine]] = {}
        # express.testing.mocking.MockConfig whose test cases executions of ``ARN#CASE`` run (serve --mock-config)
        self.mock_config: Any = None
        # express.store.MachineStore holding the API's machines, and the follower keeping this
        # registry up to date with it (both set by the service; None: machines live in memory)
        self.store: Any = None
        self.follower: Any = None
        provider = engine.integrations
        if provider is not None and getattr(provider, "machines", False) is None:
            provider.machines = self  # type: ignore[attr-defined]  # states:startExecution runs these machines
        region, account = engine.region, engine.account
        self._arn_prefix = f"arn:aws:states:{region}:{account}:stateMachine:"

    @classmethod
    def from_settings(cls, settings: Settings, *, usage_sink: Any = None, log_sink: Any = None,
                      recorder: Any = None) -> Registry:
        where = str(settings.machines_dir.parent / "express.toml")
        functions = {name: load_function(spec, where, f"functions.{name}") for name, spec in settings.functions.items()}
        clock = VirtualClock() if settings.engine.virtual_time else RealClock()
        from express.integrations import Integrations

        # this worker's service integrations: its pooled clients, its machines (states:startExecution),
        # and its Kafka producer once the service has one (integrations.kafka)
        integrations = Integrations(aws=getattr(settings, "aws", None),  # [aws]: being added to the settings
                                    connections=settings.connections)
        engine = Engine(functions=functions, clock=clock, max_duration_s=settings.engine.max_duration_s,
                        max_payload_bytes=settings.engine.max_payload_bytes, metrics=settings.metrics.enabled,
                        usage_sink=usage_sink, log_sink=log_sink, prices=settings.metering.prices(),
                        recorder=recorder, integrations=integrations)
        registry = cls(engine, settings)
        mdir = settings.machines_dir
        if mdir.is_dir():
            for path in sorted(mdir.glob("*" + MACHINE_SUFFIX)):
                name = path.name[: -len(MACHINE_SUFFIX)]
                try:
                    registry.put(name, path.read_text()).from_config = True
                except DefinitionError as e:
                    raise ConfigError(str(path), "definition", "; ".join(str(p) for p in e.problems)) from None
        for topic, machine in settings.bindings.items():
            if machine not in registry:
                raise ConfigError(where, f"bindings.{topic}", f"no machine named {machine!r} in {mdir}")
        return registry

    def logging_for(self, name: str, logging: Mapping[str, Any] | None = None) -> LoggingConfig:
        """The machine's logging: as given (API loggingConfiguration), else from the settings."""
        if logging is not None:
            return LoggingConfig.from_aws(logging)
        if self.settings is None:
            return LoggingConfig()
        level, include = self.settings.logging_for(name)
        return LoggingConfig(level, include)

    def put(self, name: str, definition: str | Mapping[str, Any], logging: Mapping[str, Any] | None = None) -> Entry:
        text = definition if isinstance(definition, str) else orjson.dumps(definition).decode()
        config = self.logging_for(name, logging)
        machine = self.engine.compile(text, name=name, logging=config)
        entry = Entry(machine, text, time.time())
        entry.logging = {"level": config.level, "includeExecutionData": config.include_execution_data}
        previous = self._entries.get(name)
        entry.from_config = previous is not None and previous.from_config  # a reloaded file stays a file's
        self.install(entry, name)
        return entry

    def put_compiled(self, name: str, machine: Machine, definition_text: str) -> Entry:
        """Install a machine compiled elsewhere (e.g. off the event loop)."""
        entry = Entry(machine, definition_text, time.time())
        self.install(entry, name)
        return entry

    def install(self, entry: Entry, name: str) -> None:
        self._entries[name] = entry
        if self._versions:
            self._drop_versions(name, entry.versions)

    def _drop_versions(self, name: str, kept: Mapping[int, Any]) -> None:
        for key in [k for k in self._versions if k[0] == name and k[1] not in kept]:
            del self._versions[key]

    def version_arn(self, name: str, number: int) -> str:
        return f"{self._arn_prefix}{name}:{number}"

    def compiled_version(self, name: str, number: int) -> Machine | None:
        """Version ``number`` of machine ``name`` if it is compiled here already (the hot path)."""
        cached = self._versions.get((name, number))
        return cached[1] if cached is not None else None

    async def version_machine(self, name: str, number: int, version: Mapping[str, Any]) -> Machine:
        """Version ``number`` (its snapshot ``version``) of machine ``name``, compiled at its first use
        (DefinitionError as compile); ``$$.StateMachine.Id`` and the answers name the version ARN."""
        text = version["definition"]
        cached = self._versions.get((name, number))
        if cached is not None and cached[0] == text:
            return cached[1]
        machine = await self.compile_async(text, name, version.get("logging"))
        machine.arn = self.version_arn(name, number)
        entry = self._entries.get(name)
        if entry is not None and number in entry.versions:  # still published once the compile is done
            self._versions[(name, number)] = (text, machine)
        return machine

    async def compile_async(self, text: str, name: str, logging: Mapping[str, Any] | None = None) -> Machine:
        """Compile, off the event loop when the definition is large (DefinitionError as compile)."""
        # jsonatapy's compiled expressions must live and die on the thread that made them (they
        # panic otherwise), so definitions that may hold JSONata always compile on the loop.
        config = self.logging_for(name, logging)
        if len(text) > INLINE_COMPILE_BYTES and "JSONata" not in text:
            return await asyncio.to_thread(self.engine.compile, text, name, config)
        return self.engine.compile(text, name, config)

    def get(self, name: str) -> Machine | None:
        entry = self._entries.get(name)
        return entry.machine if entry is not None else None

    def entry(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def machine(self, arn: str) -> Machine | None:
        """The machine ``arn`` names (``arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`` of this
        engine's region and account; not its versions and aliases), or None."""
        if not arn.startswith(self._arn_prefix):
            return None
        return self.get(arn[len(self._arn_prefix):])

    async def catch_up(self) -> bool:
        """Apply the store's committed changes (a machine made through another worker); False without
        a store or when it cannot be read."""
        if self.follower is None:
            return False
        from express.store import StoreError

        try:
            await self.follower.catch_up()
        except StoreError:
            return False
        return True

    def delete(self, name: str) -> bool:
        if self._versions:
            self._drop_versions(name, {})
        return self._entries.pop(name, None) is not None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
