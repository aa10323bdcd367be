"""The machine store (express.store): the SQLite implementation on real files, the URL that
chooses it, and the follower that keeps a registry equal to it."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import pathlib
import sqlite3
from typing import Any

import pytest

from express.engine.machine import Engine
from express.serve.config import Settings, StateSettings, load_settings
from express.serve.registry import Registry
from express.store import MachineRecord, StoreError, open_store, sqlite_path
from express.store.follower import MachineFollower
from express.store.sqlite import SqliteMachineStore

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": True}}}
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:"


def record(name: str, result: int = 1, **kw: Any) -> MachineRecord:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": True}}}
    return MachineRecord(name=name, arn=ARN + name, definition=json.dumps(definition),
                         role_arn="arn:aws:iam::000000000000:role/r", created=1700000000.5, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def opened(path: pathlib.Path) -> SqliteMachineStore:
    store = SqliteMachineStore(path)
    await store.open()
    return store


def test_create_get_update_delete_with_a_growing_change_sequence(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path / "m.db")
        try:
            a, created = await store.create(record("a"))
            assert created and a.seq == 1 and await store.get("a") == a
            again, created = await store.create(record("a", result=2))  # nothing written: the live one answers
            assert not created and again == a and await store.changes(0) == [a]
            b = (await store.create(record("b")))[0]
            updated = await store.update(dataclasses.replace(a, role_arn="arn:aws:iam::000000000000:role/o",
                                                             revision_id="rev-1"))
            assert updated is not None and updated.seq == 3 > b.seq
            assert (await store.get("a")) == updated
            assert await store.update(record("missing")) is None
            tomb = await store.delete("a")
            assert tomb == 4 and await store.get("a") is None and await store.delete("a") is None
            assert [(r.name, r.seq, r.deleted) for r in await store.changes(1)] == [("b", 2, False),
                                                                                   ("a", 4, True)]
            assert await store.update(updated) is None  # a deleted machine is not updated back to life
            recreated, created = await store.create(record("a", result=3))
            assert created and recreated.seq == 5 and json.loads(recreated.definition)["States"]["P"]["Result"] == 3
            assert [r.seq for r in await store.changes(0, limit=2)] == [2, 5]
        finally:
            await store.close()
            await store.close()  # idempotent

    run(main())


def test_every_field_survives_reopening_and_the_file_is_in_wal_mode(tmp_path: pathlib.Path) -> None:
    full = record("full", type="STANDARD", logging={"level": "ALL", "includeExecutionData": True, "destinations": [
        {"cloudWatchLogsLogGroup": {"logGroupArn": "arn:aws:logs:us-east-1:0:log-group:g:*"}}]}, tracing=True,
        revision_id="r-1", encryption={"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": "k"},
        references={"Wait": ["waitTime"]}, tags=[{"key": "team", "value": "x"}])

    async def write() -> MachineRecord:
        store = await opened(tmp_path / "state" / "m.db")  # the folder is made
        try:
            return (await store.create(full))[0]
        finally:
            await store.close()

    async def read() -> Any:
        store = await opened(tmp_path / "state" / "m.db")
        try:
            return await store.get("full")
        finally:
            await store.close()

    stored = run(write())
    assert run(read()) == stored == dataclasses.replace(full, seq=1)
    with sqlite3.connect(tmp_path / "state" / "m.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_processes_worth_of_stores_share_one_sequence_and_one_winner_per_name(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        one, two = await opened(tmp_path / "m.db"), await opened(tmp_path / "m.db")
        try:
            results = await asyncio.gather(*(s.create(record("same", result=i))
                                             for i, s in enumerate([one, two] * 10)))
            assert sum(created for _, created in results) == 1
            winner = next(r for r, created in results if created)
            assert all(r == winner for r, _ in results)
            seqs = []
            for i in range(10):
                seqs.append((await (one if i % 2 else two).create(record(f"m{i}")))[0].seq)
            assert seqs == sorted(seqs) and len(set(seqs)) == 10 and seqs[0] > winner.seq
            assert [r.seq for r in await one.changes(0)] == [r.seq for r in await two.changes(0)]
        finally:
            await one.close()
            await two.close()

    run(main())


def test_an_unwritable_folder_is_a_store_error_naming_it(tmp_path: pathlib.Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=r"file/sub/m\.db: cannot open the state store.*EXPRESS_STATE_DIR"):
        run(opened(tmp_path / "file" / "sub" / "m.db"))
    with pytest.raises(StoreError, match="not open"):
        run(SqliteMachineStore(tmp_path / "x.db").get("a"))


def test_the_url_chooses_the_store(tmp_path: pathlib.Path) -> None:
    def settings(url: str = "", dir: str = "") -> Settings:
        return Settings(config_dir=str(tmp_path / "config"), state=StateSettings(url=url, dir=dir))

    assert sqlite_path(settings()) == tmp_path / "config" / "state" / "express.db"
    assert sqlite_path(settings(dir=str(tmp_path / "s"))) == tmp_path / "s" / "express.db"
    assert sqlite_path(settings("sqlite:x.db", str(tmp_path / "s"))) == tmp_path / "s" / "x.db"
    assert sqlite_path(settings(f"sqlite://{tmp_path}/abs.db")) == tmp_path / "abs.db"
    with pytest.raises(StoreError, match="ABSOLUTE"):
        sqlite_path(settings("sqlite://relative.db"))
    assert isinstance(open_store(settings()), SqliteMachineStore)
    assert open_store(settings("memory:")) is None
    with pytest.raises(StoreError, match=r"^\[state\] url: redis:// state stores are not implemented yet"):
        open_store(settings("redis://127.0.0.1:6379/0"))
    env = {"EXPRESS_STATE_URL": "sqlite:other.db", "EXPRESS_STATE_DIR": str(tmp_path / "d")}
    loaded = load_settings(tmp_path, env=env)
    assert sqlite_path(loaded) == tmp_path / "d" / "other.db"


def test_the_follower_applies_changes_made_elsewhere_and_leaves_the_config_machines_alone(
        tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        writer, mine = await opened(tmp_path / "m.db"), await opened(tmp_path / "m.db")
        registry = Registry(Engine())
        registry.put("configured", json.dumps(PASS)).from_config = True
        logs: list[str] = []
        await writer.create(record("configured", result=9))  # shadowed by the file
        await writer.create(record("early", result=1))
        follower = MachineFollower(mine, registry, interval_s=0.05, log=logs.append)
        await follower.start()
        await follower.start()
        try:
            assert sorted(registry) == ["configured", "early"] and registry.entry("early").seq == 2  # type: ignore[union-attr]
            assert (await registry.get("configured").execute({})).output == 1  # type: ignore[union-attr]
            assert any("'configured'" in line and "shadowed" in line for line in logs)
            late = (await writer.create(record("late", result=5, tags=[{"key": "k", "value": "v"}])))[0]
            await follower.catch_up()  # what was committed before the call is applied by it
            entry = registry.entry("late")
            assert entry is not None and entry.seq == late.seq and entry.tags == [{"key": "k", "value": "v"}]
            assert (await entry.machine.execute({})).output == 5
            await writer.update(dataclasses.replace(late, definition=record("late", result=6).definition))
            await writer.delete("early")
            await writer.delete("configured")
            for _ in range(200):  # the owned task applies them without being asked (at most 1 s)
                if "early" not in registry and registry.entry("late").seq > late.seq:  # type: ignore[union-attr]
                    break
                await asyncio.sleep(0.01)
            assert "early" not in registry and "configured" in registry
            assert (await registry.get("late").execute({})).output == 6  # type: ignore[union-attr]
        finally:
            await follower.stop()
            await follower.stop()
            await writer.close()
            await mine.close()

    run(main())


def test_retag_is_atomic_per_call_and_a_refusal_writes_nothing(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        a, b = await opened(tmp_path / "s.db"), await opened(tmp_path / "s.db")  # two workers' stores
        try:
            await a.create(record("m", tags=[{"key": "x", "value": "0"}]))
            # concurrent additions through both stores: none is lost
            await asyncio.gather(*(s.retag("m", lambda tags, i=i: [*tags, {"key": f"k{i}", "value": ""}])
                                   for i, s in enumerate([a, b] * 10)))
            stored = await b.get("m")
            assert stored is not None and len(stored.tags) == 21
            before = stored.seq

            def refuse(tags: list[dict[str, str]]) -> list[dict[str, str]]:
                raise ValueError("too many")

            with pytest.raises(ValueError):
                await a.retag("m", refuse)
            after = await a.get("m")
            assert after is not None and after.seq == before and len(after.tags) == 21
            changed = (await b.changes(before - 1))[-1]
            assert changed.name == "m" and changed.tags == stored.tags
            assert await a.retag("absent", lambda tags: tags) is None
        finally:
            await a.close()
            await b.close()

    run(main())
