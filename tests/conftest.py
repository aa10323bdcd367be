"""Fixtures shared by the tests; plain helpers live in tests/support.py."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from express.kafka.broker import EmbeddedBroker
from tests.support import FakeFrame


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker for the session: the embedded tansu binary (the Kafka worker's,
    kafka:produce's and StartExecution-through-Kafka tests; each uses topics and groups of its own)."""
    loop = asyncio.new_event_loop()
    broker = EmbeddedBroker()
    address = loop.run_until_complete(broker.start())
    try:
        yield address
    finally:
        loop.run_until_complete(broker.stop())
        loop.close()


@pytest.fixture
def fake_frame() -> type[FakeFrame]:
    return FakeFrame
