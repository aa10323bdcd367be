"""The server process: settings (read once), the machine registry, the service that owns every background
task, the multi-worker supervisor, hot reload, progress logs and the CLI.

May import everything below it (asl, engine, observe) and the transports (:mod:`express.http`,
:mod:`express.kafka`, :mod:`express.console`, :mod:`express.store`).
"""
