"""The networked store: Redis or Valkey (redis-py's asyncio client), shared by every worker of every
server that names the same ``[state] url`` (``redis://HOST:PORT/DB``, ``rediss://`` for TLS; an optional
``?prefix=NAME:`` keeps several deployments apart in one database, default ``express:``).

Layout, under the prefix: ``machine:NAME`` is a hash (``record``: the machine as JSON, ``seq``, ``deleted``),
``seq`` the store-wide change counter, ``changes`` a sorted set of names scored by the sequence of their
last write. Every write is one Lua script (atomic on the server: the live check, the next sequence, the
record and its place in ``changes``), so two servers creating one name produce one winner, and a reader's
``changes(after)`` (one script too) never sees a later write without the earlier ones.

Durability is Redis's: run it with ``appendonly yes`` (every write fsynced each second by default) for
machines that survive a Redis restart.
"""
from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson

from express.store import MachineRecord, MachineStore, NameClaim, StoreError
from express.store.batching import Batcher, Call

DEFAULT_PREFIX = "express:"
RETAG_ATTEMPTS = 100  # optimistic retries of a change (tags, versions, an update) that raced another write of it

# KEYS: machine hash, seq counter, changes zset. ARGV: mode (create|update|delete), record JSON, name.
# Returns {seq, record, stored seq} (create of a live name: {0, its record, its seq}); {0} when nothing applies.
_WRITE = """
local deleted = redis.call('HGET', KEYS[1], 'deleted')
local live = deleted == '0'
local mode = ARGV[1]
if mode == 'create' then
  if live then
    return {0, redis.call('HGET', KEYS[1], 'record'), redis.call('HGET', KEYS[1], 'seq')}
  end
elseif not live then
  return {0}
end
local seq = redis.call('INCR', KEYS[2])
if mode == 'delete' then
  redis.call('HSET', KEYS[1], 'seq', seq, 'deleted', '1')
else
  redis.call('HSET', KEYS[1], 'record', ARGV[2], 'seq', seq, 'deleted', '0')
end
redis.call('ZADD', KEYS[3], seq, ARGV[3])
return {seq}
"""

# KEYS: machine hash, seq counter, changes zset. ARGV: the seq the change was computed from, record JSON,
# name. Returns the new seq, 0 when the machine is not live, -1 when it changed meanwhile (try again).
_RETAG = """
if redis.call('HGET', KEYS[1], 'deleted') ~= '0' then return 0 end
if redis.call('HGET', KEYS[1], 'seq') ~= ARGV[1] then return -1 end
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'seq', seq)
redis.call('ZADD', KEYS[3], seq, ARGV[3])
return seq
"""

# KEYS: changes zset. ARGV: after, limit, the machine key prefix. Returns {name, seq, deleted, record}...
_CHANGES = """
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, name in ipairs(names) do
  local h = redis.call('HMGET', ARGV[3] .. name, 'seq', 'deleted', 'record')
  table.insert(out, name)
  table.insert(out, h[1])
  table.insert(out, h[2])
  table.insert(out, h[3])
end
return out
"""

