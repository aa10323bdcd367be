"""A real HttpServer with the console on 127.0.0.1:0 (its own event loop, in a thread), with an
execution ring and metrics on, and machines that exercise every kind of node and edge.

Imported by the test modules (``from consolesupport import ...``): no conftest.py here, as a
second ``conftest`` module would shadow tests/conftest.py.
"""
from __future__ import annotations

import asyncio
import gc
import http.client
import json
import threading
from typing import Any

from express.config import EngineSettings, HttpSettings, Settings
from express.console.ring import ExecutionRing
from express.engine import Engine
from express.http import HttpServer
from express.registry import Registry


class PaymentDeclined(Exception):
    pass


class CardExpired(Exception):
    pass


def charge(event: Any) -> Any:
    card = event.get("card") if isinstance(event, dict) else None
    if card == "declined":
        raise PaymentDeclined("the bank said no")
    if card == "expired":
        raise CardExpired("card 4242 expired in 01/2020")
    return {"charged": True}


def item(event: Any) -> Any:
    return {"item": event, "done": True}


def ship(event: Any) -> Any:
    return {"shipped": True}


FUNCTIONS = {"charge": charge, "item": item, "ship": ship}

# Choice (2 rules + Default), a Task with a Catch, a Map with an item processor, a Parallel with two
# branches and a Catch, a Fail and a Succeed.
ORDERS = {
    "Comment": "Orders: every kind of node and edge",
    "StartAt": "Validate",
    "States": {
        "Validate": {"Type": "Pass", "Next": "Route"},
        "Route": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.kind", "StringEquals": "bulk", "Next": "Fanout"},
                {"Variable": "$.kind", "StringEquals": "split", "Next": "Both"},
            ],
            "Default": "Charge",
        },
        "Charge": {"Type": "Task", "Resource": "charge", "Next": "Done",
                   "Catch": [{"ErrorEquals": ["PaymentDeclined"], "Next": "Declined"}]},
        "Fanout": {"Type": "Map", "ItemsPath": "$.items", "Next": "Done",
                   "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Item",
                                     "States": {"Item": {"Type": "Task", "Resource": "item", "End": True}}}},
        "Both": {"Type": "Parallel", "Next": "Done",
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Declined"}],
                 "Branches": [
                     {"StartAt": "Ship", "States": {"Ship": {"Type": "Task", "Resource": "ship", "End": True}}},
                     {"StartAt": "Notify", "States": {"Notify": {"Type": "Pass", "End": True}}},
                 ]},
        "Declined": {"Type": "Fail", "Error": "OrderDeclined", "Cause": "payment declined"},
        "Done": {"Type": "Succeed"},
    },
}
# What the console must draw for ORDERS.
ORDERS_STATES = 10  # 7 at the top, Item, Ship, Notify
ORDERS_GROUPS = 3  # the Map's item processor, the Parallel's two branches
ORDERS_TERMINALS = 2  # Start, End
ORDERS_EDGES = {"start": 1, "next": 4, "choice": 2, "default": 1, "catch": 2, "end": 2}

SIMPLE = {"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "Result": "hi", "End": True}}}

LOG_ALL = {"level": "ALL", "includeExecutionData": True}


class ConsoleServer:
    def __init__(self, *, ring_size: int = 20, failed_size: int = 20, credentials: dict[str, str] | None = None,
                 recorder: bool = True) -> None:
        self.settings = Settings(engine=EngineSettings(max_duration_s=5.0),
                                 http=HttpSettings(host="127.0.0.1", port=0))
        self.ring = ExecutionRing(ring_size, failed_size) if recorder else None
        self.credentials = credentials
        self.loop = asyncio.new_event_loop()
        self.server: HttpServer | None = None
        self.registry: Registry | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        engine = Engine(functions=FUNCTIONS, max_duration_s=5.0, metrics=True, recorder=self.ring)
        self.registry = Registry(engine)
        self.registry.put("orders", json.dumps(ORDERS), logging=LOG_ALL)
        self.registry.put("simple", json.dumps(SIMPLE))
        self.server = HttpServer(self.settings, self.registry, host="127.0.0.1", port=0,
                                 credentials=self.credentials)
        self.loop.run_until_complete(self.server.start())
        self._ready.set()
        self.loop.run_forever()
        self.server = None
        self.registry = None
        gc.collect()

    def start(self) -> ConsoleServer:
        self._thread.start()
        assert self._ready.wait(10), "server did not start"
        return self

    def stop(self) -> None:
        if self.server is not None and not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(60)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def execute(self, machine: str, payload: Any) -> Any:
        assert self.registry is not None
        compiled = self.registry.get(machine)
        assert compiled is not None
        return asyncio.run_coroutine_threadsafe(compiled.execute(payload), self.loop).result(30)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, _, body = self.request("GET", path, headers=headers)
        return status, json.loads(body)

    def api(self, op: str, payload: Any) -> tuple[int, Any]:
        h = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AWSStepFunctions.{op}"}
        status, _, data = self.request("POST", "/", json.dumps(payload).encode(), h)
        return status, json.loads(data)
