"""A real Redis for the tests, Debian's `redis-server`, once per session.

The Redis-backed online feature state is tested against the real server (not a mock of redis-py), started
as `redis-server --port <free port> --bind 127.0.0.1 --dir <tmp>` without persistence, and stopped at the
end of the session. When the binary is missing and we are root (CI containers, dev containers), the Debian
package is installed with apt-get; if that is impossible the tests fail saying what to install, since
silently skipping would leave the shared state untested. `.ci/run` installs the package on CI.

Isolation: the server is shared by the session, so each test uses a tenant of its own (`unique_tenant`):
every key of a state is under its tenant's prefix.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.debian_servers import debian_server_binary
from wayline_cli.suite import free_port

__all__ = ["redis_client", "redis_url", "running_redis", "unique_tenant"]

_BINARY = "redis-server"
_START_TIMEOUT_SECONDS = 30


def _wait_answering(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
    finally:
        client.close()
    process.kill()
    text = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
    pytest.fail(f"redis-server did not start:\n{text}", pytrace=False)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a Redis server that lives for the test session (no persistence, no eviction)."""
    with running_redis() as url:
        yield url


@contextmanager
def running_redis() -> Iterator[str]:
    """A Redis server on a free port for the `with` block (the session fixture's, and the benchmark's)."""
    binary = debian_server_binary(_BINARY, "the Redis feature state tests")
    root = Path(tempfile.mkdtemp(prefix="wayline-redis-"))
    log = root / "server.log"
    port = free_port()
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(root),
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory-policy",
        "noeviction",
        "--logfile",
        str(log),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_answering(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def unique_tenant() -> str:
    """A tenant id no other test uses (the gateway's form: lower case, digits, hyphens)."""
    return f"t-{uuid.uuid4().hex[:12]}"
