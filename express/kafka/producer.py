"""The producer Task states write Kafka records through (``arn:express:::kafka:produce``, see
:mod:`express.integrations.kafka_produce`): one per worker process, made by the service when Kafka
is configured and handed to the integrations as ``integrations.kafka``.

Its ``AIOKafkaProducer`` is started on the first record a Task sends (a server whose machines never
produce opens no connection for it), with ``acks="all"``: ``send`` returns once the broker has the
record. Records are partitioned by aiokafka's default partitioner (murmur2 of the key, as the Java
client does; a record without a key goes to any partition). ``aclose`` is idempotent; a send after
it raises :class:`ProducerClosed`.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from express.serve.config import KafkaSettings


class ProducerClosed(Exception):
    """A record was sent after the service closed the producer (it is stopping)."""


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The connection options of ``[kafka]`` (client id, security protocol, SASL, TLS) as aiokafka
    clients take them, without the bootstrap servers."""
    kw: dict[str, Any] = {"client_id": kafka.client_id, "security_protocol": kafka.security_protocol}
    if kafka.sasl_mechanism:
        kw.update(sasl_mechanism=kafka.sasl_mechanism, sasl_plain_username=kafka.sasl_username or None,
                  sasl_plain_password=kafka.sasl_password or None)
    if kafka.ssl_cafile or kafka.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        kw["ssl_context"] = create_ssl_context(cafile=kafka.ssl_cafile or None)
    return kw


class TaskProducer:
    """``await send(topic, key, value, headers) -> (partition, offset)`` once the broker acknowledges
    the record; aiokafka's exceptions (``KafkaError`` subclasses) come through unchanged."""

    def __init__(self, bootstrap: str, options: dict[str, Any] | None = None, *, linger_ms: int = 5,
                 max_request_bytes: int = 1_048_576, request_timeout_ms: int = 30_000) -> None:
        self.bootstrap = bootstrap
        self.options = dict(options or {})
        self.linger_ms = linger_ms
        self.max_request_bytes = max_request_bytes
        self.request_timeout_ms = request_timeout_ms
        self.sent = 0
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    def from_settings(cls, kafka: KafkaSettings, bootstrap: str) -> TaskProducer:
        return cls(bootstrap, client_options(kafka), linger_ms=kafka.linger_ms,
                   max_request_bytes=max(kafka.max_batch_bytes, 1_048_576))

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   headers: Sequence[tuple[str, bytes]] = ()) -> tuple[int, int]:
        producer = self._producer
        if producer is None:
            producer = await self._start()
        ack = await producer.send(topic, value, key=key, headers=list(headers) or None)
        meta = await ack
        self.sent += 1
        return int(meta.partition), int(meta.offset)

    async def _start(self) -> Any:
        async with self._lock:
            if self._closed:
                raise ProducerClosed("the service is stopping: no more Kafka records are sent")
            if self._producer is None:
                from aiokafka import AIOKafkaProducer

                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=False,
                                            linger_ms=self.linger_ms, max_request_size=self.max_request_bytes,
                                            request_timeout_ms=self.request_timeout_ms, **self.options)
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise  # the Task fails with it; the next send tries again
                self._producer = producer
            return self._producer

    async def aclose(self) -> None:
        async with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # a broker already gone must not fail the shutdown
                await asyncio.wait_for(producer.stop(), 15.0)
