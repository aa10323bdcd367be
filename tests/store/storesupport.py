"""Helpers of the store tests: an ``express serve`` process over its own folder with a given state store."""
from __future__ import annotations

import pathlib
import re
import subprocess
import time
from typing import Any

import boto3
from botocore.config import Config

from tests.support import serve, stop


class Server:
    """``express serve --no-kafka`` over its own config folder, the machine store in ``url``."""

    def __init__(self, root: pathlib.Path, url: str, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.root, self.state_url, self.workers, self.env = root, url, workers, dict(env or {})
        root.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.root / f"serve-{self.starts}.log"
        env = {"EXPRESS_STATE_URL": self.state_url, **self.env}
        if self.workers > 1:
            env["EXPRESS_WORKERS_HTTP"] = "all"
        self.proc = serve(self.root, log, "--no-kafka", "--http", "127.0.0.1:0", "--workers", str(self.workers),
                          env=env)
        deadline = time.monotonic() + 30
        while not (m := re.search(r"HTTP .*on http://127\.0\.0\.1:(\d+)", log.read_text())):
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        if self.workers > 1:  # every worker serves the port
            while len(re.findall(r"worker \d: HTTP .* on http://", log.read_text())) < self.workers:
                assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
        if self.state_url.startswith("redis://"):
            assert "redis://127.0.0.1" in log.read_text()  # the log names the store (never a password)
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL the supervisor and every worker (each in its own session), as a crash of the host would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        subprocess.run(["pkill", "-9", "-f", "--", f"--config {self.root}( |$)"], check=False)
        deadline = time.monotonic() + 10
        while subprocess.run(["pgrep", "-f", "--", f"--config {self.root}( |$)"], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "workers outlived SIGKILL"
            time.sleep(0.05)

    def client(self) -> Any:
        return boto3.session.Session().client(
            "stepfunctions", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="x", config=Config(retries={"max_attempts": 0}, inject_host_prefix=False))

