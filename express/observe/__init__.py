"""Observability: Prometheus metrics (every series defined in :mod:`express.observe.metrics`), usage records
at Express prices (metering), execution-log sinks, and the process's logs.

May import :mod:`express.asl` and :mod:`express.engine`; never a transport or the service.
"""
