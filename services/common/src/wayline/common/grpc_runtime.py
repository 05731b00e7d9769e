"""gRPC's own runtime switches, set before grpc is imported: the legacy polling engine instead of EventEngine.

grpcio 1.80 turned on EventEngine for Python (its client, listener, other endpoints and callback completion
queue). On these 2-core machines it costs a unary call about a third more CPU on each side: a bare thread-pool
echo server 0.31-0.39 ms of CPU a call without it against 0.44-0.52 ms with it, its synchronous caller
0.17-0.20 against 0.26-0.28 ms (docs/benchmarks.md, "gRPC's EventEngine"; ADR 68). EventEngine's thread pool
wakes a worker for every piece of work (grpc/grpc#43447), and every Wayline call crosses two or three Python
gRPC endpoints. So every process that imports `wayline.common` turns those four experiments off, unless
its environment already sets GRPC_EXPERIMENTS (an operator's choice wins; an empty value keeps gRPC's
defaults).

gRPC reads GRPC_EXPERIMENTS once, when `grpc` is first imported, so this must run before that: the
package's `__init__` calls `configure()`, and every service's `__main__` imports `wayline.common` first.
`in_effect()` says whether gRPC in this process runs with the environment's GRPC_EXPERIMENTS; the server
logs the value at start, and warns when it is not in effect.
"""

from __future__ import annotations

import os
import sys

__all__ = ["GRPC_EXPERIMENTS", "configure", "in_effect"]

# gRPC experiment names, each turned off by a leading "-"; all exist in grpcio 1.80-1.85. A name a later
# grpcio drops is logged once by gRPC as unknown and otherwise ignored.
GRPC_EXPERIMENTS = ",".join(
    f"-{name}"
    for name in (
        "event_engine_client",
        "event_engine_listener",
        "event_engine_for_all_other_endpoints",
        "event_engine_callback_cq",
    )
)

_in_effect = False


def configure() -> None:
    """Set GRPC_EXPERIMENTS for this process and the processes it starts, unless it is set already."""
    global _in_effect  # noqa: PLW0603 - one fact about this process, recorded at its first import
    # gRPC reads the variable when it is imported: an operator's value was there in time; ours only if
    # gRPC comes after us. Set either way, so that processes started from here have it from the start.
    _in_effect = _in_effect or "GRPC_EXPERIMENTS" in os.environ or "grpc" not in sys.modules
    os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)


def in_effect() -> bool:
    """Whether gRPC in this process read GRPC_EXPERIMENTS as the environment holds it now."""
    return _in_effect
