"""The machine store (express.store): the SQLite implementation on real files, the URL that
chooses it, and the follower that keeps a registry equal to it."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from express.engine.machine import Engine
from express.serve.config import Settings, StateSettings, load_settings
from express.serve.registry import Registry
from express.store import MachineRecord, StoreError, open_store, sqlite_path
from express.store.follower import MachineFollower
from express.store.redis import RedisMachineStore
from express.store.sqlite import SqliteMachineStore

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": True}}}
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:"


def record(name: str, result: int = 1, **kw: Any) -> MachineRecord:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": True}}}
    return MachineRecord(name=name, arn=ARN + name, definition=json.dumps(definition),
                         role_arn="arn:aws:iam::000000000000:role/r", created=1700000000.5, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(params=["sqlite", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    """Each store contract test runs on SQLite and on a real redis-server (tests/store/conftest.py)."""
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    return str(request.param)


Opener = Callable[[pathlib.Path], Awaitable[Any]]


@pytest.fixture
def opened(request: pytest.FixtureRequest) -> Opener:
    """Opens a store at a path (SQLite) or, in a test parametrized by ``kind`` "redis", in the test's
    Redis database under a prefix named after the path: two opens of one path share one store, as two
    workers do."""
    kind = request.getfixturevalue("kind") if "kind" in request.fixturenames else "sqlite"
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""

    async def open_at(path: pathlib.Path) -> Any:
        store: Any = RedisMachineStore(f"{url}?prefix={path.name}:") if url else SqliteMachineStore(path)
        await store.open()
        return store

    return open_at


def test_create_get_update_delete_with_a_growing_change_sequence(tmp_path: pathlib.Path, kind: str, opened: Opener) -> None:
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


def test_every_field_survives_reopening_and_the_file_is_in_wal_mode(tmp_path: pathlib.Path, opened: Opener) -> None:
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


def test_two_processes_worth_of_stores_share_one_sequence_and_one_winner_per_name(tmp_path: pathlib.Path, kind: str, opened: Opener) -> None:
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


_OPEN_AND_CLOSE = """
import asyncio, os, sys
from express.store.sqlite import SqliteMachineStore

async def main():
    store = SqliteMachineStore(sys.argv[1])
    await store.open()
    if sys.argv[2] == "crash":
        os._exit(0)  # a worker that dies holding the file: the next opener recovers the WAL
    await store.close()  # the last connection to close checkpoints and deletes the WAL

