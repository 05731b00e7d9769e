"""Wayline services as real processes for crash tests: start, SIGKILL, restart on the same port and data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import INTERNAL_TOKEN  # the in-process gateway shares it
from tests.contract.test_shutdown import wait_serving
from wayline_cli.suite import free_port

__all__ = ["ServiceProcess"]


@dataclass
class ServiceProcess:
    name: str
    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait: bool = True, **extra: str) -> ServiceProcess:
        prefix = f"WAYLINE_{self.name.upper()}_"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WAYLINE_")},
            "WAYLINE_DATA_DIR": str(self.data_dir),
            "WAYLINE_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "WAYLINE_LOG_LEVEL": "warning",
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": str(self.port),
            f"{prefix}METRICS_PORT": "0",
            **{f"{prefix}{k.upper()}": v for k, v in {**self.settings, **extra}.items()},
        }
        log_path = self.data_dir / f"{self.name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - kept for the process's life
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"wayline_{self.name}"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        if wait:
            try:
                wait_serving(self.address, self.process)
            except AssertionError as failed:
                # The process's own words go to its log file, which pytest's tmp dirs do not keep for long.
                said = log_path.read_bytes()[-4000:].decode(errors="replace")
                raise AssertionError(f"{failed}\n{self.name} on port {self.port} wrote:\n{said}") from failed
        return self

    def kill(self) -> None:
        """SIGKILL: no drain, no flush, no cleanup."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
