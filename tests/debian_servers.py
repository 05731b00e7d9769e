"""The servers the tests start for real from Debian's packages (redis-server, nats-server): found on the PATH
or in /usr/sbin, installed with apt-get when the tests run as root and it is missing (as on a fresh CI
machine), else the test fails saying how to install it."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

import pytest

__all__ = ["debian_server_binary"]


def debian_server_binary(binary: str, needed_by: str) -> str:
    """The path of `binary`; `needed_by` names the tests that need it, for the failure message."""
    found = _installed(binary)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        # Test files run on several worker processes (ADR 62) and apt-get refuses to run beside another: one
        # worker installs while the others wait on the lock, then find the binary.
        with open("/tmp/wayline-tests-apt.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = _installed(binary)
            if found is None:
                for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", binary]):
                    subprocess.run(command, capture_output=True, check=False, timeout=600)
                found = _installed(binary)
    if found is None:
        pytest.fail(
            f"{binary} is not installed and could not be installed here; {needed_by} need a real server. "
            f"Install it with `apt-get install -y --no-install-recommends {binary}` (what .ci/run does).",
            pytrace=False,
        )
    return found


def _installed(binary: str) -> str | None:
    return shutil.which(binary) or shutil.which(f"/usr/sbin/{binary}")
