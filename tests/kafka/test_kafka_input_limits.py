"""What the Kafka worker dead-letters as input (express.asl.limits), against the real broker: records
nested deeper than can be written (reason ``too-deep``) and integers orjson would turn into floats
(``number-out-of-range``); the records around them run as usual."""
from __future__ import annotations

import orjson
from kafka_helpers import Outcomes, committed, create_topics, make, running_worker, send_with_headers, unique

from express.asl.limits import MAX_DEPTH

ECHO = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
WRAP = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"x.$": "$"}, "End": True}}}
BIG = b"123456789012345678901234567890"


def deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


async def test_too_deep_and_out_of_range_records_go_to_the_dlq(bootstrap, tmp_path):
    """The bug: a record nested 254+ levels ran and ended FAILED "Internal error ... Recursion limit
    reached" (or, at 254, its result could not be written); 123456789012345678901234567890 became
    1.2345678901234568e+29."""
    topic = unique("limits")
    settings, registry = make(tmp_path, {"echo": ECHO, "wrap": WRAP}, {topic: "echo"})
    await create_topics(bootstrap, topic)
    header = settings.kafka.machine_header
    edges = b'{"max": 18446744073709551615, "min": -9223372036854775808, "s": "%s"}' % BIG
    items = [
        (b"at-limit", deep(MAX_DEPTH), []),
        (b"one-over", deep(MAX_DEPTH + 1), []),
        (b"far-over", deep(1000), []),
        (b"beyond-parser", b"[" * 1100 + b"]" * 1100, []),
        (b"big", b'{"n": [1, %s]}' % BIG, []),
        (b"negative", b'{"n": -9223372036854775809}', []),
        (b"edges", edges, []),
        (b"wrapped", deep(MAX_DEPTH), [(header, b"wrap")]),  # the state's output would be 254 deep
        (b"last", b'{"ok": true}', []),
    ]
    async with running_worker(settings, registry, bootstrap) as worker:
        await send_with_headers(bootstrap, topic, items)
        async with Outcomes(bootstrap, topic) as out:
            await out.wait_total(len(items), 30)
            await out.poll(0.3)
    assert out.total == len(items)
    dlq = {r.key: r for r in out.records[topic + ".dlq"]}
    reasons = {k: dict(r.headers)["express-dlq-reason"] for k, r in dlq.items()}
    assert reasons == {b"one-over": b"too-deep", b"far-over": b"too-deep", b"beyond-parser": b"too-deep",
                       b"big": b"number-out-of-range", b"negative": b"number-out-of-range"}
    details = {k: dict(r.headers)["express-dlq-detail"].decode() for k, r in dlq.items()}
    assert details[b"one-over"].startswith("the record value nests arrays and objects more than 253 levels deep: "
                                           "the value at /a/a/a/")
    assert details[b"one-over"].endswith("is at depth 254, and the limit is 253")
    assert details[b"beyond-parser"] == ("the record value nests arrays and objects more than 1024 levels deep "
                                         "(from character 1025), and the limit is 253")
    assert details[b"big"] == ("the record value holds the integer 123456789012345678901234567890 at /n/1, outside "
                               "the range -9223372036854775808 to 18446744073709551615 that is kept exactly; "
                               "give it as a string")
    assert dlq[b"far-over"].value == deep(1000)  # the original bytes, unchanged
    results = {r.key: orjson.loads(r.value) for r in out.records[topic + ".results"]}
    assert set(results) == {b"at-limit", b"edges", b"last"}
    assert results[b"edges"]["output"] == orjson.loads(edges)
    assert b'"max":18446744073709551615' in next(r.value for r in out.records[topic + ".results"] if r.key == b"edges")
    failures = {r.key: orjson.loads(r.value) for r in out.records[topic + ".failures"]}
    assert set(failures) == {b"wrapped"}
    assert failures[b"wrapped"]["error"] == "States.Runtime"
    assert "more than 253 levels deep" in failures[b"wrapped"]["cause"]
    assert worker.dead_lettered == 5
    assert (await committed(bootstrap, worker.group_id, topic))[0] == len(items)
