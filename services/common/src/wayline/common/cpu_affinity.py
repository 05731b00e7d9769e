"""Keeping a service's process on the CPUs its settings name (`WAYLINE_<SVC>_CPU_AFFINITY`, ADR 108).

A Wayline service is one CPython process: its gRPC poller, its worker threads and its background threads
take turns holding one interpreter lock. When those threads run on different cores, every hand-off of the
lock wakes a thread on another core, whose caches hold none of the objects the last one touched; on a busy
host the scheduler also moves them about between the other processes. Kept on one core, the hand-offs stay
on that core and so do the caches. On 2 cores, `bench decision-gateway` with the decision service on one
core served 33-52 % more decisions a second at 16 callers through the nginx data plane and kept up with a
paced 500/s it fell behind otherwise; a lone call was no faster (docs/benchmarks.md, 2026-12-07 night, and
ADR 108). Kubernetes' static CPU manager gives a Guaranteed pod's container exclusive cores the same way;
this setting is for hosts without it.

The CPU list uses the kernel's cpuset syntax (`taskset -c`, `Cpus_allowed_list`): `3`, `0-1`, `0,2-3`.
"""

from __future__ import annotations

import os
import re

__all__ = ["allowed_cpus", "cpu_list_text", "parse_cpu_list", "pin_process"]

_RANGE = re.compile(r"(\d+)(?:-(\d+))?")
_MAX_CPU = 8191  # the kernel's largest NR_CPUS: a bigger number is a typo, not a CPU


def parse_cpu_list(text: str) -> frozenset[int]:
    """The CPUs a cpuset list names (`0-1,3` → {0, 1, 3}); empty for an empty text. ValueError, with what is
    wrong, for anything else."""
    if not text.strip():
        return frozenset()
    cpus: set[int] = set()
    for item in text.split(","):
        found = _RANGE.fullmatch(item.strip())
        if found is None:
            raise ValueError(f"{item.strip()!r} is not a CPU number or a range like 0-3")
        first = int(found.group(1))
        last = int(found.group(2)) if found.group(2) is not None else first
        if last < first:
            raise ValueError(f"the range {item.strip()} ends before it starts")
        if last > _MAX_CPU:
            raise ValueError(f"{last} is past the largest CPU number Linux has ({_MAX_CPU})")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def cpu_list_text(cpus: frozenset[int]) -> str:
    """`cpus` in the cpuset list syntax, ranges collapsed (`{0, 1, 3}` → `0-1,3`)."""
    parts: list[str] = []
    ordered = sorted(cpus)
    start = 0
    for index, cpu in enumerate(ordered):
        if index + 1 == len(ordered) or ordered[index + 1] != cpu + 1:
            first = ordered[start]
            parts.append(str(first) if first == cpu else f"{first}-{cpu}")
            start = index + 1
    return ",".join(parts)


def allowed_cpus() -> frozenset[int]:
    """The CPUs this process may run on now (its cgroup's cpuset and any affinity it inherited)."""
    return frozenset(os.sched_getaffinity(0))


def pin_process(cpus: frozenset[int]) -> int:
    """Keep every thread of this process on `cpus` (the threads it starts later inherit the mask of the
    thread that starts them); the number of threads pinned. The affinity of a thread is its own on Linux,
    so each running thread is set, not just the calling one: libraries may have started pools already."""
    pinned = 0
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), cpus)
        except ProcessLookupError:  # the thread ended since the listing
            continue
        pinned += 1
    return pinned
