"""What every StepFunctions operation works with: the settings, the registry and its engine, the
execution names, the metrics, and the shared steps of resolving a state machine ARN, catching up
with the store and compiling a definition. :class:`express.http.api.StepFunctionsApi` is this with
the operations of :mod:`express.http.machines` and :mod:`express.http.executions`.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from express.asl.errors import DefinitionError
from express.engine.machine import Machine
from express.http.names import NameTable
from express.http.validation import ApiError, clip, problems_message
from express.serve.config import Settings
from express.serve.registry import Entry, Registry
from express.store import StoreError

T = TypeVar("T")


def store_unavailable(e: StoreError) -> ApiError:
    return ApiError("ServiceUnavailable", f"The state store is not available: {e}", status=503)


async def store_call(call: Awaitable[T]) -> T:
    """A store call; its failure is AWS's ServiceUnavailable (HTTP 503: SDKs retry it)."""
    try:
        return await call
    except StoreError as e:
        raise store_unavailable(e) from None


# ---------------------------------------------------------------------- metrics (cached children)
class ApiMetrics:
    def __init__(self) -> None:
        try:
            from express.observe import metrics
        except ImportError:  # prometheus_client is an optional dependency
            self.m = None
        else:
            self.m = metrics
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, operation: str, status: int) -> None:
        if self.m is not None:
            self._child(self.m.HTTP_REQUESTS, operation, str(status)).inc()

    def throttled(self, machine: str, operation: str) -> None:
        if self.m is not None:
            self._child(self.m.EXECUTIONS_THROTTLED, machine, operation).inc()


class ApiBase:
    """The state the operations share and the steps they have in common."""

    def __init__(self, settings: Settings, registry: Registry, *, spawn: Callable[[Awaitable[Any]], Any],
                 names: NameTable | None = None, kafka: Any = None, max_machines: int = 10_000,
                 max_background: int = 10_000) -> None:
        self.settings = settings
        self.registry = registry
        self.engine = registry.engine
        self.region = self.engine.region
        self.account = self.engine.account
        self.kafka = kafka
        # StartExecution through Kafka for machines bound to a topic (express.kafka.starts), set by the service
        self.kafka_starts: Any = None
        self.names = names if names is not None else NameTable(settings.http.name_retention_s,
                                                               settings.http.max_names)
        self._spawn = spawn
        self.max_machines = max_machines
        self.max_background = max_background
        self.background = 0
        # StartSyncExecution runs in progress here; beyond the bound they are refused at once
        # rather than queued (each one holds its input, its state and a connection)
        self.max_concurrent_sync = settings.http.max_concurrent_sync
        self.sync_running = 0
        self.metrics = ApiMetrics()
        self._arn_prefix = f"arn:aws:states:{self.region}:{self.account}:stateMachine:"
        self._exec_prefix = f"arn:aws:states:{self.region}:{self.account}:express:"

    # ------------------------------------------------------------------ helpers
    def machine_name(self, arn: str) -> str:
        """The registry name an ARN refers to, or the AWS error for it."""
        if not arn.startswith("arn:"):
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(arn)}'")
        parts = arn.split(":")
        if len(parts) < 7 or not parts[1].startswith("aws") or parts[2] != "states":
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(arn)}'")
        if parts[5] != "stateMachine":
            raise ApiError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {clip(parts[5])}'")
        name = parts[6]
        if "/" in name:
            raise ApiError("ValidationException", "This API does not support labeled ARNs.",
                           reason="API_DOES_NOT_SUPPORT_LABELED_ARNS")
        if not name or len(parts) > 8 or (len(parts) == 8 and not parts[7]):
            raise ApiError("InvalidArn", f"Invalid Arn: '{clip(arn)}'")
        if len(parts) == 8 or parts[3] != self.region or parts[4] != self.account:
            # Versions and aliases are not kept; other regions and accounts are not ours.
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{clip(arn)}'")
        return name

    def entry_for(self, arn: str) -> tuple[str, Entry]:
        # ARN#CASE (Step Functions Local): the machine with that test case of the mock config
        machine_arn, has_case, case = arn.partition("#")
        name = self.machine_name(machine_arn)
        entry = self.registry.entry(name)
        if entry is None:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{clip(arn)}'")
        if has_case:
            from express.testing.mocking import MockConfigError, case_entry

            try:
                entry = case_entry(getattr(self.registry, "mock_config", None), entry, machine_arn, case)
            except MockConfigError as e:
                raise ApiError("StateMachineDoesNotExist",
                               f"State Machine Does Not Exist: '{clip(arn)}': {e}") from None
        return name, entry

    def machine_type(self, name: str) -> str:
        entry = self.registry.entry(name)
        return entry.type if entry is not None else "EXPRESS"

    async def _catch_up(self) -> bool:
        """Apply the store's committed changes here (a machine made through another worker); False
        without a store."""
        follower = self.registry.follower
        if follower is None:
            return False
        try:
            await follower.catch_up()
        except StoreError as e:
            raise store_unavailable(e) from None
        return True

    async def _known_entry(self, arn: str) -> tuple[str, Entry]:
        """entry_for, after catching up with the store when this process does not know the machine."""
        try:
            return self.entry_for(arn)
        except ApiError as e:
            if e.code != "StateMachineDoesNotExist" or not await self._catch_up():
                raise
        return self.entry_for(arn)

    def _check_mutable(self, name: str, entry: Entry) -> None:
        # with a store, a file's machine changed over the API would differ between workers and
        # come back at the next start: the file is its only source
        if entry.from_config and self.registry.store is not None:
            raise ApiError("ValidationException", f"State machine '{name}' is defined by the file {name}.asl.json "
                           "of the machines folder: change or delete the file instead")

    async def compile(self, text: str, name: str, logging: Mapping[str, Any] | None = None) -> Machine:
        """Compile off the event loop when the definition is large; DefinitionError -> InvalidDefinition."""
        try:
            return await self._compile(text, name, logging)
        except DefinitionError as e:
            raise ApiError("InvalidDefinition", problems_message(e.problems)) from None

    async def _compile(self, text: str, name: str, logging: Mapping[str, Any] | None = None) -> Machine:
        return await self.registry.compile_async(text, name, logging)

    def _install(self, name: str, entry: Entry) -> Entry:
        """Make ``entry`` the version served here, unless a later one from the store is already."""
        current = self.registry.entry(name)
        if current is None or entry.seq == 0 or current.seq < entry.seq:
            self.registry.install(entry, name)
        return entry
