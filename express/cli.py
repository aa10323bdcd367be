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
    try:
        import uvloop

        return uvloop.run(_exec(args))
    except ImportError:
        return asyncio.run(_exec(args))


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
