"""StartExecution through Kafka: with Kafka configured, a StartExecution of a machine bound to a topic
(``[bindings]``) is written to that topic as a start event and answered once the broker has it, so the
execution survives a crash of the worker that took the request and runs at-least-once in the consumer
group, its outcome on ``TOPIC.results`` / ``TOPIC.failures`` like every start event's.

The event is what a producer would write (the input as the value), plus two headers: the machine
(``[kafka] machine_header``, as for any event naming its machine) and the execution ARN the API answered
(:data:`express.kafka.dispatch.EXECUTION_HEADER`), under which the worker runs it. Machines bound to no
topic run in the HTTP worker's background, as without Kafka.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from express.kafka.dispatch import EXECUTION_HEADER


class KafkaStarts:
    """``topic(machine)`` (None: not bound) and ``await start(topic, machine, name, arn, input_text)``."""

    def __init__(self, producer: Any, bindings: Mapping[str, str], machine_header: str) -> None:
        self.producer = producer  # express.kafka.producer.TaskProducer
        self.machine_header = machine_header
        self._topics: dict[str, str] = {}
        for topic, machine in sorted(bindings.items()):  # a machine bound to several topics: the first
            self._topics.setdefault(machine, topic)

    def topic(self, machine_name: str) -> str | None:
        return self._topics.get(machine_name)

    async def start(self, topic: str, machine_name: str, name: str, arn: str, input_text: str) -> tuple[int, int]:
        """Write the start event; (partition, offset) once the broker acknowledged it. Keyed by the
        execution name, so one name's events keep one partition's order."""
        headers = [(self.machine_header, machine_name.encode()), (EXECUTION_HEADER, arn.encode())]
        result: tuple[int, int] = await self.producer.send(topic, name.encode(), input_text.encode(), headers)
        return result
