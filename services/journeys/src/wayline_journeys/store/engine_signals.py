"""The fatal signals back from the embedded engine.

chDB starts a ClickHouse engine inside the process, and the engine takes ClickHouse's own handlers of the
fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP) and of SIGTSTP, made for a
ClickHouse server. In this process the handler did not return (for five minutes and more): a segmentation
fault anywhere in the process (the engine, gRPC, onnxruntime, ...) left it hung, with no trace, answering
health checks, where it should die, be restarted and say where (the image sets PYTHONFAULTHANDLER). Seen in
the test suite (2026-12-06): a gRPC call on a closed channel (wayline/common/guarded_channel.py) crashed
workers, which left no trace until the defaults came back. After the engine starts the defaults come back, and
Python's faulthandler when it was on.
"""

from __future__ import annotations

import ctypes
import faulthandler
import signal
import sys
import threading

__all__ = ["ENGINE_SIGNALS", "restore_fatal_signals"]

ENGINE_SIGNALS = (
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGABRT,
    signal.SIGSYS,
    signal.SIGTRAP,
    signal.SIGTSTP,  # ClickHouse prints a stack on it; Ctrl-Z stops a `wayline` command as it does any other
)

_SIG_DFL = 0
_SIG_ERR = ctypes.c_void_p(-1).value
# libc's signal(), not Python's signal.signal(): a store connects from any thread, and Python lets only the
# main one set a handler.
_set_signal = ctypes.CDLL(None, use_errno=True).signal
_set_signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
_set_signal.restype = ctypes.c_void_p
_lock = threading.Lock()


def restore_fatal_signals() -> None:
    """Give the engine's signals their default action, then faulthandler its handlers again when it was on
    (to the process's standard error)."""
    with _lock:
        rearm = faulthandler.is_enabled()
        if rearm:
            faulthandler.disable()  # enable() while on changes only its file: off and on installs it again
        for number in ENGINE_SIGNALS:
            if _set_signal(number, _SIG_DFL) == _SIG_ERR:
                raise OSError(ctypes.get_errno(), f"signal({number}, SIG_DFL) failed")
        if rearm and sys.__stderr__ is not None:
            faulthandler.enable(file=sys.__stderr__, all_threads=True)
