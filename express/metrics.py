"""Every Prometheus metric express exports, in one place. Labels are low-cardinality only
(machine, mode, status, error name, topic, operation); never an execution id.

Hot paths call the ``observe_*`` helpers once per execution or per batch, never per state.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

EXECUTIONS_STARTED = Counter(
    "express_executions_started", "Executions started", ["machine", "mode"], registry=REGISTRY)
EXECUTIONS_FINISHED = Counter(
    "express_executions", "Executions finished, by final status", ["machine", "mode", "status"], registry=REGISTRY)
EXECUTION_ERRORS = Counter(
    "express_execution_errors", "Failed or timed-out executions by ASL error name", ["machine", "error"],
    registry=REGISTRY)
EXECUTION_DURATION = Histogram(
    "express_execution_duration_seconds", "Execution duration", ["machine", "mode"],
    buckets=_DURATION_BUCKETS, registry=REGISTRY)
STATE_TRANSITIONS = Counter(
    "express_state_transitions", "State transitions", ["machine"], registry=REGISTRY)
IN_FLIGHT = Gauge(
    "express_in_flight_executions", "Executions currently running", ["mode"], registry=REGISTRY,
    multiprocess_mode="livesum")
BILLED_DURATION = Counter(
    "express_billed_duration_seconds", "Billed duration (Express rounding: 100 ms steps)", ["machine"],
    registry=REGISTRY)
BILLED_GB_SECONDS = Counter(
    "express_billed_gb_seconds", "Billed GB-seconds (duration x billed memory)", ["machine"], registry=REGISTRY)

KAFKA_CONSUMED = Counter(
    "express_kafka_records_consumed", "Kafka records consumed", ["topic"], registry=REGISTRY)
KAFKA_PRODUCED = Counter(
    "express_kafka_records_produced", "Kafka outcome records produced", ["topic", "kind"], registry=REGISTRY)
KAFKA_DLQ = Counter(
    "express_kafka_dlq_records", "Records sent to the dead-letter topic", ["topic", "reason"], registry=REGISTRY)
KAFKA_LAG = Gauge(
    "express_kafka_consumer_lag", "Records behind the end of the partition", ["topic", "partition"],
    registry=REGISTRY, multiprocess_mode="livesum")

HTTP_REQUESTS = Counter(
    "express_http_requests", "HTTP API requests", ["operation", "status"], registry=REGISTRY)