asyncio.run(main())
"""


def test_workers_opening_and_closing_one_file_at_once_all_open_it(tmp_path: pathlib.Path) -> None:
    """Workers of one server start (and crash) together: SQLite answers BUSY without waiting while
    another process opens, recovers or last-closes a WAL file, and that must not fail a start."""
    async def main() -> None:
        for round in range(8):  # a new file each round: the first opens race to make it a WAL database
            path = tmp_path / str(round) / "express.db"
            others = [await asyncio.create_subprocess_exec(sys.executable, "-c", _OPEN_AND_CLOSE, str(path),
                                                           "crash" if i % 2 else "close",
                                                           stderr=asyncio.subprocess.PIPE) for i in range(4)]
            for other in others:
                _, err = await other.communicate()
                assert other.returncode == 0, f"round {round}: {err.decode()}"

    run(main())


def test_an_unwritable_folder_is_a_store_error_naming_it(tmp_path: pathlib.Path, opened: Opener) -> None:
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
    redis = open_store(settings("redis://:secret@127.0.0.1:6390/2?prefix=team-a:"))
    assert isinstance(redis, RedisMachineStore) and redis.prefix == "team-a:"
    assert redis.description == "redis://127.0.0.1:6390/2" and "secret" not in redis.description
    assert isinstance(open_store(settings("valkey://127.0.0.1:6390/0")), RedisMachineStore)
    env = {"EXPRESS_STATE_URL": "sqlite:other.db", "EXPRESS_STATE_DIR": str(tmp_path / "d")}
    loaded = load_settings(tmp_path, env=env)
    assert sqlite_path(loaded) == tmp_path / "d" / "other.db"


def test_the_follower_applies_changes_made_elsewhere_and_leaves_the_config_machines_alone(
        tmp_path: pathlib.Path, kind: str, opened: Opener) -> None:
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


def test_retag_is_atomic_per_call_and_a_refusal_writes_nothing(tmp_path: pathlib.Path, kind: str, opened: Opener) -> None:
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


def test_a_name_is_claimed_once_answered_from_the_store_and_fenced_after_its_lease(
        tmp_path: pathlib.Path, kind: str, opened: Opener) -> None:
    async def main() -> None:
        one, two = await opened(tmp_path / "n.db"), await opened(tmp_path / "n.db")  # two owners' views
        try:
            d, other = b"d" * 16, b"o" * 16
            claims = await asyncio.gather(*(s.claim_name("m", "n", d, f"arn-{i}", 1.5, 0.3)
                                            for i, s in enumerate([one, two] * 5)))
            owners = [c for c in claims if c.token > 0]
            assert len(owners) == 1 and owners[0].token == 1
            arn = owners[0].execution_arn
            waiting = [c for c in claims if c.token == 0]
            assert all(c.answer is None and not c.conflict and c.execution_arn == arn for c in waiting)
            assert (await two.claim_name("m", "n", other, "x", 2.0, 0.3)).conflict
            assert (await two.claim_name("m2", "n", d, "y", 2.0, 0.3)).token == 1  # names are per machine
            await asyncio.sleep(0.4)  # the owner stalls past its lease: the name passes on, fenced
            successor = await two.claim_name("m", "n", d, "z", 3.0, 30)
            assert successor.token == 2 and successor.execution_arn == arn and successor.start_date == 1.5
            assert not await one.finish_name("m", "n", 1, b'{"late":1}', 60)  # the stalled owner cannot write
            await one.release_name("m", "n", 1)  # nor forget the name
            answer = '{"output":"a/b \\u00e9 ü \\n \\"q\\" 🚀"}'.encode()  # kept byte for byte, whatever it holds
            assert await two.finish_name("m", "n", 2, answer, 60)
            assert not await two.finish_name("m", "n", 2, b'{"again":1}', 60)
            done = await one.claim_name("m", "n", d, "w", 4.0, 30)
            assert done.token == 0 and done.answer == answer and done.execution_arn == arn
            # released without an answer: a retry runs it; kept answers expire after their retention
            third = await one.claim_name("m", "r", d, "r-1", 5.0, 30)
            await one.release_name("m", "r", third.token)
            assert (await two.claim_name("m", "r", d, "r-2", 6.0, 30)).execution_arn == "r-2"
            assert await two.finish_name("m2", "n", 1, b"{}", 0.2)
            await asyncio.sleep(0.3)
            assert (await one.claim_name("m2", "n", other, "fresh", 7.0, 30)).token == 1
        finally:
            await one.close()
            await two.close()

    run(main())


def test_a_dead_names_helper_fails_its_calls_and_the_next_call_starts_another(tmp_path: pathlib.Path) -> None:
    """SQLite's execution names are written by a helper process of the worker (express.store.sqlite_names)."""
    async def main() -> None:
        store = SqliteMachineStore(tmp_path / "h.db")
        await store.open()
        try:
            d = b"d" * 16
            assert (await store.claim_name("m", "a", d, "arn-a", 1.0, 30)).token == 1
            helper = store._names._transport
            assert helper is not None
            # SIGINT and SIGTERM (a Ctrl-C to the process group, a supervisor's stop) leave it to its worker
            for sig in (signal.SIGINT, signal.SIGTERM):
                os.kill(helper.get_pid(), sig)
            await asyncio.sleep(0.2)
            assert (await store.claim_name("m", "z", d, "arn-z", 1.0, 30)).token == 1
            assert store._names._transport is helper
            os.kill(helper.get_pid(), signal.SIGKILL)
            while store._names._transport is not None:  # its pipes close: the store notices
                await asyncio.sleep(0.01)
            # a new helper: what the dead one wrote is in the file, and new names are claimed
            assert (await store.claim_name("m", "a", d, "arn-again", 2.0, 30)).execution_arn == "arn-a"
            assert (await store.claim_name("m", "b", d, "arn-b", 2.0, 30)).token == 1
            assert store._names._transport is not None and store._names._transport.get_pid() != helper.get_pid()
        finally:
            await store.close()
        with pytest.raises(StoreError, match="not open"):
            await store.claim_name("m", "c", b"d" * 16, "arn-c", 3.0, 30)

    run(main())