# Execution names: one script per batch of calls (one command to pack and parse, not one per call).
# KEYS: each call's name hash, in order; ARGV[1]: the calls as JSON, each a list of strings:
#   {"c", digest (hex), arn, start, lease_s, retention_s} claim, {"f", token, answer, retention_s}
#   finish, {"r", token} release. Returns the results as JSON, in order. Times by the Redis server's
# clock (one clock for every host). The calls apply in order, the whole batch atomically.
_NAMES = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local calls = cjson.decode(ARGV[1])
local out = {}
for i, c in ipairs(calls) do
  local key = KEYS[i]
  if c[1] == 'c' then
    local lease = tonumber(c[5])
    local h = redis.call('HMGET', key, 'digest', 'token', 'arn', 'start', 'lease', 'answer')
    if not h[1] then
      redis.call('HSET', key, 'digest', c[2], 'token', 1, 'arn', c[3], 'start', c[4], 'lease', now + lease)
      redis.call('PEXPIRE', key, math.ceil((lease + tonumber(c[6])) * 1000))
      out[i] = {'claimed', 1, c[3], c[4]}
    elseif h[1] ~= c[2] then
      out[i] = {'conflict', 0, h[3], h[4]}
    elseif h[6] then
      out[i] = {'answer', 0, h[3], h[4], h[6]}
    elseif tonumber(h[5]) > now then
      out[i] = {'running', 0, h[3], h[4]}
    else
      local token = tonumber(h[2]) + 1
      redis.call('HSET', key, 'token', token, 'lease', now + lease)
      redis.call('PEXPIRE', key, math.ceil((lease + tonumber(c[6])) * 1000))
      out[i] = {'claimed', token, h[3], h[4]}
    end
  elseif c[1] == 'f' then
    if redis.call('HGET', key, 'token') ~= c[2] or redis.call('HEXISTS', key, 'answer') == 1 then
      out[i] = 0
    else
      redis.call('HSET', key, 'answer', c[3], 'lease', 0)
      redis.call('PEXPIRE', key, math.ceil(tonumber(c[4]) * 1000))
      out[i] = 1
    end
  else
    if redis.call('HGET', key, 'token') == c[2] and redis.call('HEXISTS', key, 'answer') == 0 then
      redis.call('DEL', key)
    end
    out[i] = 0
  end
