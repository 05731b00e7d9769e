"""A service process on SIGTERM: health turns NOT_SERVING, it drains and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from wayline_cli.suite import free_port, is_serving

pytestmark = pytest.mark.slow


def wait_serving(address: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not is_serving(address):
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        assert time.monotonic() < deadline, f"{address} never became SERVING"
        time.sleep(0.1)


@pytest.mark.parametrize("service", ["journeys", "ingest", "identity", "decision", "orchestrator", "gateway"])
def test_sigterm_turns_health_not_serving_and_exits_cleanly(service: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WAYLINE_")},
        "WAYLINE_DATA_DIR": str(tmp_path),
        f"WAYLINE_{service.upper()}_PORT": str(port),
        f"WAYLINE_{service.upper()}_HOST": "127.0.0.1",
        f"WAYLINE_{service.upper()}_METRICS_PORT": "0",
        f"WAYLINE_{service.upper()}_SHUTDOWN_GRACE_SECONDS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", f"wayline_{service}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        address = f"127.0.0.1:{port}"
        wait_serving(address, process)
        with grpc.insecure_channel(address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            process.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert process.wait(timeout=30) == 0
        output = process.stdout.read().decode() if process.stdout else ""
        assert '"event": "server.stopped"' in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
