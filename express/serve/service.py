"""``express serve``: one process that owns the registry, the Kafka worker and the HTTP server.

Start and stop are idempotent; stop tears down in reverse order of start (HTTP stops accepting,
the Kafka worker drains its in-flight executions, commits and leaves the group, then the
embedded broker, if this process started one, goes away).

What the configuration needs and the installation lacks (the config folder, the Kafka client or
broker, botocore for SigV4) is found before anything starts (:func:`check_requirements`) and
reported in one line saying what to install or set.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import os
import pathlib
import secrets
import signal
from typing import Any

from express.serve.config import CONFIG_FILE, ENV_PREFIX, ConfigError, Settings
from express.serve.gc_tuning import tune_gc
from express.serve.registry import Registry

CONSOLE_TOKEN_ENV = ENV_PREFIX + "CONSOLE_TOKEN"


def log(message: str, *, event: str = "", **fields: Any) -> None:
    from express.observe.logs import emit_message

    emit_message("", message, event=event, **fields)


class StartError(Exception):
    """The service cannot start as configured; the message says what to install or set."""


def wants_kafka(settings: Settings, kafka_enabled: bool) -> bool:
    return kafka_enabled and (
        bool(settings.bindings) or "kafka" in (settings.metering.destination, settings.logging.destination))


def check_requirements(settings: Settings, *, bootstrap: str | None, kafka_enabled: bool, http_enabled: bool) -> None:
    """ConfigError for a config folder that is not there; StartError for a missing package."""
    folder = pathlib.Path(settings.config_dir)
    if not folder.is_dir():
        raise ConfigError(str(folder), "(folder)", "no such folder (--config names the folder that holds "
                          "express.toml and machines/)" if not folder.exists() else
                          "not a folder (--config names the folder that holds express.toml and machines/)")
    if wants_kafka(settings, kafka_enabled):
        what = "[bindings] " + ", ".join(sorted(settings.bindings)) if settings.bindings else "a 'kafka' destination"
        if importlib.util.find_spec("aiokafka") is None:
            raise StartError(f"Kafka is needed ({what}) but its client is not installed: pip install "
                             "'express-sfn[kafka]' (or serve --no-kafka)")
        if bootstrap is None:
            from express.kafka.broker import BrokerError, find_tansu

            try:
                find_tansu()
            except BrokerError as e:
                raise StartError(f"Kafka is needed ({what}) and no bootstrap servers are configured, but the "
                                 f"embedded broker cannot start: {e}") from None
    from express.store import StoreError, open_store

    try:
        open_store(settings)  # a URL naming a store that is not available: one line, before any worker starts
    except StoreError as e:
        raise StartError(str(e)) from None
    if http_enabled and settings.credentials and importlib.util.find_spec("botocore") is None:
        raise StartError("[credentials] need botocore to check SigV4 signatures: pip install 'express-sfn[auth]'")


def with_console_token(settings: Settings, *, export: bool = False) -> Settings:
    """With credentials and no ``[console] token``: a generated one, printed once. ``export`` puts it
    in this process's environment too, for the worker processes a supervisor starts."""
    if not settings.credentials or settings.console.token:
        return settings
    token = secrets.token_urlsafe(24)
    if export:
        os.environ[CONSOLE_TOKEN_ENV] = token
    log(f"console login token: {token} (generated at start; set [console] token or {CONSOLE_TOKEN_ENV} to "
        "choose one)")
    return dataclasses.replace(settings, console=dataclasses.replace(settings.console, token=token))


