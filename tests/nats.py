"""A real NATS server with JetStream for the tests, Debian's `nats-server`, once per session.

The JetStream sink and relay are tested against the real server (not a mock of nats-py), started as
`nats-server -js -sd <tmp> -a 127.0.0.1 -p <free port>` and stopped at the end of the session. When the binary
is missing and we are root (CI containers, dev containers), the Debian package is installed with apt-get; if
that is impossible the tests fail saying what to install, since silently skipping would leave JetStream mode
untested. `.ci/run` installs the package on CI.

Isolation: the server is shared by the session, so each test uses a stream and subject prefix of its own
(`unique_stream`).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.js.errors
import pytest
from nats.js import api

from tests.debian_servers import debian_server_binary
from wayline_cli.suite import free_port
from wayline_ingest.sinks.nats import StreamSpec

__all__ = ["consumer_info", "nats_url", "stream_state", "unique_stream"]

_BINARY = "nats-server"
_START_TIMEOUT_SECONDS = 30


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"nats-server did not start:\n{log.read_text(errors='replace')[-4000:]}", pytrace=False)


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """The URL of a JetStream-enabled NATS server that lives for the test session."""
    binary = debian_server_binary(_BINARY, "the JetStream tests")
    root = Path(tempfile.mkdtemp(prefix="wayline-nats-"))
    log = root / "server.log"
    port = free_port()
    command = [binary, "-js", "-sd", str(root / "store"), "-a", "127.0.0.1", "-p", str(port), "-l", str(log)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_listening(process, port, log)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


def unique_stream() -> StreamSpec:
    """A stream and subject prefix no other test uses, small enough for any test machine's disk."""
    suffix = uuid.uuid4().hex[:10]
    return StreamSpec(
        name=f"TEST_{suffix}",
        subject_prefix=f"test.{suffix}.events",
        max_bytes=64 * 2**20,
        max_age_seconds=3600,
    )


async def _stream_state(url: str, stream: str) -> api.StreamState:
    client = await nats.connect(url)
    try:
        return (await client.jetstream().stream_info(stream)).state
    finally:
        await client.close()


async def _consumer_info(url: str, stream: str, durable: str) -> api.ConsumerInfo | None:
    client = await nats.connect(url)
    try:
        info: api.ConsumerInfo = await client.jetstream().consumer_info(stream, durable)
        return info
    except nats.js.errors.NotFoundError:
        return None
    finally:
        await client.close()


def stream_state(url: str, stream: str) -> api.StreamState:
    return asyncio.run(_stream_state(url, stream))


def consumer_info(url: str, stream: str, durable: str) -> api.ConsumerInfo | None:
    """The durable consumer's state, or None before a relay created it."""
    return asyncio.run(_consumer_info(url, stream, durable))
