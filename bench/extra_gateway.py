"""A second gateway process beside a running suite, for the benches' comparisons: the same code, the
suite's settings, internal token and API key, a data dir of its own, some backends replaced (the echo), and
either data plane: the gateway itself, or nginx in front of it (ADR 105)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wayline.common.registry import REGISTRY
from wayline_cli.suite import Suite, free_port, is_serving
from wayline_gateway.data_plane.config import data_plane_directory
from wayline_gateway.data_plane.process import nginx_unavailable

__all__ = ["ExtraGateway", "extra_gateway", "nginx_unavailable"]


@dataclass(frozen=True)
class ExtraGateway:
    address: str  # its public gRPC port
    process: subprocess.Popen[bytes]  # the gateway's process (with nginx: the control plane)
    data_dir: Path

    def nginx_worker(self) -> int:
        """The pid of nginx's worker (the data plane runs one here), whose CPU is the hop's."""
        master = int((data_plane_directory(self.data_dir / "gateway") / "nginx.pid").read_text())
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return int(children[0])


@contextmanager
def extra_gateway(
    suite: Suite,
    data_dir: Path,
    *,
    data_plane: str = "python",
    backends: Mapping[str, str] | None = None,
) -> Iterator[ExtraGateway]:
    """A gateway of `suite`'s, serving once it answers health on its public port; `backends` (service name →
    host:port) replace the suite's addresses."""
    spec = REGISTRY["gateway"]
    port = free_port()
    env = suite.environment(spec) | {
        "WAYLINE_DATA_DIR": str(data_dir),
        f"{spec.env_prefix}PORT": str(port),
        f"{spec.env_prefix}HTTP_PORT": "0",
        f"{spec.env_prefix}DATA_PLANE": data_plane,
        f"{spec.env_prefix}CONTROL_PORT": str(free_port()),
    }
    for name, address in (backends or {}).items():
        env[f"{spec.env_prefix}{name.upper()}_ADDRESS"] = address
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "gateway.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", spec.package], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not is_serving(address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the extra gateway did not start: see {data_dir / 'gateway.log'}")
            time.sleep(0.1)
        yield ExtraGateway(address, process, data_dir)
    finally:
        process.terminate()
        process.wait(15)
