"""``arn:express:::kafka:produce``: a Task that writes one record to a Kafka topic (express's own
resource; AWS has no such integration).

Parameters (or Arguments):

- ``Topic`` (required): the topic name (``[a-zA-Z0-9._-]``, at most 249 characters);
- ``Value``: any JSON value, sent as its JSON text (a string is sent as a JSON string, quotes included,
  so that a machine bound to the topic reads it back as it was); without ``Value`` the record's value
  is null (a tombstone for a compacted topic);
- ``Key``: a string (UTF-8), or null / absent for no key: records with one key go to one partition
  (murmur2, as the Java client partitions);
- ``Headers``: an object of strings (UTF-8 header values).

The result, once the broker has acknowledged the record (``acks=all``): ``{"Topic", "Partition",
"Offset"}``.

Errors: ``Kafka.NotConfigured`` when the server has no Kafka (``serve --no-kafka``, or no
``[kafka] bootstrap`` and no embedded broker, or an engine without ``integrations.kafka``);
the broker's and the client's errors as ``Kafka.<ErrorClass>`` (``Kafka.KafkaTimeoutError``,
``Kafka.MessageSizeTooLargeError``, ``Kafka.KafkaConnectionError``...), which a Retry or Catch may
name; ``States.TaskFailed`` for a parameter that is missing or has the wrong type;
``States.DataLimitExceeded`` for a record (key, value and headers) over the payload limit; and
``States.Timeout`` when the Task's ``TimeoutSeconds`` elapse first (the record may still be written:
Kafka writes are at-least-once, as a Retry of a produce is).

The record goes through the producer handle the service gives the integrations (``integrations.kafka``,
:class:`express.kafka.producer.TaskProducer`: anything with ``async send(topic, key, value, headers) ->
(partition, offset)``); this module imports no Kafka client.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from express.asl import errors
from express.asl.errors import ASLError, ExecutionTimedOut
from express.engine import tasks
from express.engine.frame import Frame
from express.engine.tasks import Invoker
from express.integrations import KAFKA_PRODUCE, Integrations

NOT_CONFIGURED = "Kafka.NotConfigured"
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def build(resource: str, integrations: Integrations) -> Invoker | None:
    if resource != KAFKA_PRODUCE:
        return None

    async def produce(eff: Any, frame: Frame, timeout: float | None) -> Any:
        topic, key, value, headers = _record(eff, frame.execution.limit)
        producer = integrations.kafka
        if producer is None:
            raise ASLError(NOT_CONFIGURED, "This server has no Kafka to produce to: set [kafka] bootstrap (or let "
                           "`express serve` start its embedded broker) and do not serve with --no-kafka",
                           located=True)
        ex = frame.execution
        remaining = ex.deadline - ex.clock.now()
        limit = remaining if timeout is None else min(timeout, remaining)
        try:
            partition, offset = await tasks._race(producer.send(topic, key, value, headers), limit, ex.clock,
                                                  timeout is not None and timeout <= remaining, ex.real_deadline)
        except (ASLError, ExecutionTimedOut):
            raise
        except Exception as e:  # the boundary: the client's and the broker's errors become Kafka.<Class>
            name = type(e).__name__
            raise ASLError(f"Kafka.{name}", str(e) or name, located=True) from None
        return {"Topic": topic, "Partition": partition, "Offset": offset}

    return produce


def _record(eff: Any, limit: int) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """(topic, key, value, headers) of the Task's Parameters, or the Task's error naming the field."""
    if not isinstance(eff, dict):
        raise _bad(f"The parameters must be an object with a Topic, not {_kind(eff)}")
    topic = eff.get("Topic")
    if not isinstance(topic, str):
        raise _bad("The field 'Topic' is required and must be a string" if topic is None else
                   f"The field 'Topic' must be a string, not {_kind(topic)}")
    if not _TOPIC.match(topic) or topic in (".", ".."):
        raise _bad(f"The field 'Topic' is not a valid Kafka topic name ([a-zA-Z0-9._-], 1 to 249 "
                   f"characters): {topic[:100]!r}")
    key = eff.get("Key")
    if key is not None and not isinstance(key, str):
        raise _bad(f"The field 'Key' must be a string or null, not {_kind(key)}")
    headers: list[tuple[str, bytes]] = []
    raw_headers = eff.get("Headers")
    if raw_headers is not None:
        if not isinstance(raw_headers, dict):
            raise _bad(f"The field 'Headers' must be an object of strings, not {_kind(raw_headers)}")
        for name, text in raw_headers.items():
            if not isinstance(text, str):
                raise _bad(f"The field 'Headers.{name}' must be a string, not {_kind(text)}")
            headers.append((name, text.encode()))
    try:
        value = orjson.dumps(eff["Value"]) if "Value" in eff else None
    except TypeError as e:  # an integer beyond 64 bits, nested too deeply
        raise _bad(f"The field 'Value' cannot be written as JSON: {e}") from None
    key_bytes = key.encode() if key is not None else None
    size = (len(value) if value is not None else 0) + (len(key_bytes) if key_bytes is not None else 0) \
        + sum(len(n) + len(v) for n, v in headers)
    if size > limit:
        raise ASLError(errors.DATA_LIMIT_EXCEEDED, f"The Kafka record for topic '{topic}' is {size} bytes, over the "
                       f"maximum number of bytes service limit ({limit}).", located=True)
    return topic, key_bytes, value, headers


def _bad(message: str) -> ASLError:
    return ASLError(errors.TASK_FAILED, message, located=True)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
