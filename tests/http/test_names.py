"""The name table's byte bound: every record counts (running ones too), so long names cannot grow
it past ``max_bytes``; freeing a record (finish + eviction, abandon, expiry) gives its bytes back.
(The HTTP side, with real requests, is in test_http_throttle.py.)"""
from __future__ import annotations

import pytest

from express.http.names import RECORD_OVERHEAD_BYTES, NamesExhausted, NameTable, input_digest

MACHINE = "m" * 80
ARN = "arn:aws:states:us-east-1:000000000000:express:" + "x" * 200


def cost(name: str) -> int:
    return RECORD_OVERHEAD_BYTES + len(MACHINE) + len(name) + len(ARN)


async def test_running_names_count_against_the_bytes() -> None:
    names = [f"{i:03d}" + "n" * 77 for i in range(10)]
    table = NameTable(retention_s=3600, max_names=1_000_000, max_bytes=3 * cost(names[0]))
    d = input_digest({})
    records = [table.claim((MACHINE, n), d, ARN, 1.0) for n in names[:3]]
    assert table.stored_bytes == 3 * cost(names[0]) and table.running == 3
    with pytest.raises(NamesExhausted):  # far below max_names, but the bytes are full of running names
        table.claim((MACHINE, names[3]), d, ARN, 1.0)
    assert len(table) == 3 and table.stored_bytes == 3 * cost(names[0])
    # An abandoned name gives its bytes back at once.
    table.abandon(records[0], RuntimeError("gone"))
    assert table.stored_bytes == 2 * cost(names[0])
    r3 = table.claim((MACHINE, names[3]), d, ARN, 1.0)
    # A finished name's answer does not fit beside 3 records: the finished one is evicted (never a
    # running one), and its place goes to a new name.
    table.finish(records[1], b"a" * 10)
    assert table.evicted_early == 1 and table.lookup((MACHINE, names[1]), d) is None
    assert table.stored_bytes == 2 * cost(names[0]) and table.running == 2
    table.claim((MACHINE, names[4]), d, ARN, 1.0)
    assert table.stored_bytes == 3 * cost(names[0]) and table.running == 3
    assert table.lookup((MACHINE, names[2]), d) is records[2] and table.lookup((MACHINE, names[3]), d) is r3


async def test_answer_bytes_and_expiry() -> None:
    table = NameTable(retention_s=0.0, max_names=10, max_bytes=10 ** 9)
    d = input_digest({"a": 1})
    r = table.claim(("m", "n"), d, "arn", 1.0)
    assert table.stored_bytes == RECORD_OVERHEAD_BYTES + len("m") + len("n") + len("arn")
    table.finish(r, b"x" * 1000)  # retention 0: forgotten when finished
    assert table.stored_bytes == 0 and len(table) == 0

    table = NameTable(retention_s=3600, max_names=10, max_bytes=10 ** 9)
    r = table.claim(("m", "n"), d, "arn", 1.0)
    table.finish(r, b"x" * 1000)
    assert table.stored_bytes == RECORD_OVERHEAD_BYTES + len("m") + len("n") + len("arn") + 1000
    table.retention_s = 0.0
    assert table.purge() == 1 and table.stored_bytes == 0 and len(table) == 0


async def test_a_large_answer_evicts_older_finished_names_but_never_running_ones() -> None:
    base = cost("r")
    table = NameTable(retention_s=3600, max_names=10, max_bytes=3 * base + 100)
    d = input_digest({})
    running = table.claim((MACHINE, "r"), d, ARN, 1.0)
    old = table.claim((MACHINE, "o"), d, ARN, 1.0)
    new = table.claim((MACHINE, "w"), d, ARN, 1.0)
    table.finish(old, b"o" * 50)
    table.finish(new, b"w" * 90)  # 3 * base + 140 > max: the oldest finished goes
    assert table.lookup((MACHINE, "o"), d) is None and table.lookup((MACHINE, "w"), d) is new
    assert table.lookup((MACHINE, "r"), d) is running and table.stored_bytes == 2 * base + 90
