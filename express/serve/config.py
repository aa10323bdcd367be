"""Service configuration, read once from ``<config dir>/express.toml`` plus environment variables
into a frozen :class:`Settings`.

Every setting ``[section] key`` can be overridden by the environment variable
``EXPRESS_<SECTION>_<KEY>`` (upper case), e.g. ``EXPRESS_KAFKA_BOOTSTRAP=broker:9092``.
A bad file or value fails at start with the file, the key and the reason (:class:`ConfigError`).
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, get_type_hints

CONFIG_FILE = "express.toml"
ENV_PREFIX = "EXPRESS_"
# What the supervisor tells each worker process it starts (express.serve.supervisor, read by
# express.http.routing); here so that a Kafka-only worker need not import the HTTP package.
ENV_ROUTE_DIR = "EXPRESS_WORKER_ROUTE_DIR"
ENV_WORKER_COUNT = "EXPRESS_WORKER_COUNT"
ENV_WORKER_INDEX = "EXPRESS_WORKER_INDEX"


class ConfigError(ValueError):
    """A configuration problem: where (file and key) and why."""

    def __init__(self, where: str, key: str, reason: str) -> None:
        super().__init__(f"{where}: {key}: {reason}")
        self.where = where
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EngineSettings:
    max_duration_s: float = 300.0  # Express: 5 minutes per execution
    max_payload_bytes: int = 256 * 1024
    virtual_time: bool = False


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str = ""  # empty: start the embedded broker
    group_id: str = "express"
    client_id: str = "express"
    max_in_flight: int = 10_000
    results_suffix: str = ".results"
    failures_suffix: str = ".failures"
    dlq_suffix: str = ".dlq"
    machine_header: str = "express-machine"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    linger_ms: int = 5
    max_batch_bytes: int = 1_048_576
    commit_interval_ms: int = 200


@dataclass(frozen=True, slots=True)
class HttpSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    name_retention_s: float = 3600.0
    max_names: int = 100_000
    # bytes the name table may hold: stored answers, plus an estimate per record (running ones too)
    max_name_bytes: int = 256 * 1024 * 1024
    # StartSyncExecution runs at once per worker process; beyond: ThrottlingException ("Rate exceeded")
    max_concurrent_sync: int = 1_000
    max_body_bytes: int = 1_048_576
    drain_timeout_s: float = 30.0
    # SO_REUSEPORT on the listening socket, so several processes serve one port (the supervisor
    # sets it for its workers through EXPRESS_HTTP_REUSE_PORT)
    reuse_port: bool = False
    # "AKID:SECRET,AKID2:SECRET2"; also the [credentials] table. Empty: no authentication.
    credentials: str = ""
    # With credentials: the Host values a signed request may name, "host" or "host:port" separated by
    # commas ("*": any host but AWS's own *.amazonaws.com). Empty: the address served on, localhost,
    # 127.0.0.1 and [::1] at its port (and their "sync-" forms).
    allowed_hosts: str = ""


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    # The web console's login token (never the SigV4 secret). Empty: with credentials configured,
    # `express serve` generates one at start and prints it; without credentials the console is open.
    token: str = ""


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    enabled: bool = True
    flush_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class MeteringSettings:
    # "": no usage records; "-": stdout; "kafka": the metering topic (Kafka mode); else a file path
    destination: str = ""
    topic: str = "express.observe.metering"
    price_per_request: float = 1.0 / 1_000_000
    # $ per GB-hour for the first tier1_gb_hours, the next tier2_gb_hours, and beyond (per month)
    price_gb_hour_tier1: float = 0.06
    tier1_gb_hours: float = 1000.0
    price_gb_hour_tier2: float = 0.03
    tier2_gb_hours: float = 4000.0
    price_gb_hour_tier3: float = 0.01642

    def prices(self) -> Any:
        import math

        from express.engine.billing import Prices

        return Prices(self.price_per_request, ((self.tier1_gb_hours, self.price_gb_hour_tier1),
                                               (self.tier2_gb_hours, self.price_gb_hour_tier2),
                                               (math.inf, self.price_gb_hour_tier3)))


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """Execution logs (AWS loggingConfiguration); per-machine levels in [machine_logging]."""

    level: str = "OFF"  # ALL | ERROR | FATAL | OFF, for machines not named in [machine_logging]
    include_execution_data: bool = False
    # "-": stdout; "kafka": the log topic (Kafka mode); else a file path
    destination: str = "-"
    topic: str = "express.observe.logs"
    # The service's own log lines (express.observe.logs): "text" (express: ... lines) or "json" (one object a line)
    format: str = "text"
    service_level: str = "info"  # debug | info | warning | error: the lowest service log level written
    # `express serve` logs a progress summary this often (0: never); idle, at most once a minute
    progress_s: float = 10.0


@dataclass(frozen=True, slots=True)
class WorkersSettings:
    """``express serve`` worker processes under the supervisor (:mod:`express.serve.supervisor`)."""

    count: int = 0  # 0: one per CPU core (os.cpu_count()); 1: no supervisor, serve in this process
    # Who serves HTTP when count > 1: "all" (every worker on the one port with SO_REUSEPORT; a named
    # execution is handed to the worker that owns the name, so names stay exactly-once) or "one"
    # (worker 0 only)
    http: str = "all"
    # true: with http = "all", skip the routing and keep a name table per worker (a retry that lands
    # on another worker runs again). Only for callers that never retry named executions.
    http_names_per_process: bool = False
    backoff_initial_s: float = 0.5  # first restart delay of a crashed worker; doubles per crash
    backoff_max_s: float = 30.0  # cap of the restart delay
    stable_after_s: float = 30.0  # a worker up this long has its restart delay reset
    stop_timeout_s: float = 0.0  # SIGTERM -> SIGKILL grace per worker; 0: engine.max_duration_s + 30


@dataclass(frozen=True, slots=True)
class StateSettings:
    """Where the machines created over the API live (:mod:`express.store`), shared by all workers."""

    # "" (the default): SQLite in ``dir``; "sqlite:///ABSOLUTE/PATH.db" or "sqlite:NAME.db" (in ``dir``);
    # "redis://HOST:PORT/DB" (Redis or Valkey, shared by several servers; "rediss://" for TLS,
    # "?prefix=NAME:" to share one database between deployments); "memory:" keeps them in each
    # process only, as before the store (one worker, nothing survives a restart)
    url: str = ""
    dir: str = ""  # "": "<config dir>/state"


@dataclass(frozen=True, slots=True)
class Settings:
    config_dir: str = "config"
    engine: EngineSettings = field(default_factory=EngineSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    metering: MeteringSettings = field(default_factory=MeteringSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    workers: WorkersSettings = field(default_factory=WorkersSettings)
    state: StateSettings = field(default_factory=StateSettings)
    # topic -> machine name
    bindings: Mapping[str, str] = field(default_factory=dict)
    # Lambda function name -> "package.module:callable"
    functions: Mapping[str, str] = field(default_factory=dict)
    # AWS access key id -> secret access key; when set, HTTP requests must carry SigV4 signatures
    credentials: Mapping[str, str] = field(default_factory=dict)
    # machine -> logging level (ALL | ERROR | FATAL | OFF), overriding [logging] level
    machine_logging: Mapping[str, str] = field(default_factory=dict)
    # [connections.NAME]: the HTTP Task's EventBridge connections (express.integrations.connections.Connection)
    connections: Mapping[str, Any] = field(default_factory=dict)
    # [aws] region, endpoint_url, profile and [aws.endpoints] SERVICE = URL: where the AWS SDK and optimized
    # integrations call, beyond botocore's own configuration (express.integrations.AwsSettings)
    aws: Any = field(default_factory=lambda: _aws({}, {}, ""))

    def logging_for(self, machine: str) -> tuple[str, bool]:
        return self.machine_logging.get(machine, self.logging.level), self.logging.include_execution_data

    @property
    def machines_dir(self) -> pathlib.Path:
        return pathlib.Path(self.config_dir) / "machines"

    @property
    def state_dir(self) -> pathlib.Path:
        return pathlib.Path(self.state.dir) if self.state.dir else pathlib.Path(self.config_dir) / "state"


_SECTIONS: dict[str, type[Any]] = {"engine": EngineSettings, "kafka": KafkaSettings, "http": HttpSettings,
                                   "console": ConsoleSettings, "metrics": MetricsSettings, "metering": MeteringSettings,
                                   "logging": LoggingSettings, "workers": WorkersSettings,
                                   "state": StateSettings}
_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")
_LOG_FORMATS = ("text", "json")  # express.observe.logs.FORMATS
_SERVICE_LEVELS = ("debug", "info", "warning", "error")  # express.observe.logs.LEVELS
# "*", name[:port], [ipv6][:port] or a bare IPv6 address (the syntax express.http.auth.HostAllowList reads)
_HOST_ENTRY = re.compile(r"^(\*|[A-Za-z0-9_.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+)$")
_WORKER_HTTP = ("one", "all")
STATE_SCHEMES = ("sqlite", "redis", "rediss", "valkey", "valkeys", "memory")


def _coerce(value: Any, typ: Any, where: str, key: str) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(where, key, f"expected true or false, got {value!r}")
    if typ is int or typ is float:
        what = "an integer" if typ is int else "a number"
        if isinstance(value, bool):
            raise ConfigError(where, key, f"expected {what}, got {value!r}")
        try:
            return typ(value)
        except (TypeError, ValueError):
            raise ConfigError(where, key, f"expected {what}, got {value!r}") from None
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(where, key, f"expected a string, got {value!r}")
        return value
    return value


def _section(cls: type[Any], table: Mapping[str, Any], env: Mapping[str, str], name: str, where: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(where, f"{name}.{key}", f"unknown setting (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        env_name = f"{ENV_PREFIX}{name.upper()}_{f.name.upper()}"
        if env_name in env:
            values[f.name] = _coerce(env[env_name], hints[f.name], "environment", env_name)
        elif f.name in table:
            values[f.name] = _coerce(table[f.name], hints[f.name], where, f"{name}.{f.name}")
    settings = cls(**values)
    _check_ranges(settings, name, where)
    return settings


def _check_ranges(settings: Any, name: str, where: str) -> None:
    for f in dataclasses.fields(settings):
        v = getattr(settings, f.name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            raise ConfigError(where, f"{name}.{f.name}", f"must not be negative, got {v}")
    if name == "http" and not 0 <= settings.port <= 65535:
        raise ConfigError(where, "http.port", f"must be a port number, got {settings.port}")
    if name == "http" and settings.max_concurrent_sync < 1:
        raise ConfigError(where, "http.max_concurrent_sync", "must be at least 1")
    if name == "http":
        for entry in filter(None, (e.strip() for e in settings.allowed_hosts.split(","))):
            m = _HOST_ENTRY.match(entry)
            if m is None or not 0 < int((m.group(2) or m.group(3) or ":80")[1:]) < 65536:
                raise ConfigError(where, "http.allowed_hosts", f"not '*', a host or host:port: {entry!r}")
    if name == "kafka" and settings.max_in_flight < 1:
        raise ConfigError(where, "kafka.max_in_flight", "must be at least 1")
    if name == "engine" and settings.max_duration_s <= 0:
        raise ConfigError(where, "engine.max_duration_s", "must be positive")
    if name == "workers" and settings.http not in _WORKER_HTTP:
        raise ConfigError(where, "workers.http", f"must be one of {', '.join(_WORKER_HTTP)}, got {settings.http!r}")
    if name == "workers" and settings.backoff_max_s < settings.backoff_initial_s:
        raise ConfigError(where, "workers.backoff_max_s", "must not be below workers.backoff_initial_s")
    if name == "state" and settings.url and settings.url.partition(":")[0] not in STATE_SCHEMES:
        raise ConfigError(where, "state.url", "expected sqlite:///PATH.db, sqlite:NAME.db, redis://HOST:PORT/DB or "
                          f"memory:, got {settings.url!r}")
    if name == "logging" and settings.level not in _LEVELS:
        raise ConfigError(where, "logging.level", f"must be one of {', '.join(_LEVELS)}, got {settings.level!r}")
    if name == "logging" and settings.format not in _LOG_FORMATS:
        raise ConfigError(where, "logging.format", f"must be one of {', '.join(_LOG_FORMATS)}, got {settings.format!r}")
    if name == "logging" and settings.service_level not in _SERVICE_LEVELS:
        raise ConfigError(where, "logging.service_level",
                          f"must be one of {', '.join(_SERVICE_LEVELS)}, got {settings.service_level!r}")


def _string_table(table: Any, where: str, name: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(where, name, "expected a table of strings")
    for k, v in table.items():
        if not isinstance(v, str):
            raise ConfigError(where, f"{name}.{k}", f"expected a string, got {v!r}")
    return dict(table)


def _connections(table: Any, env: Mapping[str, str], where: str) -> dict[str, Any]:
    """[connections.NAME] tables -> name -> Connection (secrets read from the environment variables named)."""
    from express.integrations.connections import ConnectionConfigError, from_table

    if not isinstance(table, dict):
        raise ConfigError(where, "connections", "expected a table of [connections.NAME] tables")
    out: dict[str, Any] = {}
    for name, sub in table.items():
        try:
            out[name] = from_table(name, sub, env)
        except ConnectionConfigError as e:
            raise ConfigError(where, e.key, e.reason) from None
    return out


_AWS_KEYS = ("region", "endpoint_url", "profile", "endpoints")


def _aws(table: Any, env: Mapping[str, str], where: str) -> Any:
    """[aws] (and [aws.endpoints]) -> AwsSettings; EXPRESS_AWS_REGION, EXPRESS_AWS_ENDPOINT_URL,
    EXPRESS_AWS_PROFILE and EXPRESS_AWS_ENDPOINTS ("s3=http://host:4566,sqs=...") override them."""
    from express.integrations import AwsSettings

    if not isinstance(table, dict):
        raise ConfigError(where, "aws", "expected a table")
    for key in table:
        if key not in _AWS_KEYS:
            raise ConfigError(where, f"aws.{key}", f"unknown setting (known: {', '.join(sorted(_AWS_KEYS))})")
    values: dict[str, str | None] = {}
    places: dict[str, tuple[str, str]] = {}  # setting -> (where, key) it came from, for errors
    for key in ("region", "endpoint_url", "profile"):
        env_name = f"{ENV_PREFIX}AWS_{key.upper()}"
        place, value = (("environment", env_name), env[env_name]) if env_name in env else \
            ((where, f"aws.{key}"), table.get(key, ""))
        if not isinstance(value, str):
            raise ConfigError(*place, f"expected a string, got {value!r}")
        values[key], places[key] = value.strip() or None, place
    env_name = ENV_PREFIX + "AWS_ENDPOINTS"
    endpoints: dict[str, Any] = {}
    if env_name in env:
        for pair in filter(None, (p.strip() for p in env[env_name].split(","))):
            service, sep, url = pair.partition("=")
            if not sep or not service.strip():
                raise ConfigError("environment", env_name, "expected 'SERVICE=URL' pairs separated by commas")
            endpoints[service.strip()] = url.strip()
            places[f"endpoints.{service.strip()}"] = ("environment", env_name)
    else:
        endpoints = _string_table(table.get("endpoints", {}), where, "aws.endpoints")
        places.update({f"endpoints.{k}": (where, f"aws.endpoints.{k}") for k in endpoints})
    urls = {"endpoint_url": values["endpoint_url"]} if values["endpoint_url"] else {}
    urls.update({f"endpoints.{k}": v for k, v in endpoints.items()})
    for name, url in urls.items():
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(*places[name], f"expected an http:// or https:// URL, got {url!r}")
    return AwsSettings(region=values["region"], endpoint_url=values["endpoint_url"], profile=values["profile"],
                       endpoints=MappingProxyType(endpoints))


def load_settings(config_dir: str | os.PathLike[str] = "config", env: Mapping[str, str] | None = None) -> Settings:
    """Read ``express.toml`` in ``config_dir`` (optional) and apply environment overrides."""
    env = os.environ if env is None else env
    config_dir = env.get(ENV_PREFIX + "CONFIG_DIR", str(config_dir))
    path = pathlib.Path(config_dir) / CONFIG_FILE
    where = str(path)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(where, "(file)", f"not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(where, "(file)", f"cannot read: {e.strerror}") from None
    allowed = set(_SECTIONS) | {"bindings", "functions", "credentials", "machine_logging"} | {"connections"} | {"aws"}
    for key in data:
        if key not in allowed:
            raise ConfigError(where, key, f"unknown section (known: {', '.join(sorted(allowed))})")
    sections = {}
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(where, name, "expected a table")
        sections[name] = _section(cls, table, env, name, where)
    credentials = _string_table(data.get("credentials", {}), where, "credentials")
    machine_logging = _string_table(data.get("machine_logging", {}), where, "machine_logging")
    for machine, level in machine_logging.items():
        if level not in _LEVELS:
            raise ConfigError(where, f"machine_logging.{machine}",
                              f"must be one of {', '.join(_LEVELS)}, got {level!r}")
    for pair in filter(None, (p.strip() for p in sections["http"].credentials.split(","))):
        key, sep, secret = pair.partition(":")
        if not sep or not key or not secret:
            raise ConfigError("environment" if ENV_PREFIX + "HTTP_CREDENTIALS" in env else where,
                              "http.credentials", "expected 'ACCESS_KEY_ID:SECRET' pairs separated by commas")
        credentials[key] = secret
    connections = _connections(data.get("connections", {}), env, where)
    aws = _aws(data.get("aws", {}), env, where)
    return Settings(
        aws=aws,
        connections=MappingProxyType(connections),
        config_dir=str(config_dir),
        credentials=MappingProxyType(credentials),
        machine_logging=MappingProxyType(machine_logging),
        bindings=MappingProxyType(_string_table(data.get("bindings", {}), where, "bindings")),
        functions=MappingProxyType(_string_table(data.get("functions", {}), where, "functions")),
        **sections,
    )
