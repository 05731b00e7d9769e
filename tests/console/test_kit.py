"""The console's pure JavaScript helpers (formats, durations, time ranges, channel colours) pass their unit
tests (console/test/*.test.mjs, run by Node's own test runner), in a time zone far from UTC: what the pages
print must not depend on the machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_console_helpers_pass_their_unit_tests() -> None:
    result = subprocess.run(
        [str(ROOT / "tools" / "build-console.sh"), "--test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "TZ": "Pacific/Chatham", "LANG": "de_DE.UTF-8"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
    assert "# pass 0" not in result.stdout
