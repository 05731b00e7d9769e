"""The servers the tests start for real from Debian's packages (redis-server, nats-server), and the browser
the console's tests drive (chromium): found on the machine, installed with apt-get when the tests run as root
and it is missing (as on a fresh CI machine), else the test fails (or, for the browser, is skipped) saying
how to install it."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable

import pytest

__all__ = ["debian_server_binary", "install_debian_packages"]


def install_debian_packages(packages: list[str], installed: Callable[[], bool]) -> bool:
    """Whether `installed()` holds, after installing `packages` with apt-get when it did not and the tests run
    as root on a machine with apt-get."""
    if installed():
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    # Test files run on several worker processes (ADR 62) and apt-get refuses to run beside another: one
    # worker installs while the others wait on the lock, then find the packages installed.
    with open("/tmp/wayline-tests-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed():
            install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
            for command in (["apt-get", "update", "-qq"], install):
                subprocess.run(
                    command,
                    capture_output=True,
                    check=False,
                    timeout=900,
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                )
    return installed()


def debian_server_binary(binary: str, needed_by: str) -> str:
    """The path of `binary`; `needed_by` names the tests that need it, for the failure message."""
    install_debian_packages([binary], lambda: _installed(binary) is not None)
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
