"""A service as operators run it: `python -m wayline_<svc>` with WAYLINE_* variables — bad settings are
named, metrics are scraped, every RPC is one JSON log line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from tests.contract.test_shutdown import wait_serving
from tests.events import make_event
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline_cli.suite import free_port

pytestmark = pytest.mark.slow


def clean_env(**settings: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("WAYLINE_")}, **settings}


def test_invalid_settings_exit_2_naming_each_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wayline_ingest"],
        env=clean_env(
            WAYLINE_DATA_DIR=str(tmp_path),
            WAYLINE_INGEST_PORT="http",
            WAYLINE_LOG_LEVEL="loud",
            WAYLINE_INGEST_CPU_AFFINITY="1-0",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid setting WAYLINE_INGEST_PORT" in result.stderr
    assert "invalid setting WAYLINE_LOG_LEVEL" in result.stderr
    assert "invalid setting WAYLINE_INGEST_CPU_AFFINITY: Value error, the range 1-0 ends" in result.stderr


def test_metrics_and_access_log_describe_every_rpc(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "wayline_ingest"],
        env=clean_env(
            WAYLINE_DATA_DIR=str(tmp_path),
            WAYLINE_INTERNAL_TOKEN="t0ken",
            WAYLINE_INGEST_HOST="127.0.0.1",
            WAYLINE_INGEST_PORT=str(port),
            WAYLINE_INGEST_METRICS_PORT=str(metrics_port),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_serving(f"127.0.0.1:{port}", process)
        bad = make_event("u1")
        bad.channel = 0  # type: ignore[assignment]
        metadata = (
            ("x-wayline-internal-token", "t0ken"),
            ("x-wayline-tenant", "acme"),
            ("x-request-id", "req-42"),
        )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError):
            ingest_grpc.IngestServiceStub(channel).Track(
                ingest_pb.TrackRequest(event=bad), metadata=metadata, timeout=10
            )
        time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            scraped = response.read().decode()
        counter = next(
            line
            for line in scraped.splitlines()
            if line.startswith("rpc_server_requests_total{") and "IngestService/Track" in line
        )
        assert 'rpc_grpc_status_code="INVALID_ARGUMENT"' in counter
        assert counter.endswith(" 1.0")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    lines = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    (access,) = [line for line in lines if line.get("event") == "rpc"]
    assert access["method"] == "/wayline.ingest.v1.IngestService/Track"
    assert access["status"] == "INVALID_ARGUMENT"
    assert access["reason"] == "INVALID_ARGUMENT"
    assert access["request_id"] == "req-42"
    assert access["tenant"] == "acme"
    assert access["service"] == "ingest"
    assert access["latency_ms"] > 0
    assert len(access["trace_id"]) == 32
