"""Kafka tests run against a real broker: the embedded tansu binary, started once per session.

Every test uses its own topics and consumer group, and short group timeouts (session 2000 ms,
heartbeat 300 ms: see kafka_helpers.SHORT_GROUP) so that joins, leaves and dead members are
noticed quickly."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from express.kafka.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    broker = EmbeddedBroker()
    address = loop.run_until_complete(broker.start())
    try:
        yield address
    finally:
        loop.run_until_complete(broker.stop())
        loop.close()
