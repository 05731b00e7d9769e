"""A service started as its own process, the way `wayline up` and the images start one, read from its JSON
log lines until it serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wayline_cli.suite import free_port

IDENTITY_MAIN = "import runpy; runpy.run_module('wayline_identity', run_name='__main__')"


@contextmanager
def serving(
    tmp_path: Path, code: str = IDENTITY_MAIN, environment: dict[str, str] | None = None
) -> Iterator[list[dict[str, object]]]:
    """Run `code` (a service's `__main__`) in a new process until it logs `server.serving`; yield its log
    lines up to that one while it goes on serving; terminate it on exit. GRPC_EXPERIMENTS is left to the
    process unless `environment` sets it. Free ports, not identity's defaults: the other worker's test of
    this file's kind ran beside it, and the second process could not listen (it logged nothing)."""
    with serving_process(tmp_path, code, environment) as (_, lines):
        yield lines


@contextmanager
def serving_process(
    tmp_path: Path, code: str = IDENTITY_MAIN, environment: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], list[dict[str, object]]]]:
    """`serving`, with the process itself (to look at it from outside while it serves)."""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    env |= {
        "WAYLINE_DATA_DIR": str(tmp_path),
        "WAYLINE_INTERNAL_TOKEN": "t" * 32,
        "WAYLINE_LOG_FORMAT": "json",
        "WAYLINE_IDENTITY_PORT": str(free_port()),
        "WAYLINE_IDENTITY_METRICS_PORT": str(free_port()),
    }
    env |= environment or {}
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    lines: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                lines.append(json.loads(line))
            if lines and lines[-1].get("event") == "server.serving":  # after listening and any warning
                break
        assert lines, "the service logged nothing"
        assert lines[-1].get("event") == "server.serving", lines
        yield process, lines
    finally:
        process.terminate()
        process.wait(timeout=30)
