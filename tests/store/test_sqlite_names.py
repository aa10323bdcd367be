"""The SQLite names helper's SQL: the WAL it writes stays bounded under steady writes."""
from __future__ import annotations

import asyncio
import os
import pathlib

import pytest

from express.store import sqlite_names
from express.store.sqlite import SqliteMachineStore
from express.store.sqlite_names import NamesSql


def schema(path: pathlib.Path) -> None:
    async def make() -> None:
        store = SqliteMachineStore(path)
        await store.open()
        await store.close()

    asyncio.run(make())


def test_the_wal_starts_over_under_steady_writes(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that is never idle never lets a PASSIVE checkpoint leave the WAL fully copied when its next
    transaction begins, and the WAL grew for as long as the load lasted: it must start over instead."""
    path = tmp_path / "express.db"
    schema(path)
    monkeypatch.setattr(sqlite_names, "RESTART_AFTER_FRAMES", 64)
    monkeypatch.setattr(sqlite_names, "CHECKPOINT_EVERY_S", 0.005)
    sql = NamesSql(str(path), 5000)
    answer = b"a" * 200
    peak = 0
    try:
        for round_ in range(1000):  # 2,000 transactions, never idle: ~20 MB of WAL if it never started over
            names = [f"n{round_}-{k}" for k in range(4)]
            claims = sql.batch([("claim_name", ("m", n, b"d", f"arn:{n}", 1.0, 300.0)) for n in names])
            assert all(c[0] == 1 for c in claims)
            assert all(sql.batch([("finish_name", ("m", n, 1, answer, 3600.0)) for n in names]))
            sql.restart_wal()  # what the helper's loop does after answering a frame
            peak = max(peak, os.path.getsize(f"{path}-wal"))
        row = sql.db.execute("SELECT answer FROM names WHERE machine = 'm' AND name = 'n999-3'").fetchone()
        assert bytes(row[0]) == answer
    finally:
        sql.close()
    assert peak < 8 * 1024 * 1024, f"the WAL reached {peak} bytes"  # ~30 MB when it never starts over
