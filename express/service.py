"""``express serve``: one process that owns the registry, the Kafka worker and the HTTP server.

Start and stop are idempotent; stop tears down in reverse order of start (HTTP stops accepting,
the Kafka worker drains its in-flight executions, commits and leaves the group, then the
embedded broker, if this process started one, goes away).
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Any

from express.config import Settings
from express.registry import Registry


def log(message: str) -> None:
    print(f"express: {message}", file=sys.stderr, flush=True)


class Service:
    def __init__(self, settings: Settings, *, bootstrap: str | None = None,
                 http: tuple[str, int] | None = None, kafka: bool = True, http_enabled: bool | None = None) -> None:
        self.settings = settings
        self.bootstrap = bootstrap if bootstrap is not None else (settings.kafka.bootstrap or None)
        self.http_address = http if http is not None else (settings.http.host, settings.http.port)
        self.kafka_enabled = kafka
        self.http_enabled = settings.http.enabled if http_enabled is None else http_enabled
        self.registry: Registry | None = None
        self.broker: Any = None
        self.worker: Any = None
        self.http: Any = None
        self._started = False
        self._stopped = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._sinks: list[Any] = []
        self._kafka_sinks: list[Any] = []

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        settings = self.settings
        wants_kafka = self.kafka_enabled and (
            bool(settings.bindings) or "kafka" in (settings.metering.destination, settings.logging.destination))
        if wants_kafka and self.bootstrap is None:
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
        log(f"{len(self.registry)} state machine(s): {', '.join(self.registry) or '-'}")
        if settings.metrics.enabled:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_metrics(), name="express-metrics")
        if self.kafka_enabled and settings.bindings:
            from express.kafka.worker import KafkaWorker

            assert self.bootstrap is not None
            self.worker = KafkaWorker(settings, self.registry, self.bootstrap)
            await self.worker.start()
            log(f"Kafka worker consuming {', '.join(sorted(settings.bindings))} from {self.bootstrap}")
        if self.http_enabled:
            from express.http.server import HttpServer

            host, port = self.http_address
            self.http = HttpServer(settings, self.registry, host=host, port=port, kafka=self.worker,
                                   credentials=dict(settings.credentials) or None,
                                   drain_timeout_s=settings.http.drain_timeout_s)
            await self.http.start()
            log(f"HTTP (AWS JSON 1.0 StepFunctions API) on http://{host}:{self.http.port}/")

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
        from express.sinks import open_sink

        sink = open_sink(destination, name=name)
        self._sinks.append(sink)
        return sink

    async def _flush_metrics(self) -> None:
        from express.metrics import RECORDER

        interval = self.settings.metrics.flush_interval_s
        while True:
            await asyncio.sleep(interval)
            RECORDER.flush()

    async def stop(self) -> None:
        if not self._started or self._stopped.is_set():
            return
        try:
            if self.http is not None:
                await self.http.stop()
            if self.worker is not None:
                await self.worker.stop()
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
                from express.metrics import RECORDER

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
            log("stopping: draining in-flight executions")
        finally:
            await self.stop()
            log("stopped")
