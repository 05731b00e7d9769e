"""A crash in a process that runs the embedded engine kills it and says where: chDB's engine took the fatal
signals with handlers that never return, so a segmentation fault or an abort anywhere in the process hung it
for good, with no trace (a CI run hung until its 90 minutes ran out). Real processes, real chDB."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

# The store connects from a thread that is not the main one (the gRPC server's), then the process crashes.
_CRASHING_PROCESS = """
import ctypes, os, sys, threading
from pathlib import Path
from wayline_journeys.store.client import connect_clickhouse

answers = []
def connect():
    answers.append(connect_clickhouse("", "crash", Path(sys.argv[1])).query("SELECT 41 + 1").result_rows)
thread = threading.Thread(target=connect)
thread.start()
thread.join()
print("connected", answers, flush=True)
{crash}
"""


@pytest.mark.parametrize(
    ("crash", "killed_by", "fatal_error"),
    [
        ("ctypes.string_at(0)", signal.SIGSEGV, "Fatal Python error: Segmentation fault"),
        ("os.abort()", signal.SIGABRT, "Fatal Python error: Aborted"),
    ],
    ids=["segfault", "abort"],
)
def test_a_crash_after_the_engine_started_kills_the_process_with_its_python_trace(
    tmp_path: Path, crash: str, killed_by: signal.Signals, fatal_error: str
) -> None:
    process = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", _CRASHING_PROCESS.format(crash=crash), str(tmp_path)],
        check=False,  # it crashes: the return code is what the test reads
        capture_output=True,
        text=True,
        timeout=60,  # the hang this guards against is forever
    )
    assert "connected [[(42,)]]" in process.stdout
    assert process.returncode == -killed_by, process.stderr
    assert fatal_error in process.stderr
    assert 'File "<string>", line 13 in <module>' in process.stderr  # the crashing line
