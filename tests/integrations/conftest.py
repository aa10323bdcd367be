"""Fixtures of the integration tests: one moto server (PyPI ``moto[server]``) for the whole session,
on a free 127.0.0.1 port, as the AWS endpoint of S3, SQS, SNS, DynamoDB, EventBridge, Lambda, STS, ...

Tests share it: each one makes buckets, queues, tables and topics of its own (unique names), so
that nothing depends on the order tests run in. moto runs Lambda functions in docker, which is not
here: only Lambda's errors (ResourceNotFoundException, ...) can be had from it. ``moto_env`` points botocore's standard
configuration at it (``AWS_ENDPOINT_URL``, test credentials, ``us-east-1``) for one test."""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from express.integrations import Integrations
from tests.support import free_port

MOTO_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1"}
# botocore settings a developer's shell may carry that would send the tests' calls elsewhere
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
          "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


def _moto_server() -> str:
    exe = pathlib.Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    return str(exe)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: pathlib.Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not listen on 127.0.0.1:{port}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the session's moto server (``http://127.0.0.1:PORT``)."""
    exe = _moto_server()
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    env = {**os.environ, **MOTO_ENV}
    with open(log, "ab") as out:
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    try:
        _wait_listening(port, proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def moto_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """botocore's standard configuration pointed at the moto server for this test; its URL."""
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]:
        monkeypatch.delenv(name)
    for name, value in MOTO_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
async def integrations(moto_env: str) -> AsyncIterator[Integrations]:
    """An Integrations whose AWS calls go to the session's moto server; closed after the test."""
    integ = Integrations()
    try:
        yield integ
    finally:
        await integ.aclose()