end
return cjson.encode(out)
"""


def _encode(record: MachineRecord) -> str:
    fields = dataclasses.asdict(record)
    del fields["seq"], fields["deleted"]
    return orjson.dumps(fields).decode()


def _decode(text: str | bytes, seq: int, deleted: bool) -> MachineRecord:
    return MachineRecord(**orjson.loads(text), seq=seq, deleted=deleted)


class RedisMachineStore(MachineStore):
    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        self.prefix = query.pop("prefix", [DEFAULT_PREFIX])[0]
        self.url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        self.description = f"{parts.scheme}://{host}{parts.path}"  # never the password
        self._seq_key = self.prefix + "seq"
        self._changes_key = self.prefix + "changes"
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._names = Batcher(self._names_batch)  # concurrent name calls share one script's round trip

    def _key(self, name: str) -> str:
        return f"{self.prefix}machine:{name}"

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        if self._client is None:
            raise StoreError(f"{self.description}: the store is not open")
        from redis.exceptions import RedisError

        try:
            return await self._scripts[script](keys=keys, args=args)
        except RedisError as e:
            raise StoreError(f"{self.description}: {type(e).__name__}: {e}") from None

    async def open(self) -> None:
        if self._client is not None:
            return
        try:
            import redis.asyncio as redis
            from redis.exceptions import RedisError
        except ImportError:
            raise StoreError("[state] url: a redis:// store needs redis-py: pip install 'express-sfn[redis]'") from None
        client = redis.Redis.from_url(self.url, decode_responses=True)
        try:
            await client.ping()
        except (RedisError, OSError, ValueError) as e:
            await client.aclose()
            raise StoreError(f"[state] url: cannot reach the state store {self.description}: {e}") from None
        self._scripts = {"write": client.register_script(_WRITE), "retag": client.register_script(_RETAG),
                         "changes": client.register_script(_CHANGES), "names": client.register_script(_NAMES)}
        self._client = client

    async def close(self) -> None:
        await self._names.aclose()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _write(self, mode: str, name: str, text: str = "") -> list[Any]:
        result: list[Any] = await self._run("write", [self._key(name), self._seq_key, self._changes_key],
                                            [mode, text, name])
        return result

    async def create(self, record: MachineRecord) -> tuple[MachineRecord, bool]:
        result = await self._write("create", record.name, _encode(record))
        if int(result[0]) == 0:
            return _decode(result[1], int(result[2]), False), False
        return dataclasses.replace(record, seq=int(result[0]), deleted=False), True

    async def update(self, record: MachineRecord) -> MachineRecord | None:
        return await self.modify(record.name, lambda current: dataclasses.replace(
            record, versions=current.versions, last_version=current.last_version, aliases=current.aliases))

    async def modify(self, name: str, change: Callable[[MachineRecord], MachineRecord]) -> MachineRecord | None:
        for _ in range(RETAG_ATTEMPTS):
            current = await self.get(name)
            if current is None:
                return None
            new = change(current)
            # the retag script writes any record, provided the machine was not written meanwhile
            seq = int(await self._run("retag", [self._key(name), self._seq_key, self._changes_key],
                                      [str(current.seq), _encode(new), name]))
            if seq > 0:
                return dataclasses.replace(new, seq=seq, deleted=False)
            if seq == 0:
                return None
        raise StoreError(f"{self.description}: the machine '{name}' kept changing; tried {RETAG_ATTEMPTS} times")

    async def delete(self, name: str) -> int | None:
        seq = int((await self._write("delete", name))[0])
        return seq or None

    async def retag(self, name: str, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]
                    ) -> MachineRecord | None:
        for _ in range(RETAG_ATTEMPTS):
            current = await self.get(name)
            if current is None:
                return None
            tags = change(list(current.tags))
            updated = dataclasses.replace(current, tags=tags)
            seq = int(await self._run("retag", [self._key(name), self._seq_key, self._changes_key],
                                      [str(current.seq), _encode(updated), name]))
            if seq > 0:
                return dataclasses.replace(updated, seq=seq)
            if seq == 0:
                return None
        raise StoreError(f"{self.description}: the tags of '{name}' kept changing; tried {RETAG_ATTEMPTS} times")

    async def get(self, name: str) -> MachineRecord | None:
        if self._client is None:
            raise StoreError(f"{self.description}: the store is not open")
        from redis.exceptions import RedisError

        try:
            seq, deleted, text = await self._client.hmget(self._key(name), "seq", "deleted", "record")
        except RedisError as e:
            raise StoreError(f"{self.description}: {type(e).__name__}: {e}") from None
        if deleted != "0" or text is None:
            return None
        return _decode(text, int(seq), False)

    async def changes(self, after: int, limit: int = 1000) -> list[MachineRecord]:
        flat = await self._run("changes", [self._changes_key], [str(after), str(limit), self.prefix + "machine:"])
        out = []
        for i in range(0, len(flat), 4):
            _name, seq, deleted, text = flat[i:i + 4]
            if text is not None:
                out.append(_decode(text, int(seq), deleted == "1"))
        return out

    # ------------------------------------------------------------------ execution names
    def _name_key(self, machine: str, name: str) -> str:
        return f"{self.prefix}name:{len(machine)}:{machine}:{name}"  # the length: no two pairs share a key

    @staticmethod
    def _name_call(op: str, machine: str, name: str, *args: Any) -> list[str]:
        """One execution-name call as the names script reads it."""
        if op == "claim_name":
            digest, arn, start, lease = args
            # the retention is not known yet: a claimed key outlives its lease by an hour at most,
            # then finish_name sets the real retention
            return ["c", digest.hex(), arn, repr(start), repr(lease), "3600"]
        if op == "finish_name":
            token, answer, retention = args
            return ["f", str(token), answer.decode(), repr(retention)]
        (token,) = args
        return ["r", str(token)]

    @staticmethod
    def _name_result(op: str, raw: Any) -> Any:
        if op == "claim_name":
            kind, token, arn, start, *answer = raw
            return NameClaim(token=int(token), execution_arn=arn, start_date=float(start), conflict=kind == "conflict",
                             answer=answer[0].encode() if kind == "answer" else None)
        if op == "finish_name":
            return bool(raw)
        return None

    async def _names_batch(self, calls: list[Call]) -> list[Any]:
        """Execution-name calls in one script: one command, one round trip, atomic as a whole."""
        if self._client is None:
            raise StoreError(f"{self.description}: the store is not open")
        from redis.exceptions import RedisError

        keys = [self._name_key(args[0], args[1]) for _, args in calls]
        payload = orjson.dumps([self._name_call(op, *args) for op, args in calls]).decode()
        try:
            raw = await self._scripts["names"](keys=keys, args=[payload])
        except RedisError as e:
            raise StoreError(f"{self.description}: {type(e).__name__}: {e}") from None
        return [self._name_result(op, r) for (op, _), r in zip(calls, orjson.loads(raw), strict=True)]
