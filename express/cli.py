"""Command line: ``express validate FILE...`` and ``express exec FILE --input JSON|@file``."""
from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
from typing import Any

import orjson

from express.clock import RealClock, VirtualClock
from express.engine import Engine
from express.errors import DefinitionError, Problem


def _read_json(path: pathlib.Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise DefinitionError([Problem("", "INVALID_JSON_DESCRIPTION", f"{path}: invalid JSON: {e}")]) from None


def cmd_validate(args: argparse.Namespace) -> int:
    from express.validation import validate

    failed = 0
    for name in args.files:
        path = pathlib.Path(name)
        try:
            definition = _read_json(path)
            problems = validate(definition)
            if not problems:
                Engine(functions=_AnyFunction()).compile(definition)
        except OSError as e:
            print(f"{path}: cannot read: {e.strerror}", file=sys.stderr)
            failed += 1
            continue
        except DefinitionError as e:
            problems = e.problems
        if problems:
            failed += 1
            for p in problems:
                print(f"{path}: {p}")
        else:
            print(f"{path}: OK")
    return 1 if failed else 0


class _AnyFunction(dict):  # type: ignore[type-arg]
    """Lets ``validate`` accept any Task resource: no functions are bound when only validating."""

    def get(self, key: Any, default: Any = None) -> Any:
        return lambda event: event


def _parse_input(text: str) -> Any:
    raw = pathlib.Path(text[1:]).read_bytes() if text.startswith("@") else text.encode()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise SystemExit(f"--input is not valid JSON: {e}") from None


async def _exec(args: argparse.Namespace) -> int:
    definition = _read_json(pathlib.Path(args.file))
    clock = VirtualClock() if args.virtual_time else RealClock()
    engine = Engine(functions=_AnyFunction(), clock=clock)
    machine = engine.compile(definition, name=pathlib.Path(args.file).name.split(".")[0])
    result = await machine.execute(_parse_input(args.input), name=args.name)
    out: dict[str, Any] = {
        "name": result.name,
        "status": result.status,
        "durationMs": round(result.duration_s * 1000, 3),
        "stateTransitions": result.state_transitions,
    }
    if result.status == "SUCCEEDED":
        out["output"] = result.output
    else:
        out["error"] = result.error
        out["cause"] = result.cause
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if result.status == "SUCCEEDED" else 2


def cmd_exec(args: argparse.Namespace) -> int:
    rc: int = _run(_exec(args))
    return rc


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return (host or "127.0.0.1"), int(port)
    except ValueError:
        raise SystemExit(f"expected HOST:PORT, got {text!r}") from None


def _settings(config_dir: str) -> Any:
    """The settings, or None after printing the configuration error (file, key, reason)."""
    from express.config import ConfigError, load_settings

    try:
        return load_settings(config_dir)
    except ConfigError as e:
        print(f"express: configuration error: {e}", file=sys.stderr)
        return None


def cmd_serve(args: argparse.Namespace) -> int:
    from express.config import ConfigError
    from express.service import Service

    settings = _settings(args.config)
    if settings is None:
        return 2
    http = _hostport(args.http) if args.http else None
    http_enabled = False if args.no_http else (True if args.http else None)
    if args.workers is not None and args.workers < 1:
        print("express: --workers must be at least 1", file=sys.stderr)
        return 2
    if not args.worker:
        from express.supervisor import Supervisor, check_http_mode, default_count

        count = args.workers if args.workers is not None else default_count(settings)
        if count > 1:
            supervisor = Supervisor(settings, count, bootstrap=args.bootstrap, http=http, kafka=not args.no_kafka,
                                    http_enabled=http_enabled)
            try:
                check_http_mode(settings, count, supervisor.http_enabled)
                rc: int = _run(supervisor.run_until_signalled())
            except ConfigError as e:
                print(f"express: configuration error: {e}", file=sys.stderr)
                return 2
            return rc
    service = Service(settings, bootstrap=args.bootstrap, http=http, kafka=not args.no_kafka,
                      http_enabled=http_enabled)
    try:
        _run(service.run_until_signalled())
    except ConfigError as e:
        print(f"express: configuration error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from express.kafka.demo import run_demo

    settings = _settings(args.config)
    if settings is None:
        return 2
    rc: int = _run(run_demo(settings, events=args.events, bootstrap=args.bootstrap))
    return rc


def _time_arg(text: str | None, default: float) -> float:
    """Epoch seconds, an ISO 8601 time, or a duration ago like ``1h``/``30m``/``2d``."""
    if not text:
        return default
    import time as _time

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return _time.time() - float(text[:-1]) * units[text[-1]]
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise SystemExit(f"not a time: {text!r} (epoch seconds, ISO 8601, or 30m/1h/2d ago)") from None


def cmd_usage(args: argparse.Namespace) -> int:
    from express.config import ConfigError, load_settings
    from express.metering import format_summary, read_records, summarise

    try:
        prices = load_settings(args.config).metering.prices()
    except ConfigError as e:
        print(f"express: configuration error: {e}", file=sys.stderr)
        return 2
    summary = summarise(read_records(args.files), _time_arg(args.since, float("-inf")),
                        _time_arg(args.until, float("inf")), prices)
    if args.json:
        out = {"since": summary.since if summary.since != float("-inf") else None,
               "until": summary.until if summary.until != float("inf") else None,
               "requestCost": summary.request_cost, "durationCost": summary.duration_cost, "cost": summary.cost,
               "machines": {name: {"executions": m.executions, "failed": m.failed,
                                   "billedDurationMs": m.billed_duration_ms, "gbSeconds": m.gb_seconds,
                                   "stateTransitions": m.state_transitions, "byMode": m.by_mode}
                            for name, m in sorted(summary.machines.items())}}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(format_summary(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="express", description="Run AWS Step Functions state machines in memory.")
    sub = ap.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check definitions; print every problem with its JSON pointer")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=cmd_validate)
    e = sub.add_parser("exec", help="run one execution and print the result as JSON")
    e.add_argument("file")
    e.add_argument("--input", default="{}", help="input JSON, or @file")
    e.add_argument("--name", default=None, help="execution name")
    e.add_argument("--virtual-time", action="store_true", help="Wait states and retries take no real time")
    e.set_defaults(func=cmd_exec)
    sv = sub.add_parser("serve", help="run the Kafka worker and the HTTP API for the machines in --config")
    sv.add_argument("--config", default="config", help="config folder (express.toml, machines/)")
    sv.add_argument("--bootstrap", default=None, help="Kafka HOST:PORT; default: config, else the embedded broker")
    sv.add_argument("--http", default=None, help="serve HTTP on HOST:PORT (default: from config)")
    sv.add_argument("--no-http", action="store_true", help="do not serve HTTP")
    sv.add_argument("--no-kafka", action="store_true", help="do not consume Kafka topics")
    sv.add_argument("--workers", type=int, default=None, metavar="N",
                    help="worker processes under a supervisor (default: [workers] count, 0 = one per CPU core); "
                         "1 serves in this process")
    sv.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a supervised worker process
    sv.set_defaults(func=cmd_serve)
    d = sub.add_parser("demo", help="produce sample events to the bound topics, process them, print what happened")
    d.add_argument("--config", default="config")
    d.add_argument("--events", type=int, default=1000)
    d.add_argument("--bootstrap", default=None)
    d.set_defaults(func=cmd_demo)
    u = sub.add_parser("usage", help="summarise usage records (metering log) per machine over a time window")
    u.add_argument("files", nargs="+", help="metering log files (JSON lines)")
    u.add_argument("--since", default=None, help="epoch seconds, ISO 8601, or e.g. 1h (ago)")
    u.add_argument("--until", default=None)
    u.add_argument("--config", default="config", help="for the prices ([metering] in express.toml)")
    u.add_argument("--json", action="store_true")
    u.set_defaults(func=cmd_usage)
    args = ap.parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except DefinitionError as err:
        for p in err.problems:
            print(f"{getattr(args, 'file', '')}: {p}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"express: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
