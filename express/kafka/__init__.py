"""Kafka async mode: an embedded Kafka-protocol broker, the consumer-group worker that runs one
execution per record (at-least-once), and the ``express demo`` driver."""
from __future__ import annotations


def log(message: str) -> None:
    """One log line of the Kafka transport (component ``kafka``)."""
    from express.observe.logs import emit_message

    emit_message("kafka", message)
