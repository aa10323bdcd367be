"""billingDetails of Kafka outcomes are the engine's billing of the execution: the same figures as its
usage record, by AWS's Express formula (express-spec.md 2.6), on the real broker."""
from __future__ import annotations

from typing import Any

import orjson
from kafka_helpers import Outcomes, create_topics, running_worker, send, unique, write_config

from express.engine.machine import Engine
from express.observe.sinks import MemorySink
from express.serve.config import load_settings
from express.serve.registry import Registry
from tests.support import MAP_OF_PARALLELS, aws_billing


async def test_outcome_billing_matches_the_usage_record_and_aws(bootstrap: str, tmp_path: Any) -> None:
    topic = unique("billing")
    settings = load_settings(write_config(tmp_path, {"mapped": MAP_OF_PARALLELS}, {topic: "mapped"}), env={})
    usage = MemorySink()
    registry = Registry(Engine(max_duration_s=settings.engine.max_duration_s, usage_sink=usage))
    registry.put("mapped", MAP_OF_PARALLELS)
    await create_topics(bootstrap, topic)
    # ~200 KB records; the outcome used to bill the input once (64 MB) for every one of them
    items = {0: 0, 1: 10, 2: 100, 3: 100}
    values = [orjson.dumps({"i": i, "items": list(range(n)), "pad": "x" * 200_000}) for i, n in items.items()]
    async with running_worker(settings, registry, bootstrap):
        await send(bootstrap, topic, values)
        async with Outcomes(bootstrap, topic) as out:
            await out.wait_total(len(values), 60)
    docs = out.docs("results")
    assert len(docs) == len(values) and not out.docs("failures")
    records = {r["executionName"]: r for r in map(orjson.loads, usage.records)}
    definition_bytes = len(orjson.dumps(MAP_OF_PARALLELS))
    billed_mb = {}
    for doc in docs:
        i = doc["output"]["i"]
        expected = aws_billing(doc["stopDate"] - doc["startDate"], definition_bytes, len(values[i]), 1 + items[i])
        assert doc["billingDetails"] == expected, i
        record = records[doc["executionName"]]
        assert {"billedDurationInMilliseconds": record["billedDurationMs"],
                "billedMemoryUsedInMB": record["billedMemoryMB"]} == doc["billingDetails"], i
        assert record["mode"] == "async"
        billed_mb[i] = expected["billedMemoryUsedInMB"]
    assert billed_mb == {0: 64, 1: 64, 2: 128, 3: 128}
