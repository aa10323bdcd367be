"""A real HttpServer with the console on 127.0.0.1:0 (its own event loop, in a thread), with an
execution ring and metrics on, and machines that exercise every kind of node and edge.

Imported by the test modules (``from consolesupport import ...``): no conftest.py here, as a
second ``conftest`` module would shadow tests/conftest.py.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from express.console.ring import ExecutionRing
from express.engine.machine import Engine
from express.serve.config import ConsoleSettings
from express.serve.registry import Registry
from tests.http.httpsupport import ServerThread


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

# For the views at logging OFF: the ORDERS graph again ("quiet": no logging configuration, so OFF)
# and a machine whose own TimeoutSeconds ends it ("sleepy").
SLEEPY = {"TimeoutSeconds": 1, "StartAt": "Nap",
          "States": {"Nap": {"Type": "Wait", "Seconds": 30, "Next": "Never"}, "Never": {"Type": "Succeed"}}}
QUIET_MACHINES = {"quiet": ORDERS, "sleepy": SLEEPY}


class ConsoleServer(ServerThread):
    """The HTTP test server with the console's machines and a ring of recent executions."""

    def __init__(self, *, ring_size: int = 20, failed_size: int = 20, credentials: dict[str, str] | None = None,
                 recorder: bool = True, console_token: str = "", extra: dict[str, Any] | None = None) -> None:
        super().__init__(max_duration_s=5.0, credentials=credentials)
        self.extra = dict(extra or {})  # more machines, at the default logging (OFF)
        self.settings = dataclasses.replace(self.settings, console=ConsoleSettings(token=console_token))
        self.ring = ExecutionRing(ring_size, failed_size) if recorder else None

    def build_registry(self) -> Registry:
        engine = Engine(functions=FUNCTIONS, max_duration_s=5.0, metrics=True, recorder=self.ring)
        registry = Registry(engine)
        registry.put("orders", json.dumps(ORDERS), logging=LOG_ALL)
        registry.put("simple", json.dumps(SIMPLE))
        for name, definition in self.extra.items():
            registry.put(name, json.dumps(definition))
        return registry

    def execute(self, machine: str, payload: Any, name: str | None = None) -> Any:
        assert self.registry is not None
        compiled = self.registry.get(machine)
        assert compiled is not None
        return asyncio.run_coroutine_threadsafe(compiled.execute(payload, name=name), self.loop).result(30)

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, _, body = self.request("GET", path, headers=headers)
        return status, json.loads(body)
