"""`billing-portal serve` as a real process on a free loopback port, for the tests that need
what only a real server shows: keep-alive connections, its log lines, several replicas."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.cli import PROJECT_ROOT
from tests.ops.private_postgres import free_port

JWT_SECRET = "ops-test-signing-key-" + "s" * 24
STARTUP_TIMEOUT = 90.0


def process_env(database_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a fresh process: ours less every BILLING_ setting, plus these."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BILLING_") and k not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "BILLING_ENV": "test",
            "BILLING_JWT_SECRET": JWT_SECRET,
            "BILLING_DATA_DIR": str(data_dir),
            "BILLING_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def connection_of(response: httpx.Response) -> object:
    """The local address of the TCP connection a response came on: the same address for
    two responses means the connection was kept."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


@dataclass
class Server:
    """One `serve` process; its stdout and stderr go to files, read when it has stopped."""

    env: dict[str, str]
    workdir: Path
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"serve-{self.port}.stderr"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"serve-{self.port}.stdout"

    def start(self) -> Server:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        return self

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"serve exited with {self.process.returncode}: {self.stderr()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not answer /healthz within {timeout} s")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a container runtime sends; uvicorn shuts down gracefully and then
        re-raises the signal, so a clean stop exits by SIGTERM (-15) or 0."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def stopped_cleanly(self) -> bool:
        return self.stop() in (0, -signal.SIGTERM)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")
