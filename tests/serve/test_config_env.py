"""Configuration as a service needs it: every setting has an environment override with a documented
name, a bad value fails at start naming the file (or variable), the key and the reason, and the
shipped config/express.toml loads."""
from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
from typing import Any, get_type_hints

import pytest

from express.serve.cli import main
from express.serve.config import _SECTIONS, ConfigError, load_settings
from express.serve.supervisor import check_http_mode, default_count

ROOT = pathlib.Path(__file__).resolve().parents[2]


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    (tmp_path / "express.toml").write_text(text)
    return tmp_path


def _example(typ: Any, default: Any) -> tuple[str, Any]:
    """An environment string for a field of type ``typ`` and the value it must become."""
    if typ is bool:
        return ("false", False) if default else ("true", True)
    if typ is int:
        return "7", 7
    if typ is float:
        return "2.5", 2.5
    return "some-value", "some-value"


FIELDS = [(section, f.name) for section, cls in _SECTIONS.items() for f in dataclasses.fields(cls)]


@pytest.mark.parametrize(("section", "key"), FIELDS, ids=[f"{s}.{k}" for s, k in FIELDS])
def test_every_setting_has_an_environment_override(tmp_path, section, key):
    cls = _SECTIONS[section]
    field = next(f for f in dataclasses.fields(cls) if f.name == key)
    text, value = _example(get_type_hints(cls)[key], field.default)
    if (section, key) == ("logging", "level"):
        text, value = "ERROR", "ERROR"
    if (section, key) == ("logging", "format"):
        text, value = "json", "json"
    if (section, key) == ("logging", "service_level"):
        text, value = "debug", "debug"
    if (section, key) == ("workers", "http"):
        text, value = "all", "all"
    if (section, key) == ("http", "credentials"):
        text, value = "AKID:secret", "AKID:secret"
    if (section, key) == ("workers", "backoff_max_s"):
        text, value = "60", 60.0
    if (section, key) == ("state", "url"):
        text, value = "sqlite:other.db", "sqlite:other.db"
    settings = load_settings(tmp_path, env={f"EXPRESS_{section.upper()}_{key.upper()}": text})
    assert getattr(getattr(settings, section), key) == value


def test_workers_section_from_the_file_and_environment(tmp_path):
    write(tmp_path, '[workers]\ncount = 3\nhttp = "all"\nbackoff_initial_s = 0.1\nbackoff_max_s = 4\n')
    s = load_settings(tmp_path, env={})
    assert (s.workers.count, s.workers.http, s.workers.backoff_initial_s, s.workers.backoff_max_s) == (3, "all", 0.1, 4)
    assert default_count(s) == 3
    s = load_settings(tmp_path, env={"EXPRESS_WORKERS_COUNT": "5", "EXPRESS_WORKERS_HTTP": "one"})
    assert (s.workers.count, s.workers.http) == (5, "one")
    assert default_count(load_settings(tmp_path, env={"EXPRESS_WORKERS_COUNT": "0"})) >= 1  # one per core


def test_config_dir_from_the_environment(tmp_path):
    write(tmp_path, "[http]\nport = 1234\n")
    s = load_settings("elsewhere", env={"EXPRESS_CONFIG_DIR": str(tmp_path)})
    assert s.http.port == 1234 and s.config_dir == str(tmp_path)


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[workers]\ncount = 'two'\n", "workers.count", "expected an integer"),
        ("[workers]\ncount = -1\n", "workers.count", "must not be negative"),
        ("[workers]\nhttp = 'some'\n", "workers.http", "must be one of one, all"),
        ("[workers]\nworkers = 2\n", "workers.workers", "unknown setting"),
        ("[workers]\nbackoff_initial_s = 5\nbackoff_max_s = 1\n", "workers.backoff_max_s", "must not be below"),
        ("[http]\nreuse_port = 'maybe'\n", "http.reuse_port", "expected true or false"),
        ("workers = 2\n", "workers", "expected a table"),
    ],
)
def test_bad_workers_config_names_file_key_and_reason(tmp_path, text, key, reason):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={})
    assert e.value.key == key
    assert e.value.where == str(tmp_path / "express.toml")
    assert reason in e.value.reason


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={"EXPRESS_WORKERS_COUNT": "lots"})
    assert (e.value.where, e.value.key) == ("environment", "EXPRESS_WORKERS_COUNT")
    assert "expected an integer, got 'lots'" in str(e.value)


def test_http_on_all_workers_keeps_names_exactly_once_by_routing(tmp_path, monkeypatch):
    import socket

    import express.serve.supervisor as supervisor

    write(tmp_path, '[workers]\nhttp = "all"\n')
    s = load_settings(tmp_path, env={})
    check_http_mode(s, 2, True, env={})  # names are routed to their owner: nothing weakened
    # without Unix sockets the routing cannot work: refuse rather than weaken the guarantee
    monkeypatch.delattr(socket, "AF_UNIX")
    with pytest.raises(ConfigError) as e:
        supervisor.check_http_mode(s, 2, True, env={})
    assert e.value.key == "workers.http" and "Unix sockets" in e.value.reason
    with pytest.raises(ConfigError) as e:
        supervisor.check_http_mode(s, 2, True, env={"EXPRESS_WORKERS_HTTP": "all"})
    assert (e.value.where, e.value.key) == ("environment", "EXPRESS_WORKERS_HTTP")
    supervisor.check_http_mode(s, 1, True, env={})  # one process: one table
    supervisor.check_http_mode(load_settings(write(tmp_path, '[workers]\nhttp = "all"\nhttp_names_per_process = true\n'),
                                             env={}), 2, True, env={})


@pytest.mark.parametrize(
    ("text", "args", "needle"),
    [
        ("[kafka]\nmax_in_flight = 0\n", ["--workers", "1"], "kafka.max_in_flight: must be at least 1"),
        ("[workers]\nhttp = 'every'\n", [], "workers.http: must be one of one, all"),
    ],
)
def test_serve_fails_at_start_with_file_key_and_reason(tmp_path, capsys, text, args, needle):
    write(tmp_path, text)
    assert main(["serve", "--config", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert f"express: configuration error: {tmp_path / 'express.toml'}: {needle}" in err


def test_serve_rejects_zero_workers(tmp_path, capsys):
    assert main(["serve", "--config", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_bad_environment_fails_the_command_line_at_start(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "express", "serve", "--config", str(tmp_path)],
                          env={"EXPRESS_HTTP_PORT": "eighty", "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert "express: configuration error: environment: EXPRESS_HTTP_PORT: expected an integer, got 'eighty'" \
        in proc.stderr


def test_the_shipped_config_loads_and_documents_every_section(tmp_path):
    s = load_settings(ROOT / "config", env={})
    assert s.workers.count == 0 and s.workers.http == "all"
    text = (ROOT / "config" / "express.toml").read_text()
    for section in _SECTIONS:
        assert f"[{section}]" in text, f"config/express.toml does not document [{section}]"
