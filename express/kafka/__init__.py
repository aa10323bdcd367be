"""Kafka async mode: an embedded Kafka-protocol broker, the consumer-group worker that runs one
execution per record (at-least-once), and the ``express demo`` driver."""
