"""What is generated and committed matches its source: protos → Python contracts, settings → docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "tool",
    ["gen_protos", "settings_doc", "api_doc"],
    ids=[
        "generated-code-matches-protos",
        "configuration-reference-matches-settings",
        "api-map-matches-protos",
    ],
)
def test_committed_output_is_fresh(tool: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"tools.{tool}", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
