"""Command line: ``express validate FILE...`` and ``express exec FILE --input JSON|@file``."""
from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys
from typing import Any

import orjson

from express.asl.errors import DefinitionError, Problem
from express.asl.limits import suspect
from express.engine.clock import RealClock, VirtualClock
from express.engine.machine import Engine
from express.testing.mocking import ENV_VAR as MOCK_ENV_VAR
from express.testing.mocking import MockConfig, MockConfigError


def _read_json(path: pathlib.Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise DefinitionError([Problem("", "INVALID_JSON_DESCRIPTION", f"{path}: invalid JSON: {e}")]) from None


def cmd_validate(args: argparse.Namespace) -> int:
    from express.asl.validation import validate

    failed = 0
    for name in args.files:
        path = pathlib.Path(name)
        try:
            definition = _read_json(path)
            problems = validate(definition)
            if not problems:
                _unbound_engine(validating=True).compile(definition)
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
    """Lets ``validate`` and ``exec`` accept any Lambda function or custom resource: no functions are
    bound there. With ``integrations_decide``, service-integration ARNs are left to the integrations,
    which know (as AWS does) which services and actions exist."""

    def __init__(self, integrations_decide: bool = False) -> None:
        super().__init__()
        self.integrations_decide = integrations_decide

    def get(self, key: Any, default: Any = None) -> Any:
        if self.integrations_decide and isinstance(key, str) and key.startswith(_INTEGRATION_PREFIXES):
            return None
        return lambda event: event


_INTEGRATION_PREFIXES = ("arn:aws:states:::", "arn:aws-us-gov:states:::", "arn:aws-cn:states:::", "arn:express:::")


def _unbound_engine(clock: Any = None, validating: bool = False) -> Engine:
    """An engine on which every Task resource echoes its input (``exec``: no service integration is
    bound, nothing calls out); ``validating``: integration resources are bound (never called) so that
    unknown services and actions are refused with AWS's message."""
    engine = Engine(clock=clock, integrations=validating)
    engine.functions = _AnyFunction(validating)  # set after: Engine copies what it is given into a plain dict
    return engine


def _parse_input(text: str) -> tuple[Any, int | None]:
    """The --input value and its size in bytes as given, which spares the engine measuring it
    again (None for the rare text the engine must check itself: express.asl.limits.suspect)."""
    raw = pathlib.Path(text[1:]).read_bytes() if text.startswith("@") else text.encode()
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise SystemExit(f"--input is not valid JSON: {e}") from None
    return value, None if suspect(raw) else len(raw)


async def _exec(args: argparse.Namespace) -> int:
    definition = _read_json(pathlib.Path(args.file))
    clock = VirtualClock() if args.virtual_time else RealClock()
    engine = _unbound_engine(clock)
    name = pathlib.Path(args.file).name.split(".")[0]
    mock_path = args.mock_config or (os.environ.get(MOCK_ENV_VAR) if args.test_case else None)
    if args.test_case is not None and not mock_path:
        raise SystemExit(f"express: --test-case needs --mock-config FILE (or {MOCK_ENV_VAR})")
    if mock_path and args.test_case is None:
        raise SystemExit("express: --mock-config needs --test-case CASE (a test case of the machine "
                         f"'{name}')")
    if mock_path:
        # the test case is looked up under the file's name, as `express serve` names machines
        config = await asyncio.to_thread(MockConfig.load, mock_path)
        machine = config.compile(engine, definition, name, args.test_case)
    else:
        machine = engine.compile(definition, name=name)
    value, size = _parse_input(args.input)
    result = await machine.execute(value, name=args.name, input_size=size)
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
    from express.serve.config import ConfigError, load_settings

    try:
        return load_settings(config_dir)
    except ConfigError as e:
        print(f"express: configuration error: {e}", file=sys.stderr)
        return None


def _worker_index() -> int:
    from express.serve.config import ENV_WORKER_INDEX

    try:
        return int(os.environ.get(ENV_WORKER_INDEX, "0"))
    except ValueError:
        return 0


def _configure_logs(settings: Any, *, worker: int | str) -> None:
    """The service's log lines ([logging] format and service_level), once, before anything is logged."""
    from express.observe import logs

    logs.configure(settings.logging.format, level=settings.logging.service_level, worker=worker)


def cmd_serve(args: argparse.Namespace) -> int:
    from express.kafka.broker import BrokerError
    from express.serve.config import ConfigError
    from express.serve.service import Service, StartError, check_requirements, with_console_token

    settings = _settings(args.config)
    if settings is None:
        return 2
    _configure_logs(settings, worker=_worker_index() if args.worker else 0)
    http = _hostport(args.http) if args.http else None
    http_enabled = False if args.no_http else (True if args.http else None)
    if args.workers is not None and args.workers < 1:
        print("express: --workers must be at least 1", file=sys.stderr)
        return 2
    serves_http = settings.http.enabled if http_enabled is None else http_enabled
    mock_config = args.mock_config or os.environ.get(MOCK_ENV_VAR) or None  # read once, at start
    try:
        # Everything the configuration needs is checked before anything starts: one line, no traceback.
        check_requirements(settings, bootstrap=args.bootstrap or settings.kafka.bootstrap or None,
                           kafka_enabled=not args.no_kafka, http_enabled=serves_http)
        if serves_http and not args.worker:
            settings = with_console_token(settings, export=True)  # one token for every worker
        if not args.worker:
            from express.serve.supervisor import Supervisor, check_http_mode, default_count

            count = args.workers if args.workers is not None else default_count(settings)
            if count > 1 and (mock_config or args.reload):
                if args.workers is not None:
                    print("express: --mock-config, SFN_MOCK_CONFIG and --reload serve in one process: "
                          "use --workers 1", file=sys.stderr)
                    return 2
                count = 1  # development features: one process
            if count > 1:
                _configure_logs(settings, worker="supervisor")
                supervisor = Supervisor(settings, count, bootstrap=args.bootstrap, http=http,
                                        kafka=not args.no_kafka, http_enabled=http_enabled)
                check_http_mode(settings, count, supervisor.http_enabled)
                rc: int = _run(supervisor.run_until_signalled())
                return rc
        service = Service(settings, bootstrap=args.bootstrap, http=http, kafka=not args.no_kafka,
                          http_enabled=http_enabled, mock_config=mock_config, reload=args.reload)
        _run(service.run_until_signalled())
    except ConfigError as e:
        print(f"express: configuration error: {e}", file=sys.stderr)
        return 2
    except StartError as e:
        print(f"express: {e}", file=sys.stderr)
        return 2
    except BrokerError as e:
        print(f"express: the embedded Kafka broker did not start: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from express.serve.config import ConfigError
    from express.serve.registry import load_function
    from express.testing.cases import format_result, junit_xml, run_mock_config, summary

    config = MockConfig.load(args.mock_config)
    settings = _settings(args.config)
    if settings is None:
        return 2
    where = str(pathlib.Path(args.config) / "express.toml")
    try:
        functions = {name: load_function(spec, where, f"functions.{name}") for name, spec in settings.functions.items()}
    except ConfigError as e:
        print(f"express: configuration error: {e}", file=sys.stderr)
        return 2
    machine_dir = pathlib.Path(args.machine_dir) if args.machine_dir else settings.machines_dir
    results = _run(run_mock_config(config, machine_dir, functions))
    for result in results:
        print(format_result(result))
    print(summary(results))
    if args.junit:
        pathlib.Path(args.junit).write_bytes(junit_xml(results, f"express test {args.mock_config}"))
    return 0 if all(r.passed for r in results) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from express.kafka.demo import run_demo

    settings = _settings(args.config)
    if settings is None:
        return 2
    _configure_logs(settings, worker=0)
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
    from express.observe.metering import format_summary, read_records, summarise
    from express.serve.config import ConfigError, load_settings

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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs (examples, exit statuses)."""


def _subcommand(sub: Any, name: str, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description, epilog=epilog,
                                                     formatter_class=_HelpFormatter)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``express`` command line: every subcommand and option, each with its help text."""
    from express import __version__

    ap = argparse.ArgumentParser(
        prog="express", formatter_class=_HelpFormatter,
        description="Run AWS Step Functions state machines (Amazon States Language) in memory, the way AWS "
                    "runs Express workflows:\nfrom Kafka topics, over the StepFunctions HTTP API, or one "
                    "execution at a time.",
        epilog="Run `express COMMAND --help` for the options of a command.\n\n"
               "examples:\n"
               "  express validate config/machines/*.asl.json\n"
               "  express exec config/machines/order-pipeline.asl.json --input @order.json --virtual-time\n"
               "  express serve --config config --http 127.0.0.1:8080\n"
               "  express demo --events 2000")
    ap.add_argument("--version", action="version", version=f"express {__version__}",
                    help="print the version (express X.Y.Z) and exit")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands",
                         help="one of:")

    v = _subcommand(
        sub, "validate", help="check definitions; print every problem with its JSON pointer",
        description="Parse, validate and compile each ASL definition without running it, as `express serve` "
                    "would load it.\nPrints `FILE: OK`, or one line per problem: `FILE: /json/pointer CODE "
                    "message`.",
        epilog="exit status: 0 when every file is valid, 1 when any file is invalid or cannot be read.\n\n"
               "example:\n  express validate config/machines/*.asl.json")
    v.add_argument("files", nargs="+", metavar="FILE", help="an ASL definition (JSON) to check")
    v.set_defaults(func=cmd_validate)

    e = _subcommand(
        sub, "exec", help="run one execution and print the result as JSON",
        description="Run one execution of the state machine in FILE and print its outcome as JSON (name, "
                    "status,\ndurationMs, stateTransitions, and output or error and cause). No functions are "
                    "bound: every\nTask state returns its input, unless a mock config's test case mocks it.",
        epilog="exit status: 0 when the execution SUCCEEDED, 2 when it FAILED or TIMED_OUT, 1 when the definition\n"
               "is invalid or a file cannot be read.\n\n"
               "examples:\n"
               "  express exec machine.asl.json --input '{\"a\": 1}'\n"
               "  express exec machine.asl.json --input @input.json --virtual-time\n"
               "  express exec OrderWorkflow.asl.json --mock-config MockConfigFile.json --test-case HappyPath")
    e.add_argument("file", metavar="FILE",
                   help="the ASL definition (JSON); the machine is named after it (the file name up to its "
                        "first dot)")
    e.add_argument("--input", default="{}", metavar="JSON|@FILE",
                   help="the execution's input: JSON text, or @FILE to read it from FILE (default: {})")
    e.add_argument("--name", default=None,
                   help="the execution name, as StartExecution's `name` (default: a generated one)")
    e.add_argument("--virtual-time", action="store_true",
                   help="run on a virtual clock: Wait states, retry intervals and timeouts take no real time")
    e.add_argument("--mock-config", default=None, metavar="FILE",
                   help="a Step Functions Local mock config (MockConfigFile.json) to take --test-case from")
    e.add_argument("--test-case", default=None, metavar="CASE",
                   help="run this test case of the mock config (the machine is named after FILE)")
    e.set_defaults(func=cmd_exec)

    sv = _subcommand(
        sub, "serve", help="run the Kafka worker and the HTTP API for the machines in --config",
        description="Serve the machines of the config folder (machines/*.asl.json): consume the Kafka topics "
                    "bound in\n[bindings] and write each outcome to the result, failure or dead-letter topic, "
                    "and serve the\nStepFunctions HTTP API, /metrics, /healthz and the console (/console). "
                    "Runs until SIGINT or SIGTERM,\nthen drains the executions in flight.",
        epilog="Every setting of express.toml can be overridden by EXPRESS_<SECTION>_<KEY> environment "
               "variables.\n\n"
               "exit status: 0 after a clean shutdown, 2 for a configuration error, 1 when the embedded broker\n"
               "cannot start.\n\n"
               "examples:\n"
               "  express serve --config config\n"
               "  express serve --no-kafka --http 127.0.0.1:8080 --workers 1\n"
               "  EXPRESS_ENGINE_VIRTUAL_TIME=true express serve --no-kafka --reload --mock-config "
               "MockConfigFile.json")
    sv.add_argument("--config", default="config", metavar="DIR",
                    help="config folder (express.toml, machines/) (default: %(default)s)")
    sv.add_argument("--bootstrap", default=None, metavar="HOST:PORT",
                    help="Kafka HOST:PORT; default: config, else the embedded broker")
    sv.add_argument("--http", default=None, metavar="HOST:PORT",
                    help="serve HTTP on HOST:PORT (default: from config)")
    sv.add_argument("--no-http", action="store_true", help="do not serve HTTP")
    sv.add_argument("--no-kafka", action="store_true", help="do not consume Kafka topics")
    sv.add_argument("--workers", type=int, default=None, metavar="N",
                    help="worker processes under a supervisor (default: [workers] count, 0 = one per CPU core); "
                         "1 serves in this process")
    sv.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a supervised worker process
    sv.add_argument("--mock-config", default=None, metavar="FILE",
                    help=f"a Step Functions Local mock config (default: ${MOCK_ENV_VAR}); executions of ARN#CASE "
                         "run that test case; serves in one process")
    sv.add_argument("--reload", action="store_true",
                    help="watch machines/ and the mock config, recompile on change (keeping the previous version "
                         "when the new one is invalid); serves in one process")
    sv.set_defaults(func=cmd_serve)

    d = _subcommand(
        sub, "demo", help="produce sample events to the bound topics, process them, print what happened",
        description="Start the embedded Kafka-protocol broker (unless --bootstrap or [kafka] bootstrap names "
                    "a cluster)\nand a worker, produce sample events to every topic bound in [bindings] "
                    "(from config/samples/,\nwith some empty and some invalid ones), and print the outcomes: "
                    "succeeded, failed, dead-lettered,\nevents/s and a sample record of each. The engine runs "
                    "on virtual time.",
        epilog="example:\n  express demo --events 2000")
    d.add_argument("--config", default="config", metavar="DIR",
                   help="config folder (express.toml with [bindings], machines/, samples/) (default: %(default)s)")
    d.add_argument("--events", type=int, default=1000, metavar="N",
                   help="events to produce to each bound topic (default: %(default)s)")
    d.add_argument("--bootstrap", default=None, metavar="HOST:PORT",
                   help="use this Kafka cluster instead of the embedded broker (default: [kafka] bootstrap, "
                        "else embedded)")
    d.set_defaults(func=cmd_demo)

    u = _subcommand(
        sub, "usage", help="summarise usage records (metering log) per machine over a time window",
        description="Summarise the usage records that `express serve` writes (the metering log, one JSON "
                    "object per line):\nexecutions, failures, billed duration, GB-seconds, state transitions "
                    "and cost per machine, at the\nprices of [metering] in express.toml.",
        epilog="Times are epoch seconds, ISO 8601 (2024-05-01T12:00:00Z), or a duration ago: 30s, 15m, 1h, 2d.\n\n"
               "examples:\n"
               "  express usage metering.jsonl --since 1h\n"
               "  express usage metering-*.jsonl --since 2024-05-01 --until 2024-06-01 --json")
    u.add_argument("files", nargs="+", metavar="FILE", help="metering log files (JSON lines)")
    u.add_argument("--since", default=None, metavar="TIME",
                   help="epoch seconds, ISO 8601, or e.g. 1h (ago); default: from the earliest record")
    u.add_argument("--until", default=None, metavar="TIME",
                   help="the end of the window, in the same forms as --since; default: up to the latest record")
    u.add_argument("--config", default="config", metavar="DIR",
                   help="for the prices ([metering] in express.toml) (default: %(default)s)")
    u.add_argument("--json", action="store_true", help="print the summary as one JSON document instead of a table")
    u.set_defaults(func=cmd_usage)

    t = _subcommand(
        sub, "test", help="run every test case of a Step Functions Local mock config against its machine",
        description="Run every test case of a Step Functions Local mock config (MockConfigFile.json) against "
                    "its machine,\non a virtual clock, and check each case's ExpressExpect (without one, a "
                    "case must succeed).\nPrints a line per case and a summary.",
        epilog="exit status: 0 when every case passes, 1 when any fails, 2 for a configuration error.\n\n"
               "example:\n  express test tests/MockConfigFile.json --junit report.xml")
    t.add_argument("mock_config", metavar="MOCK.json",
                   help="the mock config: StateMachines with TestCases (and ExpressExpect), MockedResponses")
    t.add_argument("--config", default="config", metavar="DIR",
                   help="config folder: the machines (machines/NAME.asl.json) and [functions] for unmocked Tasks")
    t.add_argument("--machine-dir", default=None, metavar="DIR",
                   help="find machine NAME in DIR/NAME.asl.json instead of <config>/machines")
    t.add_argument("--junit", default=None, metavar="FILE", help="also write the results as JUnit XML")
    t.set_defaults(func=cmd_test)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    except MockConfigError as err:
        print(err, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
