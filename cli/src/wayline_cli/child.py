"""Runs one service of the suite as a child process: `python -m wayline_cli.child <parent pid> <module>`.

It asks the kernel for SIGTERM when the parent dies (PR_SET_PDEATHSIG, Linux), then runs the module as
`python -m <module>` would. The request is made here, after exec, and not in a `preexec_fn` between fork
and exec: a parent whose threads are using gRPC (a test's clients, a restart under load) then forks with
Python code to run in the child, gRPC's fork handlers run there too, and the child crashed before exec now
and then (SIGSEGV or SIGABRT in gRPC's poller: 15 of 150 spawns under client load; grpc/grpc#43055).
Without a `preexec_fn`, `subprocess` starts the child with vfork, which runs no fork handlers (ADR 49).
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main() -> None:
    parent, module = int(sys.argv[1]), sys.argv[2]
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request was made: nobody to serve
        raise SystemExit(0)
    sys.argv = [sys.argv[0], *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
