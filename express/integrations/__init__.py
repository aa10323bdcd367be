"""Task resources that call services: the HTTP Task (``http:invoke``), AWS SDK and optimized AWS
integrations (aiobotocore), Kafka produce (``arn:express:::kafka:produce``), other machines of this
server (``states:startExecution``), and the S3 readers and writers of a Distributed Map.

:class:`Integrations` is the engine's :class:`express.engine.tasks.ResourceProvider`: the compiler asks it
for an invoker of each Task resource no function is bound to. It owns the clients it opens (pooled, one
per service per worker, created on first use on the running loop) and closes them in :meth:`aclose`.

May import :mod:`express.asl`, :mod:`express.engine` and :mod:`express.observe`; nothing imports an I/O
library before a Task first needs it, so ``import express`` stays light.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from express.engine.tasks import Invoker, ItemReader, ResultWriter

KAFKA_PRODUCE = "arn:express:::kafka:produce"
_STATES = re.compile(r"^arn:aws[\w-]*:states:::(?P<service>[^:]+):(?P<rest>.+)$")
_LAMBDA_FUNCTION = re.compile(r"^arn:aws[\w-]*:lambda:[^:]*:\d{12}:function:[^:]+(?::[^:]+)?$")

# service part of arn:aws:states:::SERVICE:... -> the module that builds its invokers
_MODULES: dict[str, str] = {
    "http": "express.integrations.http_invoke",
    "aws-sdk": "express.integrations.aws_sdk",
    "lambda": "express.integrations.optimized",
    "sqs": "express.integrations.optimized",
    "sns": "express.integrations.optimized",
    "dynamodb": "express.integrations.optimized",
    "events": "express.integrations.optimized",
    "states": "express.integrations.local_machines",
}


@dataclass(frozen=True)
class AwsSettings:
    """Where AWS calls go beyond botocore's standard configuration (``AWS_ENDPOINT_URL``,
    ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, profiles, the credential
    chain, which always apply): ``[aws]`` in express.toml."""

    region: str | None = None
    endpoint_url: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)  # service -> endpoint URL
    profile: str | None = None


def kind(resource: str) -> str:
    """The integration kind of a Task resource, for metrics (low cardinality: never a full ARN):
    ``lambda``, ``http``, ``aws-sdk``, ``sqs``, ``dynamodb``, …, ``kafka``, ``states``, ``function``."""
    if resource == KAFKA_PRODUCE:
        return "kafka"
    m = _STATES.match(resource)
    if m is not None:
        return m.group("service")
    if _LAMBDA_FUNCTION.match(resource):
        return "lambda"
    return "function"


class Integrations:
    """The service integrations of one worker (see the module docstring).

    ``machines``: answers ``machine(arn)`` with a compiled :class:`express.engine.Machine` of this server
    (``states:startExecution``); ``kafka``: the worker's producer handle (``arn:express:::kafka:produce``);
    ``connections``: ``ConnectionArn`` -> connection settings of the HTTP Task."""

    def __init__(self, *, aws: AwsSettings | None = None, connections: Mapping[str, Any] | None = None,
                 machines: Any = None, kafka: Any = None) -> None:
        self.aws_settings = aws if aws is not None else AwsSettings()
        self.connections = dict(connections or {})
        self.machines = machines
        self.kafka = kafka
        self._state: dict[str, Any] = {}  # per-module pooled clients, by module name

    def invoker(self, resource: str) -> Invoker | None:
        """The invoker of ``resource``, or None if no integration runs it; ValueError (with the message
        the definition's validation reports) for a resource an integration knows but cannot bind."""
        if resource == KAFKA_PRODUCE:
            module = "express.integrations.kafka_produce"
        elif _LAMBDA_FUNCTION.match(resource):
            module = "express.integrations.optimized"
        else:
            m = _STATES.match(resource)
            if m is None or m.group("service") not in _MODULES:
                return None
            module = _MODULES[m.group("service")]
        build = importlib.import_module(module).build
        invoker: Invoker | None = build(resource, self)
        return invoker

    def item_reader(self, resource: str, reader_config: dict[str, Any]) -> ItemReader | None:
        """A Distributed Map's ItemReader (``s3:getObject``, ``s3:listObjectsV2``), or None if no
        integration reads ``resource``; ValueError for a ReaderConfig it cannot read."""
        reader: ItemReader | None = importlib.import_module("express.integrations.s3_map").item_reader(
            resource, reader_config, self)
        return reader

    def result_writer(self, resource: str, writer_config: dict[str, Any]) -> ResultWriter | None:
        """A Distributed Map's ResultWriter (``s3:putObject``), or None if no integration writes to
        ``resource``; ValueError for a WriterConfig it cannot write."""
        writer: ResultWriter | None = importlib.import_module("express.integrations.s3_map").result_writer(
            resource, writer_config, self)
        return writer

    def pooled(self, key: str, factory: Any) -> Any:
        """The shared object under ``key`` (a client pool), made by ``factory()`` on first use."""
        value = self._state.get(key)
        if value is None:
            value = self._state[key] = factory()
        return value

    async def aclose(self) -> None:
        """Close every pooled client (idempotent): each pool's ``aclose()``."""
        state, self._state = self._state, {}
        for value in state.values():
            close = getattr(value, "aclose", None)
            if close is not None:
                await close()
