"""Kafka tests run against a real broker: the embedded tansu binary, started once per session (the
``bootstrap`` fixture of tests/conftest.py).

Every test uses its own topics and consumer group, and short group timeouts (session 2000 ms,
heartbeat 300 ms: see kafka_helpers.SHORT_GROUP) so that joins, leaves and dead members are
noticed quickly."""