class Service:
    def __init__(self, settings: Settings, *, bootstrap: str | None = None,
                 http: tuple[str, int] | None = None, kafka: bool = True, http_enabled: bool | None = None,
                 mock_config: str | None = None, reload: bool = False) -> None:
        self.settings = settings
        self.mock_config = mock_config  # a Step Functions Local mock config: ARN#CASE runs its test cases
        self.reload = reload  # serve --reload: recompile changed machines and mock config
        self.reloader: Any = None
        self.bootstrap = bootstrap if bootstrap is not None else (settings.kafka.bootstrap or None)
        self.http_address = http if http is not None else (settings.http.host, settings.http.port)
        self.kafka_enabled = kafka
        self.http_enabled = settings.http.enabled if http_enabled is None else http_enabled
        self.registry: Registry | None = None
        self.store: Any = None  # express.store.MachineStore: the API's machines, shared by the workers
        self.follower: Any = None
        self.broker: Any = None
        self.worker: Any = None
        self.http: Any = None
        self._started = False
        self._stopped = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self.progress: Any = None  # express.serve.progress.ProgressReporter: the periodic progress line
        self._sinks: list[Any] = []
        self._kafka_sinks: list[Any] = []
        self.integrations: Any = None  # express.integrations.Integrations of this worker's engine
        self.task_producer: Any = None  # express.kafka.producer.TaskProducer: kafka:produce Tasks write through it

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        check_requirements(self.settings, bootstrap=self.bootstrap, kafka_enabled=self.kafka_enabled,
                           http_enabled=self.http_enabled)
        if self.http_enabled:
            self.settings = with_console_token(self.settings)
        settings = self.settings
        if wants_kafka(settings, self.kafka_enabled) and self.bootstrap is None:
            from express.kafka.broker import EmbeddedBroker

            self.broker = EmbeddedBroker()
            self.bootstrap = await self.broker.start()
            log(f"no Kafka bootstrap servers configured: started the embedded broker at {self.bootstrap}")
        usage_sink = await self._open_sink(settings.metering.destination, settings.metering.topic, "metering")
        log_sink = await self._open_sink(settings.logging.destination, settings.logging.topic, "log")
        recorder = None
        if self.http_enabled:  # the console's recent executions, shown by the HTTP server
            from express.console.ring import ring_from_env

            recorder = ring_from_env()
        self.registry = Registry.from_settings(settings, usage_sink=usage_sink, log_sink=log_sink,
                                               recorder=recorder)
        await self._open_store(self.registry)
        self.integrations = self.registry.engine.integrations
        if (self.kafka_enabled and self.bootstrap is not None
                and importlib.util.find_spec("aiokafka") is not None):
            from express.kafka.producer import TaskProducer

            # started on the first record a Task (or a StartExecution) produces: no connection for
            # servers that never do
            self.task_producer = TaskProducer.from_settings(settings.kafka, self.bootstrap)
            if self.integrations is not None:
                self.integrations.kafka = self.task_producer
        log(f"{len(self.registry)} state machine(s): {', '.join(self.registry) or '-'}", event="machines",
            machines=list(self.registry))
        folder = pathlib.Path(settings.config_dir)
        if not (folder / CONFIG_FILE).exists() and not settings.machines_dir.is_dir():
            log(f"WARNING: {folder} holds neither {CONFIG_FILE} nor machines/: serving the defaults, with no "
                "state machines but those created over the API")
        if self.mock_config is not None or self.reload:
            from express.serve.reload import Reloader

            self.reloader = Reloader(self.registry, settings.machines_dir, self.mock_config, log=log)
            await self.reloader.start(watch=self.reload)
        if settings.metrics.enabled:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_metrics(), name="express-metrics")
        if self.kafka_enabled and settings.bindings:
            from express.kafka.worker import KafkaWorker

            assert self.bootstrap is not None
            self.worker = KafkaWorker(settings, self.registry, self.bootstrap)
            await self.worker.start()
            log(f"Kafka worker consuming {', '.join(sorted(settings.bindings))} from {self.bootstrap}",
                event="kafka_consuming", topics=sorted(settings.bindings), bootstrap=self.bootstrap)
        if self.http_enabled:
            from express.http.server import HttpServer

            host, port = self.http_address
            self.http = HttpServer(settings, self.registry, host=host, port=port, kafka=self.worker,
                                   credentials=dict(settings.credentials) or None,
                                   drain_timeout_s=settings.http.drain_timeout_s)
            if self.task_producer is not None and settings.bindings:
                from express.kafka.starts import KafkaStarts

                # StartExecution of a bound machine: a start event on its topic (at-least-once)
                self.http.api.kafka_starts = KafkaStarts(self.task_producer, settings.bindings,
                                                         settings.kafka.machine_header)
            await self.http.start()
            tune_gc()  # once everything is loaded: see express.serve.gc_tuning (the Kafka worker does it too)
            log(f"HTTP (AWS JSON 1.0 StepFunctions API) on http://{host}:{self.http.port}/, web console at "
                f"http://{host}:{self.http.port}/console", event="http_listening", host=host, port=self.http.port)
        if settings.logging.progress_s > 0:
            from express.serve.progress import ProgressReporter

            self.progress = ProgressReporter(settings.logging.progress_s, worker=self.worker, http=self.http,
                                             metrics=settings.metrics.enabled)
            self.progress.start()

    async def _open_store(self, registry: Registry) -> None:
        from express.store import StoreError, open_store
        from express.store.follower import MachineFollower

        try:
            store = open_store(self.settings)
            if store is None:
                log("state: [state] url = memory: machines created over the API live in this process only")
                return
            await store.open()
        except StoreError as e:
            raise StartError(str(e)) from None
        self.store = store
        self.follower = MachineFollower(store, registry, log=log)
        try:
            await self.follower.start()
        except StoreError as e:
            raise StartError(str(e)) from None
        registry.store, registry.follower = store, self.follower
        where = store.description
        path = getattr(store, "path", None)
        if path is not None and path.is_relative_to(settings_dir := pathlib.Path(self.settings.config_dir)):
            where = f"{path.relative_to(settings_dir)} of the config folder"
        log(f"state: machines created over the API are kept in {where}")

    async def _open_sink(self, destination: str, topic: str, name: str) -> Any:
        if not destination:
            return None
        if destination == "kafka":
            if self.bootstrap is None:
                log(f"{name} records go nowhere: destination 'kafka' needs Kafka (not --no-kafka)")
                return None
            from express.kafka.sink import KafkaSink

            ksink = KafkaSink(self.bootstrap, topic, name=name)
            await ksink.start()
            self._kafka_sinks.append(ksink)
            log(f"{name} records to Kafka topic {topic}")
            return ksink
        from express.observe.sinks import open_sink

        sink = open_sink(destination, name=name)
        self._sinks.append(sink)
        return sink

    async def _flush_metrics(self) -> None:
        from express.observe.metrics import RECORDER

        interval = self.settings.metrics.flush_interval_s
        while True:
            await asyncio.sleep(interval)
            RECORDER.flush()

    async def stop(self) -> None:
        if not self._started or self._stopped.is_set():
            return
        try:
            if self.progress is not None:
                await self.progress.stop()
            if self.reloader is not None:
                await self.reloader.stop()
            if self.http is not None:
                await self.http.stop()
            if self.worker is not None:
                await self.worker.stop()
            if self.integrations is not None:
                from express.integrations.local_machines import drain

                await drain(self.integrations)  # executions Tasks started, which may use the clients below
                await self.integrations.aclose()
            if self.task_producer is not None:
                await self.task_producer.aclose()
            if self.follower is not None:
                await self.follower.stop()
            if self.store is not None:
                await self.store.close()
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
                from express.observe.metrics import RECORDER

                RECORDER.flush()
            for ksink in self._kafka_sinks:
                await ksink.stop()
            for sink in self._sinks:
                await asyncio.to_thread(sink.close)
            if self.broker is not None:
                await self.broker.stop()
        finally:
            self._stopped.set()

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_requested.set)
        await self.start()
        try:
            await stop_requested.wait()
            log("stopping: draining in-flight executions", event="stopping")
        finally:
            await self.stop()
            log("stopped", event="stopped")
