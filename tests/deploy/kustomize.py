"""Render kustomize folders as an operator would apply them: the one place the deploy tests call kustomize."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kustomize"


def render_path(folder: Path) -> list[dict[str, Any]]:
    """The documents `kubectl kustomize folder` prints."""
    result = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render(overlay: str) -> list[dict[str, Any]]:
    """The documents of `deploy/kustomize/overlays/<overlay>`."""
    return render_path(KUSTOMIZE / "overlays" / overlay)
