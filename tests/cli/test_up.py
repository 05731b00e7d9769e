"""`wayline up`: every service SERVING, endpoints printed; SIGTERM stops all and leaves no child behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import require_nginx

# Six service processes start (each importing its stack, decision loading ONNX Runtime): on 2 shared cores
# under load this has taken over two minutes, so the test gets more than the suite's default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_serves_every_service_and_sigterm_leaves_no_child(tmp_path: Path) -> None:
    """Through the nginx data plane: `wayline up` uses it wherever nginx is installed (ADR 107)."""
    from wayline_cli.suite import SERVICES

    require_nginx()
    environment = {key: value for key, value in os.environ.items() if key != "WAYLINE_GATEWAY_DATA_PLANE"}
    process = subprocess.Popen(
        [sys.executable, "-m", "wayline_cli.main", "up", "--data-dir", str(tmp_path), "--free-ports"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**environment, "COLUMNS": "240"},
    )
    try:
        deadline = time.monotonic() + 240
        output = ""
        assert process.stdout is not None
        while "Ctrl-C stops the suite" not in output:
            assert time.monotonic() < deadline, output
            line = process.stdout.readline().decode()
            assert line or process.poll() is None, output
            output += line
        children = children_of(process.pid)
        assert len(children) == len(SERVICES)
        addresses = dict(re.findall(r"^. (\w+)\s+. (127\.0\.0\.1:\d+)", output, re.MULTILINE))
        assert sorted(addresses) == sorted(spec.name for spec in SERVICES), output
        assert f"the gateway's public port {addresses['gateway']} is nginx's" in output, output
        for address in addresses.values():
            with grpc.insecure_channel(address) as channel:
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert status.status == health_pb2.HealthCheckResponse.SERVING
        console_url = re.search(r"journey console: (http://\S+/console/)", output)
        assert console_url is not None, output
        page = httpx.get(console_url.group(1), timeout=10)
        assert page.status_code == 200, page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, rest.decode()
        assert not [pid for pid in children if alive(pid)]
        for spec in SERVICES:
            assert f"{spec.name} (0)" in rest.decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