def version(number: int) -> dict[str, Any]:
    return {"version": number, "created": 1700000000.0 + number, "description": None, "definition": "{}"}


def test_modify_is_atomic_an_update_keeps_versions_and_aliases_and_a_refusal_writes_nothing(
        tmp_path: pathlib.Path, kind: str, opened: Opener) -> None:
    async def main() -> None:
        a, b = await opened(tmp_path / "v.db"), await opened(tmp_path / "v.db")  # two workers' stores
        try:
            await a.create(record("m"))

            def add(r: MachineRecord) -> MachineRecord:
                number = r.last_version + 1
                return dataclasses.replace(r, versions=[*r.versions, version(number)], last_version=number)

            # versions published through both stores at once: each gets its own number, none is lost
            await asyncio.gather(*(s.modify("m", add) for s in [a, b] * 10))
            stored = await b.get("m")
            assert stored is not None and [v["version"] for v in stored.versions] == list(range(1, 21))
            with_alias = await a.modify("m", lambda r: dataclasses.replace(r, aliases=[
                {"name": "PROD", "routing": [{"version": 3, "weight": 100}]}]))
            assert with_alias is not None and with_alias.seq > stored.seq
            # an UpdateStateMachine's record (stale versions) keeps what the store has
            updated = await b.update(dataclasses.replace(record("m", result=2), versions=[], aliases=[]))
            assert updated is not None and updated.last_version == 20 and len(updated.versions) == 20
            assert updated.aliases == with_alias.aliases and updated.definition == record("m", result=2).definition
            assert await a.get("m") == updated
            changed = (await b.changes(updated.seq - 1))[-1]
            assert changed == updated

            def refuse(r: MachineRecord) -> MachineRecord:
                raise ValueError("conflict")

            with pytest.raises(ValueError):
                await a.modify("m", refuse)
            assert await a.get("m") == updated
            assert await a.modify("absent", add) is None
            await a.delete("m")
            assert await b.modify("m", add) is None
        finally:
            await a.close()
            await b.close()

    run(main())


def test_a_version_1_file_is_upgraded_in_place(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema of SCHEMA_VERSION 1, with one machine
        db.executescript("""
            CREATE TABLE machines (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
                arn TEXT NOT NULL, definition TEXT NOT NULL, role_arn TEXT NOT NULL, type TEXT NOT NULL,
                created REAL NOT NULL, logging TEXT, tracing INTEGER NOT NULL, revision_id TEXT,
                encryption TEXT NOT NULL, refs TEXT NOT NULL, tags TEXT NOT NULL);
            PRAGMA user_version = 1;
        """)
        db.execute("INSERT INTO machines VALUES ('old', 1, 0, ?, '{}', 'r', 'EXPRESS', 1.0, NULL, 0, NULL, "
                   "'{\"type\": \"AWS_OWNED_KEY\"}', '{}', '[]')", (ARN + "old",))

    async def main() -> None:
        store = SqliteMachineStore(path)
        await store.open()
        try:
            old = await store.get("old")
            assert old is not None and old.versions == [] and old.last_version == 0 and old.aliases == []
            published = await store.modify("old", lambda r: dataclasses.replace(r, versions=[version(1)],
                                                                                last_version=1))
            assert published is not None and (await store.get("old")) == published
        finally:
            await store.close()

    run(main())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
