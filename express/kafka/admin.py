"""Small helpers around aiokafka's admin client: partition counts, and topic creation."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError


@contextlib.asynccontextmanager
async def _admin(bootstrap: str, timeout_s: float, kw: Mapping[str, Any]) -> AsyncIterator[AIOKafkaAdminClient]:
    kw = dict(kw)
    kw.setdefault("client_id", "express-admin")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **kw)
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        yield admin
    finally:
        with contextlib.suppress(KafkaError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(admin.close(), timeout_s)


async def _counts(admin: AIOKafkaAdminClient, topics: Iterable[str], timeout_s: float) -> dict[str, int]:
    existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
    wanted = [t for t in topics if t in existing]
    counts: dict[str, int] = {}
    if wanted:
        for entry in await asyncio.wait_for(admin.describe_topics(wanted), timeout_s):
            name = entry.get("topic")
            if isinstance(name, str) and not entry.get("error_code"):
                counts[name] = len(entry.get("partitions") or [])
    return counts


async def partition_counts(bootstrap: str, topics: Iterable[str], *, timeout_s: float = 20.0,
                           **client_kw: Any) -> dict[str, int]:
    """Partition count of each of ``topics`` that exists (missing topics are left out)."""
    async with _admin(bootstrap, timeout_s, client_kw) as admin:
        return await _counts(admin, topics, timeout_s)


async def ensure_topics(bootstrap: str, topics: Mapping[str, int], *, timeout_s: float = 20.0,
                        **client_kw: Any) -> dict[str, int]:
    """Create each missing topic with the given partition count (replication factor 1); topics
    that exist keep theirs. Returns the partition count of every requested topic."""
    async with _admin(bootstrap, timeout_s, client_kw) as admin:
        existing = await _counts(admin, topics, timeout_s)
        missing = [NewTopic(name, num_partitions=n, replication_factor=1)
                   for name, n in topics.items() if name not in existing]
        if not missing:
            return existing
        with contextlib.suppress(TopicAlreadyExistsError):
            await asyncio.wait_for(admin.create_topics(missing), timeout_s)
        return await _counts(admin, topics, timeout_s)
